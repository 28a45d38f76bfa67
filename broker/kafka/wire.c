/* The growable output buffer of wire.h: responses are built in it, then written to the socket as they are. */
#include "broker/kafka/wire.h"

#include <errno.h>
#include <stdlib.h>

/* The first allocation: a small response (heartbeat, metadata of a few topics) fits without growing. */
#define KWRITE_FIRST_BYTES 512

int sl_kwrite_reserve(struct sl_kwrite *w, size_t more)
{
	if (w->err)
		return -ENOMEM;
	if (w->cap - w->len >= more)
		return 0;
	size_t cap = w->cap ? w->cap : KWRITE_FIRST_BYTES;
	while (cap - w->len < more) {
		if (cap > SIZE_MAX / 2) {
			w->err = 1;
			return -ENOMEM;
		}
		cap *= 2;
	}
	uint8_t *buf = realloc(w->buf, cap);
	if (buf == NULL) {
		w->err = 1;
		return -ENOMEM;
	}
	w->buf = buf;
	w->cap = cap;
	return 0;
}

void sl_kwrite_free(struct sl_kwrite *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}
