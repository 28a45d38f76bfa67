/* Line reading for `synclog produce`: a buffer that grows to the longest line seen (up to a bound) and is reused,
 * filled by one read() when the caller's poll says the descriptor is ready. See line_reader.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/line_reader.h"

#define BUF_BYTES_INITIAL (64 * 1024)

int line_reader_init(struct line_reader *lr, int fd, size_t line_bytes_max)
{
	memset(lr, 0, sizeof(*lr));
	lr->fd = fd;
	lr->line_bytes_max = line_bytes_max;
	lr->buf = malloc(BUF_BYTES_INITIAL);
	if (lr->buf == NULL)
		return -ENOMEM;
	lr->cap = BUF_BYTES_INITIAL;
	return 0;
}

void line_reader_free(struct line_reader *lr)
{
	free(lr->buf);
	lr->buf = NULL;
}

int line_reader_next(struct line_reader *lr, const char **line, size_t *len)
{
	char *nl = memchr(lr->buf + lr->scan, '\n', lr->end - lr->scan);

	if (nl == NULL && lr->eof && lr->start < lr->end)
		nl = lr->buf + lr->end; /* the last line, without a newline */
	if (nl == NULL) {
		lr->scan = lr->end;
		if (lr->eof)
			return 0;
		if (lr->end - lr->start > lr->line_bytes_max) {
			/* Too long to keep: drop what is buffered and the rest of the line as it arrives. */
			lr->skipping = true;
			lr->start = lr->end = lr->scan = 0;
		}
		return -EAGAIN;
	}
	*line = lr->buf + lr->start;
	*len = (size_t)(nl - (lr->buf + lr->start));
	lr->start = nl < lr->buf + lr->end ? (size_t)(nl - lr->buf) + 1 : lr->end;
	lr->scan = lr->start;
	lr->line_number++;
	if (lr->skipping || *len > lr->line_bytes_max) {
		lr->skipping = false;
		return -E2BIG;
	}
	return 1;
}

int line_reader_fill(struct line_reader *lr)
{
	ssize_t n;

	if (lr->start > 0 && lr->end == lr->cap) {
		memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
		lr->end -= lr->start;
		lr->scan -= lr->start;
		lr->start = 0;
	}
	if (lr->end == lr->cap) {
		/* A line longer than the buffer: grow, up to one byte past the bound so that overflow shows. */
		size_t cap = lr->cap * 2 > lr->line_bytes_max + 1 ? lr->line_bytes_max + 1 : lr->cap * 2;
		char *p;

		if (cap <= lr->cap) {
			lr->skipping = true;
			lr->start = lr->end = lr->scan = 0;
		} else {
			p = realloc(lr->buf, cap);
			if (p == NULL)
				return -ENOMEM;
			lr->buf = p;
			lr->cap = cap;
		}
	}
	n = read(lr->fd, lr->buf + lr->end, lr->cap - lr->end);
	if (n < 0)
		return errno == EINTR ? -EINTR : errno == EAGAIN ? 0 : -EIO;
	if (n == 0)
		lr->eof = true;
	lr->end += (size_t)n;
	return 0;
}
