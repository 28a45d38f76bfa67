/* The text files of the security tables under DATA/security (the users file, proto/users.h; the ACL file,
 * broker/acl.h): what their formats share, read and written in one place, so both refuse a bad file the same
 * way. Each table keeps its own fields; this is the frame around them:
 *
 *   # a comment line (the writer puts its header here); empty lines are ignored
 *   FIELD FIELD ...\n   one entry per line, every line ending in '\n'
 *
 * Invariants:
 *   1. A file with a NUL byte, a last line without its newline (a file cut short) or a line longer than the
 *      table's maximum is refused as a whole, with the line's number ("line N: what").
 *   2. A missing file is an empty table; any other failure to read is an error naming the path.
 *   3. Writes replace the file atomically (sl_fs_replace_atomic) inside DATA/security, created mode 0700.
 *
 * Which thread may call: any. Loading and saving block on the disk. */
#ifndef SL_PROTO_TABLE_FILE_H
#define SL_PROTO_TABLE_FILE_H

#include <stddef.h>
#include <stdint.h>

/* One entry line, NUL-terminated (the caller may cut it up), its length and number (from 1). Returns 0, or a
 * negative errno with a message in err (starting with "line N: "). */
typedef int (*sl_table_line_cb)(char *line, size_t len, unsigned no, void *arg, char *err, size_t err_cap);
/* Parse a whole file's text into a table; a negative errno with a message in err. */
typedef int (*sl_table_parse_cb)(const char *text, size_t len, void *table, char *err, size_t err_cap);

/* Write entry index of a table as one line, '\n' included, into line (line_bytes, the table's maximum); returns the
 * bytes written. */
typedef size_t (*sl_table_format_cb)(const void *table, uint32_t index, char *line, size_t line_bytes);

/* Call line_cb for each entry line of text (invariant 1; kind, "a users file", names the file in the NUL byte's
 * message). Stops at the first error and returns it; the caller frees what the lines built. */
int sl_table_file_lines(const char *text, size_t len, const char *kind, size_t line_bytes_max, sl_table_line_cb line_cb,
                        void *arg, char *err, size_t err_cap);
/* The file's text: header, then count entries of at most line_bytes_max each, written by format_cb; in a new
 * allocation the caller frees. Returns 0 or -ENOMEM. */
int sl_table_file_format(const char *header, const void *table, uint32_t count, size_t line_bytes_max,
                         sl_table_format_cb format_cb, char **text_out, size_t *len_out);
/* "line N: what" in err; returns -EINVAL. */
int sl_table_file_line_error(char *err, size_t err_cap, unsigned no, const char *what);
/* Read the file at path (at most bytes_max bytes) and parse it with parse_cb into table (invariant 2; a missing
 * file leaves table as parse_cb would find it: the caller empties it first). */
int sl_table_file_load(const char *path, size_t bytes_max, sl_table_parse_cb parse_cb, void *table, char *err,
                       size_t err_cap);
/* DATA/security/file's path in path (-ENAMETOOLONG when it does not fit). */
int sl_table_file_path(const char *data_dir, const char *file, char *path, size_t path_bytes);
/* Replace DATA/security/file with text (invariant 3). */
int sl_table_file_save(const char *data_dir, const char *file, const char *text, size_t len);

#endif
