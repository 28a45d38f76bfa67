/* Answers sent from files by splices (broker/sendfile.c): the parts reach a TCP peer in their order, byte for
 * byte, whether the file's pages are in memory (spliced on the caller's thread) or not (spliced by io_uring's
 * workers), through a pipe refilled many times and a reader that stops and goes on; an answer whose reader never
 * reads is aborted with an error and gives back its pipe and descriptors; reservations are bounded, also when they
 * grow piece by piece. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/sendfile.h"
#include "log_test_util.h"

#define FILE_BYTES (3u << 20)

struct fixture {
	struct sl_ring ring;
	struct sl_sendfile_pool pool;
	int sender, receiver; /* a TCP connection on loopback; the sender non-blocking, as libuv leaves it */
	int file_fd;
	uint8_t *file_bytes;
	char dir[256];
	char path[300];
	int done_count, done_status;
};

static void tcp_pair(int *sender, int *receiver)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
	*sender = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(*sender, (struct sockaddr *)&a, sizeof(a)), 0);
	*receiver = accept(l, NULL, NULL);
	assert_true(*receiver >= 0);
	close(l);
	fcntl(*sender, F_SETFL, fcntl(*sender, F_GETFL) | O_NONBLOCK);
	fcntl(*receiver, F_SETFL, fcntl(*receiver, F_GETFL) | O_NONBLOCK);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(sl_ring_init(&f->ring, 0), 0);
	sl_sendfile_pool_init(&f->pool);
	tcp_pair(&f->sender, &f->receiver);
	assert_int_equal(lt_tmpdir_make(f->dir, sizeof(f->dir)), 0);
	assert_int_equal(lt_path_join(f->path, sizeof(f->path), f->dir, "segment.log"), 0);
	f->file_fd = open(f->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(f->file_fd >= 0);
	f->file_bytes = malloc(FILE_BYTES);
	srand(7);
	for (size_t i = 0; i < FILE_BYTES; i++)
		f->file_bytes[i] = (uint8_t)rand();
	assert_int_equal(write(f->file_fd, f->file_bytes, FILE_BYTES), FILE_BYTES);
	assert_int_equal(fsync(f->file_fd), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	close(f->sender);
	close(f->receiver);
	close(f->file_fd);
	unlink(f->path);
	rmdir(f->dir);
	sl_sendfile_pool_free(&f->pool);
	sl_ring_close(&f->ring);
	free(f->file_bytes);
	free(f);
	return 0;
}

static struct fixture *done_fixture;

static void done_cb(struct sl_sendfile *sf, int status)
{
	(void)sf;
	done_fixture->done_count++;
	done_fixture->done_status = status;
}

/* An answer of mem "head", file [100, 100 + 2.5 MiB), mem "middle", file [5, 1005), mem "tail". */
static struct sl_sendfile *answer(struct fixture *f)
{
	struct sl_sendfile *sf = calloc(1, sizeof(*sf) + 5 * sizeof(struct sl_sendfile_part));
	assert_non_null(sf);
	sf->parts = (struct sl_sendfile_part *)(sf + 1);
	sf->parts[0] = (struct sl_sendfile_part){(const uint8_t *)"head", -1, 0, 4};
	sf->parts[1] = (struct sl_sendfile_part){NULL, dup(f->file_fd), 100, (5u << 20) / 2};
	sf->parts[2] = (struct sl_sendfile_part){(const uint8_t *)"middle", -1, 0, 6};
	sf->parts[3] = (struct sl_sendfile_part){NULL, dup(f->file_fd), 5, 1000};
	sf->parts[4] = (struct sl_sendfile_part){(const uint8_t *)"tail", -1, 0, 4};
	sf->part_count = 5;
	done_fixture = f;
	return sf;
}

static size_t expected(struct fixture *f, uint8_t *out)
{
	size_t n = 0;
	memcpy(out + n, "head", 4), n += 4;
	memcpy(out + n, f->file_bytes + 100, (5u << 20) / 2), n += (5u << 20) / 2;
	memcpy(out + n, "middle", 6), n += 6;
	memcpy(out + n, f->file_bytes + 5, 1000), n += 1000;
	memcpy(out + n, "tail", 4), n += 4;
	return n;
}

/* Read what arrived (the reader goes on), then let the ring move, until done_cb ran; then read on until want bytes
 * came. done_cb means every byte is in the sender's socket, not that the receiver has it: on a loaded machine the
 * last bytes may still be on their way, so the final reads wait for them (poll, 10 s: that only bounds a hang). */
static size_t receive_all(struct fixture *f, uint8_t *buf, size_t cap, size_t want)
{
	size_t got = 0;
	for (int rounds = 0; f->done_count == 0 && rounds < 100000; rounds++) {
		ssize_t n;
		while ((n = read(f->receiver, buf + got, cap - got)) > 0)
			got += (size_t)n;
		if (f->done_count == 0)
			assert_true(sl_ring_wait(&f->ring) >= 0);
	}
	for (;;) {
		ssize_t n;
		while ((n = read(f->receiver, buf + got, cap - got)) > 0)
			got += (size_t)n;
		struct pollfd p = {.fd = f->receiver, .events = POLLIN};
		if (got >= want || poll(&p, 1, 10000) <= 0)
			break;
	}
	return got;
}

static void send_and_compare(struct fixture *f, int cold)
{
	if (cold)
		assert_int_equal(posix_fadvise(f->file_fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	size_t cap = FILE_BYTES + 64;
	uint8_t *want = malloc(cap), *got = malloc(cap);
	size_t want_len = expected(f, want);
	assert_int_equal(sl_sendfile_reserve(&f->pool, 2), 0);
	struct sl_sendfile *sf = answer(f);
	assert_int_equal(sl_sendfile_start(sf, &f->pool, &f->ring, f->sender, 2, done_cb), 0);
	assert_int_equal(f->done_count, 0); /* invariant 4: never inside the start */
	size_t got_len = receive_all(f, got, cap, want_len);
	assert_int_equal(f->done_count, 1);
	assert_int_equal(f->done_status, 0);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
	if (cold)
		assert_true(sf->ring_fills > 0);
	/* Everything given back: the pipe kept (empty) for the next answer. */
	assert_int_equal(f->pool.answers, 0);
	assert_int_equal(f->pool.held_fds, 0);
	assert_int_equal(f->pool.idle_count, 1);
	free(sf);
	free(want);
	free(got);
}

static void parts_arrive_in_order_from_memory_pages(void **state)
{
	send_and_compare(*state, 0);
}

static void parts_arrive_in_order_from_the_disk_through_the_ring(void **state)
{
	send_and_compare(*state, 1);
}

static void an_unread_answer_aborted_gives_everything_back(void **state)
{
	struct fixture *f = *state;
	int small = 4096;
	setsockopt(f->receiver, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(f->sender, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	assert_int_equal(sl_sendfile_reserve(&f->pool, 2), 0);
	struct sl_sendfile *sf = answer(f);
	int file_fds[2] = {sf->parts[1].fd, sf->parts[3].fd};
	assert_int_equal(sl_sendfile_start(sf, &f->pool, &f->ring, f->sender, 2, done_cb), 0);
	/* Let it go as far as the socket takes: then it waits for the reader, who never reads. */
	for (int i = 0; i < 50; i++) {
		sl_ring_submit(&f->ring);
		sl_ring_reap(&f->ring);
		usleep(1000);
	}
	assert_int_equal(f->done_count, 0);
	sl_sendfile_abort(sf);
	for (int i = 0; i < 100 && f->done_count == 0; i++)
		sl_ring_wait(&f->ring);
	assert_int_equal(f->done_count, 1);
	assert_true(f->done_status < 0);
	assert_int_equal(fcntl(file_fds[0], F_GETFD), -1);
	assert_int_equal(fcntl(file_fds[1], F_GETFD), -1);
	assert_int_equal(f->pool.answers, 0);
	assert_int_equal(f->pool.held_fds, 0);
	assert_int_equal(f->pool.idle_count, 0); /* a pipe with bytes left in it is closed, never reused */
	free(sf);
}

static void reservations_are_bounded(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < SL_SENDFILE_PIPES_MAX; i++)
		assert_int_equal(sl_sendfile_reserve(&f->pool, 1), 0);
	assert_int_equal(sl_sendfile_reserve(&f->pool, 1), -EAGAIN); /* no pipe left */
	for (int i = 0; i < SL_SENDFILE_PIPES_MAX; i++)
		sl_sendfile_unreserve(&f->pool, 1);
	assert_int_equal(sl_sendfile_reserve(&f->pool, SL_SENDFILE_HELD_FDS_MAX), -EAGAIN); /* files + socket */
	assert_int_equal(sl_sendfile_reserve(&f->pool, SL_SENDFILE_HELD_FDS_MAX - 1), 0);
	assert_int_equal(sl_sendfile_reserve(&f->pool, 0), -EAGAIN);
	sl_sendfile_unreserve(&f->pool, SL_SENDFILE_HELD_FDS_MAX - 1);
	assert_int_equal(f->pool.answers, 0);
	assert_int_equal(f->pool.held_fds, 0);
}

/* A Kafka Fetch reserves its files topic by topic: the additions stay within the descriptors, a refused one leaves
 * the reservation as it was, and one give-back of the sum returns everything. */
static void a_reservation_grows_within_the_bound(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(sl_sendfile_reserve(&f->pool, 2), 0);
	assert_int_equal(sl_sendfile_reserve_more(&f->pool, 3), 0);
	assert_int_equal(f->pool.answers, 1);
	assert_int_equal(f->pool.held_fds, 6); /* five files and the socket */
	assert_int_equal(sl_sendfile_reserve_more(&f->pool, SL_SENDFILE_HELD_FDS_MAX - 5), -EAGAIN);
	assert_int_equal(f->pool.held_fds, 6);
	assert_int_equal(sl_sendfile_reserve_more(&f->pool, SL_SENDFILE_HELD_FDS_MAX - 6), 0);
	assert_int_equal(sl_sendfile_reserve(&f->pool, 0), -EAGAIN); /* no descriptor left for another answer */
	sl_sendfile_unreserve(&f->pool, SL_SENDFILE_HELD_FDS_MAX - 1);
	assert_int_equal(f->pool.answers, 0);
	assert_int_equal(f->pool.held_fds, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(parts_arrive_in_order_from_memory_pages, setup, teardown),
	        cmocka_unit_test_setup_teardown(parts_arrive_in_order_from_the_disk_through_the_ring, setup, teardown),
	        cmocka_unit_test_setup_teardown(an_unread_answer_aborted_gives_everything_back, setup, teardown),
	        cmocka_unit_test_setup_teardown(reservations_are_bounded, setup, teardown),
	        cmocka_unit_test_setup_teardown(a_reservation_grows_within_the_bound, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
