/* The native front end: the TCP listener of proto/synclog.proto, its connections (framing, backpressure, the
 * frame pool) and the metrics HTTP listener. It decodes frames into requests for broker/dispatch.h and sends
 * what the handlers answer; the shard wiring (broker/shard.c) starts and stops it.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_NET_H
#define SL_BROKER_NET_H

#include <stddef.h>

#include "broker/shard.h"

/* Bind the native listener (cfg listen_host, listen_port) and start accepting. *port_out gets the bound port.
 * Returns 0 or a negative errno with a one-line message in err. */
int sl_net_start(struct sl_server *srv, int *port_out, char *err, size_t err_cap);
/* Shutdown, step 1: close the listener, stop reading every connection, answer parked requests now. */
void sl_net_stop_accepting(struct sl_server *srv);
/* Shutdown, step 2: 1 once no request of any connection is alive (answers handed to the sockets). */
int sl_net_drained(const struct sl_server *srv);
/* Shutdown, step 3: close every connection; memory is freed in the close callbacks, then by sl_net_free. */
void sl_net_close(struct sl_server *srv);
/* After the loop ended. */
void sl_net_free(struct sl_server *srv);

/* metrics.c: the Prometheus endpoint on cfg metrics_host:metrics_port (no-op when the port is -1). */
int sl_metrics_start(struct sl_server *srv, char *err, size_t err_cap);
void sl_metrics_stop(struct sl_server *srv);

#endif
