/* Network addresses as operators write them, for every listener and client: "HOST:PORT" where HOST is a name
 * (localhost, broker.internal), an IPv4 address, or an IPv6 address in brackets ([::1]:7070, [::]:0). Splitting,
 * resolving with getaddrinfo, and printing a bound address back the same way.
 *
 * sl_addr_resolve blocks on DNS: call it at start, never from an event loop that serves. */
#ifndef SL_BASE_ADDR_H
#define SL_BASE_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* A DNS name is at most 253 characters; an IPv6 literal far less. */
#define SL_ADDR_HOST_BYTES_MAX 256
/* "[" host "]:" port and the NUL. */
#define SL_ADDR_TEXT_BYTES     (SL_ADDR_HOST_BYTES_MAX + 10)

/* Split s into host (brackets removed) and port. A missing ":PORT" gives *port_out -1 (the caller's default);
 * port 0 is allowed (a listener picks a free one). Returns 0, or -EINVAL with a message naming what is wrong in
 * err. */
int sl_addr_split(const char *s, char *host, size_t host_bytes, int *port_out, char *err, size_t err_bytes);

/* Resolve host and port for a listener (AI_PASSIVE) or a client, preferring the first address getaddrinfo
 * returns. Returns 0 with *out and *len_out set, or -EHOSTUNREACH with getaddrinfo's reason in err. */
int sl_addr_resolve(const char *host, int port, int passive, struct sockaddr_storage *out, socklen_t *len_out,
                    char *err, size_t err_bytes);

/* "127.0.0.1:7070" or "[::1]:7070" for an IPv4 or IPv6 socket address. */
void sl_addr_format(const struct sockaddr *sa, char *buf, size_t bytes);
/* 1 when addr is a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.x.x). */
int sl_addr_is_loopback(const struct sockaddr *addr);
/* host and port as they would be written on a command line: brackets around an IPv6 literal. */
void sl_addr_join(const char *host, int port, char *buf, size_t bytes);

#endif
