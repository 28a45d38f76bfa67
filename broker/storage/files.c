/* The bounded LRU of partition file descriptors; see files.h. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "broker/storage/files.h"
#include "proto/base/assert.h"

void sl_files_init(struct sl_files *f, uint64_t fds_max)
{
	memset(f, 0, sizeof(*f));
	f->fds_max = fds_max;
}

void sl_files_entry_init(struct sl_files *f, struct sl_file_entry *e, int (*busy_cb)(struct sl_file_entry *e),
                         void (*close_cb)(struct sl_file_entry *e))
{
	memset(e, 0, sizeof(*e));
	e->files = f;
	e->busy_cb = busy_cb;
	e->close_cb = close_cb;
}

static void unlink_entry(struct sl_files *f, struct sl_file_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		f->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		f->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_head(struct sl_files *f, struct sl_file_entry *e)
{
	e->prev = NULL;
	e->next = f->head;
	if (f->head)
		f->head->prev = e;
	else
		f->tail = e;
	f->head = e;
}

void sl_files_set(struct sl_file_entry *e, uint32_t fds)
{
	struct sl_files *f = e->files;
	SL_ASSERT(f != NULL && f->fds_open >= e->fds);
	if (e->fds > 0)
		unlink_entry(f, e);
	f->fds_open = f->fds_open - e->fds + fds;
	e->fds = fds;
	if (fds > 0)
		push_head(f, e);
}

void sl_files_touch(struct sl_file_entry *e)
{
	struct sl_files *f = e->files;
	if (e->fds == 0 || f->head == e)
		return;
	unlink_entry(f, e);
	push_head(f, e);
}

int sl_files_reserve(struct sl_files *f, uint32_t fds, const struct sl_file_entry *keep)
{
	struct sl_file_entry *e = f->tail;
	while (f->fds_open + fds > f->fds_max && e != NULL) {
		struct sl_file_entry *prev = e->prev;
		if (e != keep && !e->busy_cb(e)) {
			uint32_t had = e->fds;
			e->close_cb(e);
			/* close_cb says what it holds now through sl_files_set; an entry that forgot is made to. */
			if (e->fds == had)
				sl_files_set(e, 0);
			f->closed_count++;
		}
		e = prev;
	}
	if (f->fds_open + fds <= f->fds_max)
		return 0;
	f->over_budget_count++;
	return -EMFILE;
}
