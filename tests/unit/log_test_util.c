/* Helpers shared by the storage-engine tests: temp dirs, deterministic batches, appends that wait for their
 * callback, and a full-log scan that validates every batch. See log_test_util.h for the contracts. */
#include "log_test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Scratch for validating zstd batches: the tests' batches decompress to well under this. */
#define SCAN_SCRATCH_BYTES (8u * 1024 * 1024)
/* First read buffer of a scan; doubled on -ENOBUFS up to SL_BATCH_BYTES_MAX. */
#define SCAN_READ_BYTES    (256u * 1024)

static int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(int err, const char *fmt, ...)
{
	va_list ap;

	fputs("log_test: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return err;
}

uint64_t lt_rand_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int64_t lt_rand_range(uint64_t *state, int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)(hi - lo) + 1;

	return lo + (int64_t)(lt_rand_next(state) % span);
}

uint64_t lt_seed(const char *test_name, uint64_t fallback)
{
	const char *env = getenv("SL_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : fallback;

	fprintf(stderr, "# %s: seed %" PRIu64 " (set SL_TEST_SEED to replay another)\n", test_name, seed);
	return seed;
}

int lt_tmpdir_make(char *path, size_t cap)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (!base || !*base)
		base = "/tmp";
	n = snprintf(path, cap, "%s/synclog-test-XXXXXX", base);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	if (!mkdtemp(path))
		return fail(-errno, "mkdtemp %s: %s", path, strerror(errno));
	return 0;
}

int lt_path_join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int lt_file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int64_t lt_file_bytes(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -errno;
	return st.st_size;
}

static int copy_file(const char *src, const char *dst)
{
	uint8_t buf[64 * 1024];
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out;
	int rc = 0;

	if (in < 0)
		return fail(-errno, "open %s: %s", src, strerror(errno));
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		rc = fail(-errno, "create %s: %s", dst, strerror(errno));
		close(in);
		return rc;
	}
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));

		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));

			if (w < 0) {
				rc = -errno;
				break;
			}
			done += w;
		}
		if (rc)
			break;
	}
	close(in);
	close(out);
	return rc;
}

int lt_copy_tree(const char *src, const char *dst)
{
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (mkdir(dst, 0755) != 0)
		return fail(-errno, "mkdir %s: %s", dst, strerror(errno));
	d = opendir(src);
	if (!d)
		return fail(-errno, "opendir %s: %s", src, strerror(errno));
	while (rc == 0 && (e = readdir(d)) != NULL) {
		char from[PATH_MAX], to[PATH_MAX];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (lt_path_join(from, sizeof(from), src, e->d_name) || lt_path_join(to, sizeof(to), dst, e->d_name)) {
			rc = -ENAMETOOLONG;
			break;
		}
		if (lstat(from, &st) != 0) {
			rc = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode))
			rc = lt_copy_tree(from, to);
		else if (S_ISREG(st.st_mode))
			rc = copy_file(from, to);
	}
	closedir(d);
	return rc;
}

int lt_file_xor_byte(const char *path, uint64_t pos, uint8_t mask)
{
	uint8_t byte;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return fail(-errno, "open %s: %s", path, strerror(errno));
	if (pread(fd, &byte, 1, (off_t)pos) != 1) {
		rc = fail(-EIO, "read byte %" PRIu64 " of %s", pos, path);
	} else {
		byte ^= mask;
		if (pwrite(fd, &byte, 1, (off_t)pos) != 1)
			rc = fail(-EIO, "write byte %" PRIu64 " of %s", pos, path);
	}
	close(fd);
	return rc;
}

int lt_fd_basename(int fd, char *out, size_t cap)
{
	char link[64], target[PATH_MAX];
	ssize_t n;
	const char *slash;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	slash = strrchr(target, '/');
	snprintf(out, cap, "%s", slash ? slash + 1 : target);
	return 0;
}

/* A value byte of record index of s: a 4-letter pattern for zstd batches (so compression pays), noise otherwise. */
static void fill_value(const struct lt_batch_spec *s, int32_t index, uint8_t *value)
{
	uint64_t state = s->seed * 31 + (uint64_t)index;

	if (s->codec == SL_BATCH_CODEC_ZSTD) {
		for (uint32_t i = 0; i < s->value_bytes; i++)
			value[i] = (uint8_t) "abcd"[(i / 16 + (uint32_t)index + (uint32_t)s->seed) % 4];
		return;
	}
	for (uint32_t i = 0; i < s->value_bytes; i += 8) {
		uint64_t r = lt_rand_next(&state);
		uint32_t n = s->value_bytes - i < 8 ? s->value_bytes - i : 8;

		memcpy(value + i, &r, n);
	}
}

int64_t lt_record_timestamp_ms(const struct lt_batch_spec *s, int32_t index)
{
	uint64_t state = s->seed ^ ((uint64_t)index << 40);

	if (index == 0)
		return s->timestamp_ms;
	/* Up to 20 ms either side of the first record: later records may be older than earlier ones. */
	return s->timestamp_ms + lt_rand_range(&state, -20, 20);
}

void lt_spec_random(uint64_t *rng, struct lt_batch_spec *s, int32_t records_max, uint32_t value_bytes_max,
                    int64_t timestamp_ms)
{
	s->seed = lt_rand_next(rng);
	s->record_count = (int32_t)lt_rand_range(rng, 1, records_max);
	s->value_bytes = (uint32_t)lt_rand_range(rng, 0, value_bytes_max);
	s->timestamp_ms = timestamp_ms;
	s->codec = lt_rand_range(rng, 0, 7) == 0 ? SL_BATCH_CODEC_ZSTD : SL_BATCH_CODEC_NONE;
}

int lt_batch_build(struct sl_batch_builder *b, const struct lt_batch_spec *s, const uint8_t **out, size_t *len_out)
{
	uint8_t *value = malloc(s->value_bytes ? s->value_bytes : 1);
	int rc = 0;

	if (!value)
		return -ENOMEM;
	sl_batch_builder_reset(b);
	for (int32_t i = 0; i < s->record_count && rc == 0; i++) {
		char key[24];
		struct sl_record r;

		memset(&r, 0, sizeof(r));
		snprintf(key, sizeof(key), "k%" PRId32, i);
		fill_value(s, i, value);
		r.timestamp_ms = lt_record_timestamp_ms(s, i);
		r.key = (const uint8_t *)key;
		r.key_len = (int32_t)strlen(key);
		r.value = value;
		r.value_len = (int32_t)s->value_bytes;
		r.version = (int64_t)(s->seed % 1000000) * 1000 + i;
		r.op = SL_OP_UPSERT;
		r.origin = SL_ORIGIN_LIVE;
		r.idempotency_key = NULL;
		r.idempotency_key_len = 0;
		r.schema_version = 0;
		rc = sl_batch_builder_add(b, &r);
		if (rc)
			fail(rc, "sl_batch_builder_add record %" PRId32 " of seed %" PRIu64 ": %s", i, s->seed,
			     strerror(-rc));
	}
	if (rc == 0) {
		rc = sl_batch_builder_finish(b, s->codec, out, len_out);
		if (rc)
			fail(rc, "sl_batch_builder_finish seed %" PRIu64 ": %s", s->seed, strerror(-rc));
	}
	free(value);
	return rc;
}

int64_t lt_batch_base_offset(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

int lt_batch_check_stored(const uint8_t *stored, size_t stored_len, const uint8_t *orig, size_t orig_len,
                          int64_t base_offset)
{
	if (stored_len != orig_len)
		return fail(-EBADMSG, "batch at offset %" PRId64 ": stored %zu bytes, appended %zu", base_offset,
		            stored_len, orig_len);
	if (stored_len < SL_BATCH_HEADER_BYTES)
		return fail(-EBADMSG, "batch at offset %" PRId64 ": only %zu bytes", base_offset, stored_len);
	if (lt_batch_base_offset(stored) != base_offset)
		return fail(-EBADMSG, "batch at offset %" PRId64 ": base offset field holds %" PRId64, base_offset,
		            lt_batch_base_offset(stored));
	for (size_t i = 8; i < stored_len; i++)
		if (stored[i] != orig[i])
			return fail(-EBADMSG, "batch at offset %" PRId64 ": byte %zu of %zu is 0x%02x, appended 0x%02x",
			            base_offset, i, stored_len, stored[i], orig[i]);
	return 0;
}

static void append_done_cb(struct sl_append *a, int status)
{
	struct lt_append *la = (struct lt_append *)a;

	if (la->done)
		fail(0, "append callback ran twice (offset %" PRId64 ", status %d)", a->base_offset, status);
	la->done = 1;
	la->status = status;
	la->ack_index = la->acks ? la->acks->count++ : 0;
}

void lt_append_init(struct lt_append *la, struct lt_acks *acks, uint8_t *batch, size_t len, enum sl_durability level)
{
	memset(la, 0, sizeof(*la));
	la->a.batch = batch;
	la->a.len = len;
	la->a.level = level;
	la->a.cb = append_done_cb;
	la->a.base_offset = -1;
	la->a.last_offset = -1;
	la->acks = acks;
	la->status = 1;
}

int lt_append_wait(struct sl_ring *ring, struct sl_log *log, struct lt_append *la)
{
	int rc = sl_log_append(log, &la->a);

	if (rc)
		return rc;
	la->queued = 1;
	for (int i = 0; i < LT_RING_WAITS_MAX && !la->done; i++) {
		rc = sl_ring_wait(ring);
		if (rc < 0)
			return fail(rc, "sl_ring_wait: %s", strerror(-rc));
		if (rc == 0 && !la->done)
			return fail(-ETIMEDOUT, "append accepted but the ring ran dry before its callback ran");
	}
	return la->done ? la->status
	                : fail(-ETIMEDOUT, "append callback did not run after %d waits", LT_RING_WAITS_MAX);
}

int lt_append_all(struct sl_ring *ring, struct sl_log *log, struct lt_append *v, size_t count)
{
	size_t queued = 0;
	int waits = 0;

	while (queued < count) {
		int rc = sl_log_append(log, &v[queued].a);

		if (rc == 0) {
			v[queued++].queued = 1;
			continue;
		}
		if (rc != -EAGAIN)
			return fail(rc, "sl_log_append of append %zu: %s", queued, strerror(-rc));
		if (++waits > LT_RING_WAITS_MAX)
			return fail(-ETIMEDOUT, "the in-flight window never drained");
		rc = sl_ring_wait(ring);
		if (rc < 0)
			return fail(rc, "sl_ring_wait: %s", strerror(-rc));
		if (rc == 0)
			return fail(-ETIMEDOUT, "sl_log_append says -EAGAIN but nothing is in flight");
	}
	for (size_t i = 0; i < count; i++) {
		while (!v[i].done) {
			int rc;

			if (++waits > LT_RING_WAITS_MAX)
				return fail(-ETIMEDOUT, "append %zu: callback did not run", i);
			rc = sl_ring_wait(ring);
			if (rc < 0)
				return fail(rc, "sl_ring_wait: %s", strerror(-rc));
			if (rc == 0 && !v[i].done)
				return fail(-ETIMEDOUT, "append %zu: the ring ran dry before its callback ran", i);
		}
	}
	return 0;
}

int lt_wait_idle(struct sl_ring *ring, struct sl_log *log)
{
	for (int i = 0; i < LT_RING_WAITS_MAX; i++) {
		int rc;

		if (sl_log_idle(log))
			return 0;
		rc = sl_ring_wait(ring);
		if (rc < 0)
			return fail(rc, "sl_ring_wait: %s", strerror(-rc));
		if (rc == 0 && !sl_log_idle(log))
			return fail(-ETIMEDOUT, "log not idle but nothing is in flight");
	}
	return fail(-ETIMEDOUT, "log not idle after %d waits", LT_RING_WAITS_MAX);
}

static int scan_push(struct lt_scan *s, const uint8_t *p, const struct sl_batch_header *h, size_t len)
{
	struct lt_scanned_batch *b;

	if (s->count == s->batches_cap) {
		size_t cap = s->batches_cap ? s->batches_cap * 2 : 256;
		void *nb = realloc(s->batches, cap * sizeof(*s->batches));

		if (!nb)
			return -ENOMEM;
		s->batches = nb;
		s->batches_cap = cap;
	}
	if (s->bytes_len + len > s->bytes_cap) {
		size_t cap = s->bytes_cap ? s->bytes_cap : 1024 * 1024;
		void *nb;

		while (cap < s->bytes_len + len)
			cap *= 2;
		nb = realloc(s->bytes, cap);
		if (!nb)
			return -ENOMEM;
		s->bytes = nb;
		s->bytes_cap = cap;
	}
	memcpy(s->bytes + s->bytes_len, p, len);
	b = &s->batches[s->count++];
	b->base_offset = h->base_offset;
	b->last_offset = h->base_offset + h->last_offset_delta;
	b->max_timestamp = h->max_timestamp;
	b->record_count = h->record_count;
	b->at = s->bytes_len;
	b->len = len;
	s->bytes_len += len;
	return 0;
}

/* Walk the whole batches of one sl_log_read result; *expected is the offset the next batch must start at. */
static int scan_buffer(struct lt_scan *s, const uint8_t *buf, size_t len, int64_t *expected, uint8_t *scratch)
{
	size_t pos = 0;

	while (pos < len) {
		struct sl_batch_header h;
		const char *why = "";
		size_t total;
		int rc = sl_batch_header_parse(buf + pos, len - pos, &h);

		if (rc)
			return fail(-EBADMSG, "read at offset %" PRId64 ": bad batch header at byte %zu of %zu (%d)",
			            *expected, pos, len, rc);
		total = sl_batch_total_bytes(&h);
		if (total > len - pos)
			return fail(-EBADMSG, "read returned part of a batch: %zu of %zu bytes at offset %" PRId64,
			            len - pos, total, h.base_offset);
		rc = sl_batch_validate(buf + pos, total, &h, scratch, SCAN_SCRATCH_BYTES, &why);
		if (rc)
			return fail(-EBADMSG, "batch at offset %" PRId64 " fails validation: %s", h.base_offset, why);
		if (h.base_offset != *expected)
			return fail(-EBADMSG, "batch base offset %" PRId64 ", expected %" PRId64 " (gap or overlap)",
			            h.base_offset, *expected);
		rc = scan_push(s, buf + pos, &h, total);
		if (rc)
			return rc;
		*expected = h.base_offset + h.last_offset_delta + 1;
		pos += total;
	}
	return 0;
}

int lt_log_scan(struct sl_log *log, struct lt_scan *out)
{
	size_t cap = SCAN_READ_BYTES;
	uint8_t *buf = malloc(cap);
	uint8_t *scratch = malloc(SCAN_SCRATCH_BYTES);
	int64_t end = sl_log_next_offset(log);
	int64_t offset;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->start_offset = sl_log_start_offset(log);
	out->next_offset = end;
	offset = out->start_offset;
	if (!buf || !scratch) {
		rc = -ENOMEM;
		goto done;
	}
	/* Each pass returns at least one batch, so the log's record count bounds the passes. */
	while (offset < end) {
		size_t len = 0;
		int64_t next = -1, expected = offset;

		rc = sl_log_read(log, offset, buf, cap, &len, &next);
		if (rc == -ENODATA) {
			if (next <= offset || out->lost_count == LT_SCAN_LOST_MAX) {
				rc = fail(-EBADMSG, "lost range at offset %" PRId64 " ends at %" PRId64 " (%zu ranges)",
				          offset, next, out->lost_count);
				goto done;
			}
			out->lost_first[out->lost_count] = offset;
			out->lost_next[out->lost_count++] = next;
			offset = next;
			continue;
		}
		if (rc == -ENOBUFS && cap < SL_BATCH_BYTES_MAX) {
			uint8_t *nb = realloc(buf, cap * 2);

			if (!nb) {
				rc = -ENOMEM;
				goto done;
			}
			buf = nb;
			cap *= 2;
			continue;
		}
		if (rc) {
			rc = fail(rc, "sl_log_read at offset %" PRId64 " (log %" PRId64 "..%" PRId64 "): %s", offset,
			          out->start_offset, end, strerror(-rc));
			goto done;
		}
		if (len == 0 || len > cap) {
			rc = fail(-EBADMSG,
			          "sl_log_read at offset %" PRId64 " before the end %" PRId64
			          " returned %zu bytes (cap %zu)",
			          offset, end, len, cap);
			goto done;
		}
		rc = scan_buffer(out, buf, len, &expected, scratch);
		if (rc)
			goto done;
		if (next != expected) {
			rc = fail(-EBADMSG,
			          "sl_log_read at offset %" PRId64 " says next %" PRId64 ", batches end at %" PRId64,
			          offset, next, expected);
			goto done;
		}
		offset = expected;
	}
	if (offset != end) {
		rc = fail(-EBADMSG, "scan ended at offset %" PRId64 ", past the log end %" PRId64, offset, end);
		goto done;
	}
	{
		size_t len = 1;
		int64_t next = -1;

		rc = sl_log_read(log, end, buf, cap, &len, &next);
		if (rc || len != 0)
			rc = fail(rc ? rc : -EBADMSG, "sl_log_read at the log end %" PRId64 ": rc %d, %zu bytes", end,
			          rc, len);
	}
done:
	free(buf);
	free(scratch);
	if (rc)
		lt_scan_free(out);
	return rc;
}

void lt_scan_free(struct lt_scan *s)
{
	free(s->batches);
	free(s->bytes);
	s->batches = NULL;
	s->bytes = NULL;
	s->count = 0;
	s->bytes_len = 0;
	s->batches_cap = 0;
	s->bytes_cap = 0;
}

long lt_scan_find(const struct lt_scan *s, int64_t offset)
{
	size_t lo = 0, hi = s->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->batches[mid].last_offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->count && s->batches[lo].base_offset <= offset && offset <= s->batches[lo].last_offset)
		return (long)lo;
	return -1;
}

int lt_model_push(struct lt_model *m, const struct lt_batch_spec *spec, const uint8_t *bytes, size_t len,
                  int64_t base_offset, int64_t last_offset)
{
	struct lt_model_batch *b;

	if (m->count == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		void *nb = realloc(m->batches, cap * sizeof(*m->batches));

		if (!nb)
			return -ENOMEM;
		m->batches = nb;
		m->cap = cap;
	}
	b = &m->batches[m->count];
	b->bytes = malloc(len);
	if (!b->bytes)
		return -ENOMEM;
	memcpy(b->bytes, bytes, len);
	b->spec = *spec;
	b->len = len;
	b->base_offset = base_offset;
	b->last_offset = last_offset;
	m->count++;
	return 0;
}

void lt_model_truncate(struct lt_model *m, size_t count)
{
	while (m->count > count)
		free(m->batches[--m->count].bytes);
}

void lt_model_free(struct lt_model *m)
{
	lt_model_truncate(m, 0);
	free(m->batches);
	memset(m, 0, sizeof(*m));
}

long lt_model_find(const struct lt_model *m, int64_t offset)
{
	size_t lo = 0, hi = m->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->batches[mid].last_offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->count && m->batches[lo].base_offset <= offset && offset <= m->batches[lo].last_offset)
		return (long)lo;
	return -1;
}

int lt_model_check_range(const struct lt_model *m, size_t model_index, const struct lt_scan *scan, size_t scan_index,
                         size_t count)
{
	if (model_index + count > m->count || scan_index + count > scan->count)
		return fail(-EBADMSG, "check of %zu batches: model has %zu from %zu, scan has %zu from %zu", count,
		            m->count - model_index, model_index, scan->count - scan_index, scan_index);
	for (size_t i = 0; i < count; i++) {
		const struct lt_model_batch *mb = &m->batches[model_index + i];
		const struct lt_scanned_batch *sb = &scan->batches[scan_index + i];
		int rc;

		if (sb->base_offset != mb->base_offset || sb->last_offset != mb->last_offset)
			return fail(
			        -EBADMSG,
			        "batch %zu: log holds offsets %" PRId64 "..%" PRId64 ", appended %" PRId64 "..%" PRId64,
			        model_index + i, sb->base_offset, sb->last_offset, mb->base_offset, mb->last_offset);
		rc = lt_batch_check_stored(scan->bytes + sb->at, sb->len, mb->bytes, mb->len, mb->base_offset);
		if (rc)
			return rc;
	}
	return 0;
}

int lt_model_check_scan(const struct lt_model *m, const struct lt_scan *scan)
{
	long first = 0;

	if (scan->count == 0 && (m->count == 0 || m->batches[m->count - 1].last_offset < scan->start_offset))
		return 0;
	if (scan->count > 0) {
		first = lt_model_find(m, scan->start_offset);
		if (first < 0 || m->batches[first].base_offset != scan->start_offset)
			return fail(-EBADMSG, "the log starts at offset %" PRId64 ", not a batch the test appended",
			            scan->start_offset);
	}
	if (scan->count != m->count - (size_t)first)
		return fail(-EBADMSG, "the log holds %zu batches from offset %" PRId64 ", the test appended %zu",
		            scan->count, scan->start_offset, m->count - (size_t)first);
	return lt_model_check_range(m, (size_t)first, scan, 0, scan->count);
}

static int segment_cmp(const void *a, const void *b)
{
	const struct lt_segment *x = a, *y = b;

	return x->base_offset < y->base_offset ? -1 : x->base_offset > y->base_offset;
}

int lt_segments_list(const char *dir, struct lt_segment **out, size_t *count_out)
{
	DIR *d = opendir(dir);
	struct lt_segment *v = NULL;
	size_t count = 0, cap = 0;
	struct dirent *e;

	*out = NULL;
	*count_out = 0;
	if (!d)
		return fail(-errno, "opendir %s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		char path[PATH_MAX];
		char *end;

		if (n < 5 || strcmp(e->d_name + n - 4, ".log") != 0 || n >= sizeof(v->name))
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			void *nv = realloc(v, ncap * sizeof(*v));

			if (!nv) {
				closedir(d);
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap = ncap;
		}
		memcpy(v[count].name, e->d_name, n + 1);
		v[count].base_offset = strtoll(e->d_name, &end, 10);
		if (end != e->d_name + n - 4) {
			closedir(d);
			free(v);
			return fail(-EBADMSG, "segment %s/%s is not named <base offset>.log", dir, e->d_name);
		}
		if (lt_path_join(path, sizeof(path), dir, e->d_name) == 0)
			v[count].file_bytes = lt_file_bytes(path);
		count++;
	}
	closedir(d);
	if (count)
		qsort(v, count, sizeof(*v), segment_cmp);
	*out = v;
	*count_out = count;
	return 0;
}

int lt_fixture_setup(void **state)
{
	struct lt_fixture *fx = calloc(1, sizeof(*fx));
	int rc;

	if (!fx)
		return -1;
	fx->ring.event_fd = -1;
	if (lt_tmpdir_make(fx->root, sizeof(fx->root)) || lt_path_join(fx->dir, sizeof(fx->dir), fx->root, "p0")) {
		free(fx);
		return -1;
	}
	rc = sl_ring_init(&fx->ring, 0);
	if (rc) {
		fail(rc, "sl_ring_init: %s", strerror(-rc));
		sl_fs_rm_rf(fx->root);
		free(fx);
		return -1;
	}
	rc = sl_batch_builder_init(&fx->builder, LT_BUILDER_BYTES_MAX);
	if (rc) {
		fail(rc, "sl_batch_builder_init: %s", strerror(-rc));
		sl_ring_close(&fx->ring);
		sl_fs_rm_rf(fx->root);
		free(fx);
		return -1;
	}
	sl_log_config_default(&fx->cfg);
	fx->cfg.segment_bytes_max = LT_SEGMENT_BYTES_MAX;
	fx->cfg.segment_age_ms_max = 0;
	fx->cfg.index_interval_bytes = LT_INDEX_INTERVAL_BYTES;
	fx->cfg.inflight_appends_max = 64;
	fx->cfg.inflight_bytes_max = 16u * 1024 * 1024;
	fx->cfg.repair = 0;
	*state = fx;
	return 0;
}

int lt_fixture_teardown(void **state)
{
	struct lt_fixture *fx = *state;

	if (!fx)
		return 0;
	if (fx->log)
		lt_fixture_close(fx);
	sl_ring_close(&fx->ring);
	sl_batch_builder_free(&fx->builder);
	if (fx->mount_dir[0] && umount2(fx->mount_dir, MNT_DETACH) != 0)
		fail(-errno, "umount %s: %s", fx->mount_dir, strerror(errno));
	sl_fs_rm_rf(fx->root);
	free(fx);
	*state = NULL;
	return 0;
}

int lt_fixture_open(struct lt_fixture *fx)
{
	int rc;

	fx->err[0] = '\0';
	rc = sl_log_open(&fx->ring, fx->dir, &fx->cfg, &fx->log, fx->err, sizeof(fx->err));
	if (rc) {
		fx->log = NULL;
		fail(rc, "sl_log_open %s: %s (%s)", fx->dir, strerror(-rc), fx->err);
	}
	return rc;
}

int lt_fixture_close(struct lt_fixture *fx)
{
	int rc = 0;

	if (fx->log) {
		rc = sl_log_close(fx->log);
		fx->log = NULL;
		if (rc)
			fail(rc, "sl_log_close %s: %s", fx->dir, strerror(-rc));
	}
	return rc;
}

int lt_append_spec(struct lt_fixture *fx, struct lt_model *m, const struct lt_batch_spec *s, enum sl_durability level,
                   int64_t *base_out, int64_t *last_out)
{
	const uint8_t *built;
	size_t len;
	struct lt_append *la;
	int rc = lt_batch_build(&fx->builder, s, &built, &len);

	if (rc)
		return rc;
	/* The log writes the base offset into the bytes it is given: keep the builder's copy pristine. */
	la = malloc(sizeof(*la));
	if (!la)
		return -ENOMEM;
	lt_append_init(la, NULL, malloc(len), len, level);
	if (!la->a.batch) {
		free(la);
		return -ENOMEM;
	}
	memcpy(la->a.batch, built, len);
	rc = lt_append_wait(&fx->ring, fx->log, la);
	if (la->queued && !la->done)
		return rc; /* still queued in the log: leak it rather than free memory the log may use */
	if (rc == 0) {
		if (base_out)
			*base_out = la->a.base_offset;
		if (last_out)
			*last_out = la->a.last_offset;
		if (m)
			rc = lt_model_push(m, s, built, len, la->a.base_offset, la->a.last_offset);
	}
	free(la->a.batch);
	free(la);
	return rc;
}

int lt_append_specs(struct lt_fixture *fx, struct lt_model *m, const struct lt_batch_spec *specs, size_t count,
                    enum sl_durability level, const enum sl_durability *levels, int in_order)
{
	struct lt_append *v = calloc(count ? count : 1, sizeof(*v));
	struct lt_model built = {0};
	struct lt_acks acks = {0};
	int64_t next = sl_log_next_offset(fx->log);
	int rc = v ? 0 : -ENOMEM;

	/* Build every batch first: the builder's output is reused, so each append gets its own copy. */
	for (size_t i = 0; i < count && rc == 0; i++) {
		const uint8_t *p;
		size_t len;

		rc = lt_batch_build(&fx->builder, &specs[i], &p, &len);
		if (rc == 0)
			rc = lt_model_push(&built, &specs[i], p, len, -1, -1);
		if (rc == 0) {
			uint8_t *copy = malloc(len);

			if (!copy) {
				rc = -ENOMEM;
				break;
			}
			memcpy(copy, p, len);
			lt_append_init(&v[i], &acks, copy, len, levels ? levels[i] : level);
		}
	}
	if (rc == 0) {
		rc = lt_append_all(&fx->ring, fx->log, v, count);
		if (rc) {
			/* Some appends may still be queued in the log: their memory must outlive them, so it leaks. */
			lt_model_free(&built);
			return rc;
		}
	}
	for (size_t i = 0; i < count && rc == 0; i++) {
		const struct sl_append *a = &v[i].a;
		int64_t last = next + specs[i].record_count - 1;

		if (v[i].status != 0)
			rc = fail(v[i].status < 0 ? v[i].status : -EPROTO, "append %zu of %zu failed: %s", i, count,
			          strerror(v[i].status < 0 ? -v[i].status : EPROTO));
		else if (a->base_offset != next || a->last_offset != last)
			rc = fail(-EBADMSG,
			          "append %zu acknowledged offsets %" PRId64 "..%" PRId64 ", expected %" PRId64
			          "..%" PRId64,
			          i, a->base_offset, a->last_offset, next, last);
		else if (in_order && v[i].ack_index != i)
			rc = fail(-EBADMSG, "append %zu was acknowledged %" PRIu32 "th", i, v[i].ack_index);
		else if (m)
			rc = lt_model_push(m, &specs[i], built.batches[i].bytes, built.batches[i].len, next, last);
		next = last + 1;
	}
	for (size_t i = 0; v && i < count; i++)
		free(v[i].a.batch);
	free(v);
	lt_model_free(&built);
	return rc;
}
