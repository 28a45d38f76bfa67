/* A program built only against the installed library (`pkg-config --cflags --libs synclog`): it produces COUNT
 * keyed change events to TOPIC at acks fsync, then reads the topic back from the start and prints what it saw.
 * tests/integration/test_install_pkgconfig.sh builds and runs it; it also shows the smallest use of the API.
 *
 * Usage: roundtrip BROKER TOPIC COUNT */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <synclog.h>

struct tally {
	uint64_t acked;
	uint64_t failed;
};

static void delivered_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct tally *t = cb_arg;
	(void)opaque;
	if (d->status == 0) {
		t->acked++;
	} else {
		t->failed++;
		fprintf(stderr, "roundtrip: a record failed: %s\n", d->error);
	}
}

static int produce(const char *broker, const char *topic, int count)
{
	struct sl_producer_options o;
	struct sl_producer *p;
	struct tally t = {0};
	char err[256];
	sl_producer_options_init(&o);
	o.broker = broker;
	o.topic = topic;
	o.acks = SL_ACKS_FSYNC;
	o.delivery_cb = delivered_cb;
	o.delivery_cb_arg = &t;
	if (sl_producer_new(&p, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "roundtrip: %s\n", err);
		return -1;
	}
	for (int i = 0; i < count; i++) {
		char key[32], value[64];
		snprintf(key, sizeof(key), "customer-%d", i % 10);
		snprintf(value, sizeof(value), "{\"id\":%d,\"email\":\"c%d@example.com\"}", i % 10, i);
		struct sl_record r = {.key = (const uint8_t *)key,
		                      .key_len = (int32_t)strlen(key),
		                      .value = (const uint8_t *)value,
		                      .value_len = (int32_t)strlen(value),
		                      .version = i + 1,
		                      .op = SL_OP_UPSERT};
		if (sl_producer_send(p, SL_PARTITION_ANY, &r, NULL) != 0) {
			fprintf(stderr, "roundtrip: send: %s\n", sl_producer_error(p));
			sl_producer_free(p);
			return -1;
		}
	}
	int rc = sl_producer_flush(p, -1);
	sl_producer_free(p);
	printf("produced %" PRIu64 " acknowledged, %" PRIu64 " failed\n", t.acked, t.failed);
	return rc == 0 && t.failed == 0 ? 0 : -1;
}

static int consume(const char *broker, const char *topic)
{
	struct sl_fetcher_options o;
	struct sl_fetcher *f;
	char err[256];
	uint64_t seen = 0;
	int64_t last_version = 0;
	sl_fetcher_options_init(&o);
	o.broker = broker;
	o.topic = topic;
	o.stop_at_end = true;
	if (sl_fetcher_new(&f, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "roundtrip: %s\n", err);
		return -1;
	}
	while (!sl_fetcher_done(f)) {
		if (sl_fetcher_fetch(f) != 0) {
			fprintf(stderr, "roundtrip: fetch: %s\n", sl_fetcher_error(f));
			sl_fetcher_free(f);
			return -1;
		}
		uint32_t partition;
		struct sl_record r;
		while (sl_fetcher_next(f, &partition, &r) == 1) {
			seen++;
			if (r.version > last_version)
				last_version = r.version;
		}
	}
	sl_fetcher_free(f);
	printf("consumed %" PRIu64 " records, highest version %" PRId64 "\n", seen, last_version);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: roundtrip BROKER TOPIC COUNT\n");
		return 2;
	}
	if (produce(argv[1], argv[2], atoi(argv[3])) != 0 || consume(argv[1], argv[2]) != 0)
		return 1;
	return 0;
}
