/* File-system helpers shared by the broker, the client tools and the tests; see fs.h for why each exists once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/base/fs.h"

struct sl_fs_hooks sl_fs_hooks;

static int do_fsync(int fd, int is_dir)
{
	if (sl_fs_hooks.fsync_fd)
		return sl_fs_hooks.fsync_fd(fd, is_dir);
	return fsync(fd) < 0 ? -errno : 0;
}

static int do_rename_at(int dir_fd, const char *from, const char *to)
{
	if (sl_fs_hooks.rename_at)
		return sl_fs_hooks.rename_at(dir_fd, from, to);
	return renameat(dir_fd, from, dir_fd, to) < 0 ? -errno : 0;
}

int sl_fs_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int is_dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
	int rc = do_fsync(fd, is_dir);
	close(fd);
	return rc;
}

int sl_fs_fsync_parent(const char *path)
{
	char dir[SL_PATH_BYTES_MAX];
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return sl_fs_fsync_path(dir);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sl_fs_replace_atomic_at(int dir_fd, const char *name, const void *data, size_t len)
{
	char tmp[SL_PATH_BYTES_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = write_all(fd, data, len);
	if (rc == 0)
		rc = do_fsync(fd, 0);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0)
		rc = do_rename_at(dir_fd, tmp, name);
	if (rc < 0) {
		unlinkat(dir_fd, tmp, 0);
		return rc;
	}
	/* Without this the rename may not survive a power cut even though the call returned. */
	return do_fsync(dir_fd, 1);
}

int sl_fs_replace_atomic(const char *path, const void *data, size_t len)
{
	char dir[SL_PATH_BYTES_MAX];
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	char *slash = strrchr(dir, '/');
	const char *name = path;
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else {
		name = path + (slash - dir) + 1;
		if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
	}
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return -errno;
	int rc = sl_fs_replace_atomic_at(dir_fd, name, data, len);
	close(dir_fd);
	return rc;
}

int sl_fs_rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	DIR *d = opendir(path);
	if (d == NULL)
		return -errno;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && rc == 0) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char sub[SL_PATH_BYTES_MAX];
		if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub))
			rc = -ENAMETOOLONG;
		else
			rc = sl_fs_rm_rf(sub);
	}
	closedir(d);
	if (rc < 0)
		return rc;
	return rmdir(path) < 0 && errno != ENOENT ? -errno : 0;
}

int sl_fs_mkdir_p(const char *path)
{
	char buf[SL_PATH_BYTES_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int sl_fs_read_small(const char *path, char *buf, size_t cap, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	int rc = 0;
	for (;;) {
		if (len + 1 >= cap) {
			char c;
			rc = read(fd, &c, 1) > 0 ? -EFBIG : 0;
			break;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (rc < 0)
		return rc;
	buf[len] = '\0';
	if (len_out)
		*len_out = len;
	return 0;
}

int sl_fs_lock_data_dir(const char *dir, int *fd_out, pid_t *holder_pid)
{
	*holder_pid = 0;
	int rc = sl_fs_mkdir_p(dir);
	if (rc < 0)
		return rc;
	char path[SL_PATH_BYTES_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, SL_DATA_DIR_LOCK_FILE) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		char buf[32];
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		if (n > 0) {
			buf[n] = '\0';
			*holder_pid = (pid_t)strtol(buf, NULL, 10);
		}
		close(fd);
		return rc == -EAGAIN ? -EWOULDBLOCK : rc;
	}
	/* The pid is for the message a second process prints; the lock itself is the flock. */
	char line[32];
	int n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)n, 0) != n) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}
