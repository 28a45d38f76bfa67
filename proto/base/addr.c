/* HOST:PORT splitting, resolution and printing; see addr.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proto/base/addr.h"

static void error_set(char *err, size_t err_bytes, const char *fmt, const char *a)
{
	if (err != NULL && err_bytes > 0)
		snprintf(err, err_bytes, fmt, a);
}

int sl_addr_split(const char *s, char *host, size_t host_bytes, int *port_out, char *err, size_t err_bytes)
{
	const char *h = s, *port = NULL;
	size_t host_len;

	if (s == NULL || s[0] == '\0') {
		error_set(err, err_bytes, "%saddress is empty: give HOST:PORT", "");
		return -EINVAL;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
			error_set(err, err_bytes, "address '%s': expected [IPV6]:PORT", s);
			return -EINVAL;
		}
		h = s + 1;
		host_len = (size_t)(close - h);
		if (close[1] == ':')
			port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (colon != NULL && strchr(s, ':') != colon) {
			error_set(err, err_bytes, "address '%s': write an IPv6 address in brackets: [ADDRESS]:PORT", s);
			return -EINVAL;
		}
		host_len = colon != NULL ? (size_t)(colon - s) : strlen(s);
		if (colon != NULL)
			port = colon + 1;
	}
	if (host_len == 0 || host_len >= host_bytes || host_len >= SL_ADDR_HOST_BYTES_MAX) {
		error_set(err, err_bytes, "address '%s': the host is empty or too long", s);
		return -EINVAL;
	}
	*port_out = -1;
	if (port != NULL) {
		size_t n = strlen(port);
		long v = 0;

		for (size_t i = 0; i < n && n <= 5; i++)
			v = v * 10 + (port[i] - '0');
		if (n == 0 || n > 5 || strspn(port, "0123456789") != n || v > 65535) {
			error_set(err, err_bytes, "address '%s': the port must be a number from 0 to 65535", s);
			return -EINVAL;
		}
		*port_out = (int)v;
	}
	memcpy(host, h, host_len);
	host[host_len] = '\0';
	return 0;
}

int sl_addr_resolve(const char *host, int port, int passive, struct sockaddr_storage *out, socklen_t *len_out,
                    char *err, size_t err_bytes)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list;
	char service[8];
	int rc;

	hints.ai_flags = passive ? AI_PASSIVE : 0;
	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(host, service, &hints, &list);
	if (rc != 0) {
		if (err != NULL && err_bytes > 0)
			snprintf(err, err_bytes, "cannot resolve '%s': %s", host,
			         rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	memcpy(out, list->ai_addr, list->ai_addrlen);
	*len_out = list->ai_addrlen;
	freeaddrinfo(list);
	return 0;
}

void sl_addr_join(const char *host, int port, char *buf, size_t bytes)
{
	if (strchr(host, ':') != NULL)
		snprintf(buf, bytes, "[%s]:%d", host, port);
	else
		snprintf(buf, bytes, "%s:%d", host, port);
}

void sl_addr_format(const struct sockaddr *sa, char *buf, size_t bytes)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	sl_addr_join(host, port, buf, bytes);
}

int sl_addr_is_loopback(const struct sockaddr *addr)
{
	if (addr->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127;
	if (addr->sa_family != AF_INET6)
		return 0;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}
