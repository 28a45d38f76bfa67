/* The Kafka front end: a TCP listener speaking Kafka's wire protocol (on cfg kafka_listen), so that Kafka clients,
 * connectors and tools produce to and consume from the same topics, logs and groups as the native listener. It
 * decodes Kafka requests into the handlers' requests (broker/dispatch.h) and encodes their answers back; the shard
 * wiring (broker/shard.c) starts and stops it beside the native listener, in the same four steps.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_KAFKA_H
#define SL_KAFKA_H

#include <stddef.h>

struct sl_server;

/* Bind the Kafka listener (cfg kafka_listen_host, kafka_listen_port) and start accepting; a no-op returning 0
 * when the listener is off (port -1). Returns 0 or a negative errno with a one-line message in err. */
int sl_kafka_start(struct sl_server *srv, char *err, size_t err_cap);
/* The bound port (the real one when 0 was asked), or -1 when the listener is off. */
int sl_kafka_port(const struct sl_server *srv);
/* Shutdown, step 1: close the listener, stop reading every connection, answer parked requests now. */
void sl_kafka_stop_accepting(struct sl_server *srv);
/* Shutdown, step 2: 1 once no request of any connection is alive. */
int sl_kafka_drained(const struct sl_server *srv);
/* Shutdown, step 3: close every connection. */
void sl_kafka_close(struct sl_server *srv);
/* After the loop ended. */
void sl_kafka_free(struct sl_server *srv);

#endif
