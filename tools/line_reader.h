/* Reading lines from a file descriptor without blocking the caller's other work: the caller polls the descriptor
 * (with its own other descriptors) and reads when it is ready. Lines may be long; the buffer grows up to a bound
 * and is reused. */
#ifndef SL_TOOLS_LINE_READER_H
#define SL_TOOLS_LINE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct line_reader {
	int fd;
	char *buf;
	size_t cap;
	size_t start; /* first byte not yet handed out */
	size_t end;   /* one past the last byte read */
	size_t scan;  /* where the search for the next newline resumes */
	size_t line_bytes_max;
	bool eof;
	bool skipping;        /* inside a line longer than line_bytes_max: dropping it up to its newline */
	uint64_t line_number; /* of the line last handed out (or skipped) */
};

/* Returns 0 or -ENOMEM. */
int line_reader_init(struct line_reader *lr, int fd, size_t line_bytes_max);
void line_reader_free(struct line_reader *lr);
/* The next whole line (without its newline; a last line without one counts too). Returns 1 with *line and *len
 * set (valid until the next call), 0 at the end of input, -EAGAIN when no whole line is buffered (wait for the
 * descriptor, then line_reader_fill), -E2BIG for a line longer than the bound (it is skipped; line_number says
 * which). */
int line_reader_next(struct line_reader *lr, const char **line, size_t *len);
/* One read() into the buffer. Returns 0, -EINTR, -EIO. */
int line_reader_fill(struct line_reader *lr);

#endif
