/* hiccup: when the machine itself could not run a thread on time.
 *
 * One thread per CPU, pinned to it at the highest SCHED_FIFO priority (when the caller may set it), sleeps to an
 * absolute deadline every --period-us (default 1000) with clock_nanosleep(CLOCK_MONOTONIC) and notes how late it
 * woke. Nothing in the guest can delay such a thread by milliseconds except the kernel itself (interrupts, softirq
 * and non-preemptible sections) or the host (a virtual CPU that is not running: steal). A latency benchmark run
 * beside it can then tell the records delayed while the machine stalled from the ones its subject delayed
 * (bench/steal_attr.py attribute).
 *
 * Output, one line per late wake-up of more than --late-us (default 500): "MONO_START_S CPU LATE_MS", where
 * MONO_START_S is the CLOCK_MONOTONIC second at which the thread should have woken, so the stall covers
 * [MONO_START_S, MONO_START_S + LATE_MS]. Runs --duration-s seconds, then prints a last line "# cpus N wakeups N".
 *
 * Cost: about 1,000 wake-ups a second per CPU of a few microseconds each.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct watcher {
	pthread_t thread;
	int cpu;
	int64_t period_ns;
	int64_t late_ns;
	int64_t end_ns;
	uint64_t wakeups;
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *watch(void *arg)
{
	struct watcher *w = arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		fprintf(stderr, "hiccup: cpu %d: cannot pin the watcher\n", w->cpu);
	struct sched_param sp = {.sched_priority = sched_get_priority_max(SCHED_FIFO)};
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) != 0)
		fprintf(stderr, "hiccup: cpu %d: no SCHED_FIFO (not root?): lateness includes other threads\n", w->cpu);
	int64_t next = mono_ns() + w->period_ns;
	while (next < w->end_ns) {
		struct timespec ts = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		int64_t now = mono_ns();
		w->wakeups++;
		if (now - next > w->late_ns) {
			pthread_mutex_lock(&out_lock);
			printf("%.6f %d %.3f\n", (double)next / 1e9, w->cpu, (double)(now - next) / 1e6);
			fflush(stdout);
			pthread_mutex_unlock(&out_lock);
		}
		next += w->period_ns;
		if (next < now) /* a stall longer than a period: resume from now, the stall is already noted */
			next = now + w->period_ns;
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: hiccup --duration-s S [--period-us N (1000)] [--late-us N (500)]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double duration_s = 0;
	long period_us = 1000, late_us = 500;
	for (int i = 1; i < argc; i++) {
		char *end = NULL;
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--duration-s") == 0)
			duration_s = strtod(argv[++i], &end);
		else if (strcmp(argv[i], "--period-us") == 0)
			period_us = strtol(argv[++i], &end, 10);
		else if (strcmp(argv[i], "--late-us") == 0)
			late_us = strtol(argv[++i], &end, 10);
		else
			usage();
		if (end == NULL || *end != '\0')
			usage();
	}
	if (duration_s <= 0 || period_us < 100 || late_us < 1)
		usage();
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1 || ncpu > 1024) {
		fprintf(stderr, "hiccup: cannot count the CPUs\n");
		return 1;
	}
	struct watcher *w = calloc((size_t)ncpu, sizeof(*w));
	if (w == NULL)
		return 1;
	int64_t end_ns = mono_ns() + (int64_t)(duration_s * 1e9);
	for (long c = 0; c < ncpu; c++) {
		w[c] = (struct watcher){
		        .cpu = (int)c, .period_ns = period_us * 1000, .late_ns = late_us * 1000, .end_ns = end_ns};
		int rc = pthread_create(&w[c].thread, NULL, watch, &w[c]);
		if (rc != 0) {
			fprintf(stderr, "hiccup: pthread_create: %s\n", strerror(rc));
			return 1;
		}
	}
	uint64_t total = 0;
	for (long c = 0; c < ncpu; c++) {
		pthread_join(w[c].thread, NULL);
		total += w[c].wakeups;
	}
	printf("# cpus %ld wakeups %llu\n", ncpu, (unsigned long long)total);
	free(w);
	return 0;
}
