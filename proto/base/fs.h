/* File-system helpers every layer shares: the one atomic file replacement, the one recursive delete, the one
 * `mkdir -p`, and the data-directory lock. Each exists once so that a fix (a missing directory fsync, a lock
 * that is not inherited) lands everywhere at once.
 *
 * All functions return 0 or a negative errno and may block: call them from a thread that is allowed to (the
 * broker's loop calls none of them while serving; see broker/storage/worker.h for how it hands them off). */
#ifndef SL_BASE_FS_H
#define SL_BASE_FS_H

#include <stddef.h>
#include <sys/types.h>

/* Every path synclog builds (data dir, topic, partition, file name) fits in this many bytes including the NUL:
 * the data dir is at most 1023 bytes and topic names 200, so PATH_MAX (4096) leaves room for the rest. */
#define SL_PATH_BYTES_MAX 4096

/* The hooks that sl_fs_replace_atomic calls, in order; tests replace them to check that the directory is
 * fsynced after the rename (a crash between rename and that fsync can lose the new name). NULL fields mean the
 * real system call. */
struct sl_fs_hooks {
	int (*fsync_fd)(int fd, int is_dir);
	int (*rename_at)(int dir_fd, const char *from, const char *to);
};
extern struct sl_fs_hooks sl_fs_hooks;

/* Replace path's contents with data[0..len) so that a crash at any point leaves the old file or the new one,
 * never a mix and never nothing: write path.tmp, fsync it, rename it over path, fsync the directory. */
int sl_fs_replace_atomic(const char *path, const void *data, size_t len);
/* The same for name in the directory dir_fd (the caller keeps dir_fd open; a directory renamed or removed
 * meanwhile gets the file, never a path that now names another directory). */
int sl_fs_replace_atomic_at(int dir_fd, const char *name, const void *data, size_t len);

/* fsync a file or directory by path. */
int sl_fs_fsync_path(const char *path);
/* fsync the directory that holds path (the parent of its last component). */
int sl_fs_fsync_parent(const char *path);

/* Remove path and everything under it; a missing path is not an error. Symbolic links are removed, never
 * followed. */
int sl_fs_rm_rf(const char *path);

/* Create path and its missing parents with mode 0755; existing directories are not an error. */
int sl_fs_mkdir_p(const char *path);

/* Read a whole small file (at most cap - 1 bytes) into buf, NUL-terminated; *len_out gets its length. Returns
 * -EFBIG when it does not fit. */
int sl_fs_read_small(const char *path, char *buf, size_t cap, size_t *len_out);

/* Take the exclusive lock of a data directory: flock(LOCK_EX|LOCK_NB) on dir/.lock (created if missing, dir
 * too), then write our pid into it. The descriptor stays open (close-on-exec) for the life of the process, which
 * holds the lock; *fd_out receives it. When another process holds it, returns -EWOULDBLOCK and *holder_pid gets
 * the pid written in the file (0 if unknown). */
#define SL_DATA_DIR_LOCK_FILE ".lock"
int sl_fs_lock_data_dir(const char *dir, int *fd_out, pid_t *holder_pid);

#endif
