/* Segment files: naming, opening, removal, lazy index loading, and the batch-by-batch scan that recovery and
 * lookups share. The segment's byte layout is Kafka's record batch v2 back to back (see proto/batch.c). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/base/fs.h"

#include "proto/base/assert.h"
#include "broker/storage/log_impl.h"
#include "broker/storage/segment.h"
#include "proto/batch.h"
#include "proto/crc32c.h"

/* Scans read this much at a time: large enough that a scan of a 100 MiB tail costs ~100 syscalls. */
#define SCAN_BUFFER_BYTES (1u << 20)
/* The CRC covers everything from the attributes field on. */
#define CRC_START         21

void sl_segment_name(char *buf, int64_t base_offset, const char *ext)
{
	snprintf(buf, SL_SEGMENT_NAME_BYTES, "%020" PRId64 "%s", base_offset, ext);
}

static int open_at(int dir_fd, int64_t base, const char *ext, const char *suffix, int create)
{
	char name[SL_SEGMENT_NAME_BYTES + 16];
	sl_segment_name(name, base, ext);
	strncat(name, suffix, 15);
	/* A new file must not be one a crash left (the cleaner's output): start it empty. */
	int fd = openat(dir_fd, name, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0) | (create && *suffix ? O_TRUNC : 0),
	                0644);
	return fd < 0 ? -errno : fd;
}

int sl_segment_file_open(const char *dir, int64_t base_offset, const char *ext, int flags)
{
	char name[SL_SEGMENT_NAME_BYTES], path[SL_PATH_BYTES_MAX];
	sl_segment_name(name, base_offset, ext);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void sl_segment_close_files(struct sl_segment *seg, int index_only)
{
	close_fd(&seg->off_fd);
	close_fd(&seg->time_fd);
	if (!index_only)
		close_fd(&seg->log_fd);
}

int sl_segment_reopen(struct sl_segment *seg, const char *dir, int with_index)
{
	int *fds[3] = {&seg->log_fd, &seg->off_fd, &seg->time_fd};
	static const char *const exts[3] = {".log", ".index", ".timeindex"};
	int opened[3] = {0, 0, 0};
	for (int i = 0; i < (with_index ? 3 : 1); i++) {
		if (*fds[i] >= 0)
			continue;
		int fd = sl_segment_file_open(dir, seg->base_offset, exts[i], O_RDWR);
		if (fd < 0) {
			for (int j = 0; j < i; j++)
				if (opened[j])
					close_fd(fds[j]);
			return fd;
		}
		*fds[i] = fd;
		opened[i] = 1;
	}
	return 0;
}

int sl_segment_open(int dir_fd, int64_t base_offset, int create, struct sl_segment **out)
{
	return sl_segment_open_suffixed(dir_fd, base_offset, "", create, out);
}

int sl_segment_open_suffixed(int dir_fd, int64_t base_offset, const char *suffix, int create, struct sl_segment **out)
{
	struct sl_segment *seg = calloc(1, sizeof(*seg));
	if (seg == NULL)
		return -ENOMEM;
	seg->base_offset = base_offset;
	seg->next_offset = base_offset;
	seg->visible_next_offset = base_offset;
	seg->max_timestamp = INT64_MIN;
	seg->log_fd = seg->off_fd = seg->time_fd = -1;
	sl_index_init(&seg->index);
	for (int i = 0; i < 3; i++)
		seg->ios[i].seg = seg;
	seg->sync_io.seg = seg;
	seg->log_fd = open_at(dir_fd, base_offset, ".log", suffix, create);
	if (seg->log_fd >= 0)
		seg->off_fd = open_at(dir_fd, base_offset, ".index", suffix, 1);
	if (seg->off_fd >= 0)
		seg->time_fd = open_at(dir_fd, base_offset, ".timeindex", suffix, 1);
	int rc = seg->log_fd < 0 ? seg->log_fd : seg->off_fd < 0 ? seg->off_fd : seg->time_fd < 0 ? seg->time_fd : 0;
	if (rc < 0) {
		sl_segment_free(seg);
		return rc;
	}
	*out = seg;
	return 0;
}

void sl_segment_free(struct sl_segment *seg)
{
	if (seg == NULL)
		return;
	SL_ASSERT(seg->io_pending == 0 && seg->pins == 0);
	if (seg->entry.files != NULL && seg->entry.fds > 0)
		sl_files_set(&seg->entry, 0);
	sl_segment_close_files(seg, 0);
	sl_index_free(&seg->index);
	free(seg);
}

void sl_segment_free_keep_fds(struct sl_segment *seg, int fds_out[3])
{
	SL_ASSERT(seg->io_pending == 0);
	fds_out[0] = seg->log_fd;
	fds_out[1] = seg->off_fd;
	fds_out[2] = seg->time_fd;
	seg->log_fd = seg->off_fd = seg->time_fd = -1;
	sl_segment_free(seg);
}

int sl_segment_unlink(int dir_fd, int64_t base_offset)
{
	static const char *const exts[] = {".log", ".index", ".timeindex"};
	int rc = 0;
	for (int i = 0; i < 3; i++) {
		char name[SL_SEGMENT_NAME_BYTES];
		sl_segment_name(name, base_offset, exts[i]);
		if (unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT && rc == 0)
			rc = -errno;
	}
	return rc;
}

int sl_segment_load_index(struct sl_segment *seg)
{
	if (seg->index_complete)
		return 0;
	int sealed = 0;
	int64_t max_ts = INT64_MIN;
	/* A sealed segment's index files are closed (its entry holds the .log only): open them just for this. */
	int opened = seg->off_fd < 0;
	int rc = opened ? sl_segment_reopen(seg, seg->log->dir, 1) : 0;
	if (rc == 0)
		rc = sl_index_load(&seg->index, seg->off_fd, seg->time_fd, seg->size, &sealed, &max_ts);
	if (opened)
		sl_segment_close_files(seg, 1);
	if (rc < 0)
		return rc;
	/* Only a sealed segment is loaded lazily, and its index must still carry the seal it had at open. */
	if (!sealed)
		return -EUCLEAN;
	seg->index_persisted = seg->index.entry_count;
	seg->index_complete = 1;
	return 0;
}

/* Read up to len bytes at pos; *got is short only at the end of the file, or with cached_only where the page
 * cache stops holding the bytes (-EWOULDBLOCK when it holds none of them). A file system that cannot tell
 * (EOPNOTSUPP) is read as usual. */
static int read_at(int fd, uint8_t *buf, size_t len, uint64_t pos, int cached_only, size_t *got)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n;
		if (cached_only) {
			struct iovec iov = {.iov_base = buf + done, .iov_len = len - done};
			n = preadv2(fd, &iov, 1, (off_t)(pos + done), RWF_NOWAIT);
			if (n < 0 && errno == EAGAIN) {
				if (done == 0)
					return -EWOULDBLOCK;
				break;
			}
			if (n < 0 && errno == EOPNOTSUPP) {
				cached_only = 0;
				continue;
			}
		} else {
			n = pread(fd, buf + done, len - done, (off_t)(pos + done));
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

int sl_segment_scan(struct sl_segment *seg, uint64_t from, uint64_t to, int flags, int64_t *expect_offset,
                    uint64_t *end_out, const char **why, sl_segment_scan_cb cb, void *ctx)
{
	return sl_segment_scan_sized(seg, from, to, SCAN_BUFFER_BYTES, flags, expect_offset, end_out, why, cb, ctx);
}

int sl_segment_scan_sized(struct sl_segment *seg, uint64_t from, uint64_t to, size_t read_bytes, int flags,
                          int64_t *expect_offset, uint64_t *end_out, const char **why, sl_segment_scan_cb cb, void *ctx)
{
	SL_ASSERT((flags & ~(SL_SCAN_VERIFY_CRC | SL_SCAN_CACHED_ONLY)) == 0);
	int verify_crc = flags & SL_SCAN_VERIFY_CRC;
	int cached_only = (flags & SL_SCAN_CACHED_ONLY) != 0;
	size_t cap = read_bytes < 4096 ? 4096 : read_bytes;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return -ENOMEM;
	uint64_t pos = from;
	uint64_t buf_pos = from; /* file position of buf[0] */
	size_t buf_len = 0;
	int rc = 0;
	*why = NULL;
	while (pos < to) {
		/* A batch skipped whole (headers only) can leave pos past the end of what the buffer holds. */
		size_t at = (size_t)(pos - buf_pos);
		size_t have = pos - buf_pos < buf_len ? buf_len - at : 0;
		size_t want = SL_BATCH_HEADER_BYTES;
		struct sl_batch_header h;
		int parsed = -EAGAIN;
		if (have >= want)
			parsed = sl_batch_header_parse(buf + at, have, &h);
		if (parsed == 0) {
			/* A lookup (no CRC to check) needs each batch's header only: reading whole batches made a
			 * fetch of 256 KiB batches read a few of them again on the loop just to find its span. */
			want = verify_crc ? sl_batch_total_bytes(&h) : SL_BATCH_HEADER_BYTES;
			if (!verify_crc && pos + sl_batch_total_bytes(&h) > to) {
				*why = "batch extends past the end of the file";
				break;
			}
		}
		if (parsed == -EAGAIN || have < want) {
			/* The batch at pos is not all in the buffer: refill from pos, growing the buffer for a batch
			 * larger than it, unless the file ends first. */
			if (pos + want > to) {
				*why = parsed == 0 ? "batch extends past the end of the file"
				                   : "incomplete batch header at the end";
				break;
			}
			if (want > cap) {
				uint8_t *nb = realloc(buf, want);
				if (nb == NULL) {
					rc = -ENOMEM;
					break;
				}
				buf = nb;
				cap = want;
			}
			uint64_t left = to - pos;
			size_t len = left < cap ? (size_t)left : cap;
			rc = read_at(seg->log_fd, buf, len, pos, cached_only, &buf_len);
			if (rc < 0)
				break;
			buf_pos = pos;
			if (buf_len < want && cached_only && buf_len < len) {
				rc = -EWOULDBLOCK; /* the page cache stops before what is needed */
				break;
			}
			if (buf_len < want) {
				*why = "file shorter than its recorded size";
				break;
			}
			continue;
		}
		if (parsed != 0) {
			*why = "invalid batch header (magic, length or count)";
			break;
		}
		const uint8_t *p = buf + at;
		size_t total = sl_batch_total_bytes(&h);
		if (verify_crc && sl_crc32c(0, p + CRC_START, total - CRC_START) != h.crc) {
			*why = "CRC32C mismatch";
			break;
		}
		if (seg->compacted ? h.record_count > h.last_offset_delta + 1
		                   : h.record_count != h.last_offset_delta + 1) {
			*why = "record count disagrees with last offset delta";
			break;
		}
		if (*expect_offset != INT64_MIN &&
		    (seg->compacted ? h.base_offset < *expect_offset : h.base_offset != *expect_offset)) {
			*why = "base offset does not follow the previous batch";
			break;
		}
		if (cb != NULL) {
			rc = cb(seg, pos, &h, ctx);
			if (rc != 0)
				break;
		}
		*expect_offset = h.base_offset + h.last_offset_delta + 1;
		pos += total;
	}
	free(buf);
	*end_out = pos;
	return rc;
}
