/* What names a Kafka cluster and how to reach it, without librdkafka: the kafka:// address and its bootstrap
 * servers, and the librdkafka settings (--kafka-config KEY=VALUE, --kafka-config-file) a caller hands the Kafka
 * transport. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "proto/base/addr.h"

/* A settings file line: librdkafka's longest values (certificates inline) are a few KiB. */
#define LINE_BYTES_MAX (64 * 1024)

bool sl_broker_is_kafka(const char *broker)
{
	return broker != NULL && strncmp(broker, SL_KAFKA_SCHEME, strlen(SL_KAFKA_SCHEME)) == 0;
}

/* Each server of a kafka:// address, checked, joined into out (when not NULL) as "HOST:PORT,..."; *first_out (may
 * be NULL) gets the first one split. Returns 0 or -EINVAL with err set. */
static int servers_walk(const char *broker, char *out, size_t cap, struct sl_broker_addr *first_out, char *err,
                        size_t err_bytes)
{
	const char *p = broker + strlen(SL_KAFKA_SCHEME);
	size_t at = 0;
	uint32_t n = 0;

	if (strlen(broker) >= SL_KAFKA_ADDRESS_BYTES_MAX) {
		sl_error_set(err, err_bytes, "Kafka address longer than %d characters", SL_KAFKA_ADDRESS_BYTES_MAX - 1);
		return -EINVAL;
	}
	if (*p == '\0') {
		sl_error_set(err, err_bytes,
		             "Kafka address '%s' names no server: kafka://HOST:PORT[,HOST:PORT...] (e.g. "
		             "kafka://broker1:9092,broker2:9092)",
		             broker);
		return -EINVAL;
	}
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		char one[SL_ADDR_TEXT_BYTES], host[SL_ADDR_HOST_BYTES_MAX], why[SL_ERROR_BYTES],
		        joined[SL_ADDR_TEXT_BYTES];
		int port;

		if (len == 0 || len >= sizeof(one) || ++n > SL_KAFKA_SERVERS_MAX) {
			sl_error_set(err, err_bytes,
			             len == 0 ? "Kafka address '%s' has an empty server between commas"
			                      : "Kafka address '%s' has a server name too long or too many servers",
			             broker);
			return -EINVAL;
		}
		memcpy(one, p, len);
		one[len] = '\0';
		if (sl_addr_split(one, host, sizeof(host), &port, why, sizeof(why)) != 0) {
			sl_error_set(err, err_bytes, "Kafka server %s", why);
			return -EINVAL;
		}
		if (port == 0) {
			sl_error_set(err, err_bytes, "Kafka server '%s': the port must be a number from 1 to 65535",
			             one);
			return -EINVAL;
		}
		if (port < 0)
			port = atoi(SL_KAFKA_PORT_DEFAULT);
		if (n == 1 && first_out != NULL) {
			snprintf(first_out->host, sizeof(first_out->host), "%s", host);
			snprintf(first_out->port, sizeof(first_out->port), "%d", port);
		}
		sl_addr_join(host, port, joined, sizeof(joined));
		if (out != NULL) {
			int w = snprintf(out + at, cap - at, "%s%s", at ? "," : "", joined);
			if (w < 0 || (size_t)w >= cap - at)
				return -EINVAL;
			at += (size_t)w;
		}
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

int sl_kafka_broker_parse(const char *s, struct sl_broker_addr *out, char *err, size_t err_bytes)
{
	return servers_walk(s, NULL, 0, out, err, err_bytes);
}

int sl_kafka_bootstrap_text(const char *broker, char **out, char *err, size_t err_bytes)
{
	size_t cap = strlen(broker) + SL_KAFKA_SERVERS_MAX * 8 + 1; /* each server may gain ":9092" and brackets */
	char *s = malloc(cap);
	int rc;

	*out = NULL;
	if (s == NULL)
		return -ENOMEM;
	rc = servers_walk(broker, s, cap, NULL, err, err_bytes);
	if (rc != 0) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* ---- settings ---- */

static int setting_put(struct sl_kafka_config *cfg, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
	char *k = strndup(key, key_len), *v = strndup(value, value_len);

	if (k == NULL || v == NULL) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < cfg->count; i++) {
		if (strcmp(cfg->settings[i].key, k) == 0) {
			free(cfg->settings[i].value);
			free(k);
			cfg->settings[i].value = v;
			return 0;
		}
	}
	if (cfg->count == SL_KAFKA_SETTINGS_MAX) {
		free(k);
		free(v);
		return -E2BIG;
	}
	if (cfg->count == cfg->cap) {
		uint32_t cap = cfg->cap ? cfg->cap * 2 : 16;
		struct sl_kafka_setting *n = realloc(cfg->settings, cap * sizeof(*n));

		if (n == NULL) {
			free(k);
			free(v);
			return -ENOMEM;
		}
		cfg->settings = n;
		cfg->cap = cap;
	}
	cfg->settings[cfg->count++] = (struct sl_kafka_setting){k, v};
	return 0;
}

static const char *trim_start(const char *s, const char *end)
{
	while (s < end && isspace((unsigned char)*s))
		s++;
	return s;
}

static const char *trim_end(const char *start, const char *s)
{
	while (s > start && isspace((unsigned char)s[-1]))
		s--;
	return s;
}

/* One "KEY=VALUE" of len bytes: 0, -EINVAL (no '=' or an empty key), -E2BIG, -ENOMEM. */
static int setting_parse(struct sl_kafka_config *cfg, const char *s, size_t len)
{
	const char *end = s + len, *eq = memchr(s, '=', len);
	const char *k0, *k1, *v0, *v1;

	if (eq == NULL)
		return -EINVAL;
	k0 = trim_start(s, eq);
	k1 = trim_end(k0, eq);
	v0 = trim_start(eq + 1, end);
	v1 = trim_end(v0, end);
	if (k1 == k0)
		return -EINVAL;
	return setting_put(cfg, k0, (size_t)(k1 - k0), v0, (size_t)(v1 - v0));
}

int sl_kafka_config_add(struct sl_kafka_config *cfg, const char *key_value, char *err, size_t err_bytes)
{
	int rc = setting_parse(cfg, key_value, strlen(key_value));

	if (rc == -EINVAL)
		sl_error_set(err, err_bytes, "Kafka setting '%s' is not KEY=VALUE (e.g. security.protocol=SASL_SSL)",
		             key_value);
	else if (rc == -E2BIG)
		sl_error_set(err, err_bytes, "more than %d Kafka settings", SL_KAFKA_SETTINGS_MAX);
	else if (rc != 0)
		sl_error_set(err, err_bytes, "out of memory for Kafka settings");
	return rc;
}

int sl_kafka_config_read_file(struct sl_kafka_config *cfg, const char *path, char *err, size_t err_bytes)
{
	FILE *f = fopen(path, "r");
	char *line;
	uint64_t number = 0;
	int rc = 0;

	if (f == NULL) {
		rc = -errno;
		sl_error_set(err, err_bytes, "cannot read Kafka settings file '%s': %s", path, strerror(-rc));
		return rc;
	}
	line = malloc(LINE_BYTES_MAX);
	if (line == NULL) {
		fclose(f);
		return -ENOMEM;
	}
	while (rc == 0 && fgets(line, LINE_BYTES_MAX, f) != NULL) {
		size_t len = strlen(line);
		const char *s;

		number++;
		if (len == LINE_BYTES_MAX - 1 && line[len - 1] != '\n') {
			sl_error_set(err, err_bytes, "%s line %llu: longer than %d bytes", path,
			             (unsigned long long)number, LINE_BYTES_MAX - 2);
			rc = -EINVAL;
			break;
		}
		s = trim_start(line, line + len);
		len = (size_t)(trim_end(s, line + len) - s);
		if (len == 0 || *s == '#' || *s == '!')
			continue;
		rc = setting_parse(cfg, s, len);
		if (rc == -EINVAL)
			sl_error_set(err, err_bytes, "%s line %llu: not KEY=VALUE (comments start with # or !)", path,
			             (unsigned long long)number);
		else if (rc == -E2BIG)
			sl_error_set(err, err_bytes, "%s: more than %d Kafka settings", path, SL_KAFKA_SETTINGS_MAX);
		else if (rc != 0)
			sl_error_set(err, err_bytes, "out of memory for Kafka settings");
	}
	if (rc == 0 && ferror(f)) {
		rc = -EIO;
		sl_error_set(err, err_bytes, "reading Kafka settings file '%s' failed", path);
	}
	free(line);
	fclose(f);
	return rc;
}

const char *sl_kafka_config_get(const struct sl_kafka_config *cfg, const char *key)
{
	for (uint32_t i = 0; cfg != NULL && i < cfg->count; i++)
		if (strcmp(cfg->settings[i].key, key) == 0)
			return cfg->settings[i].value;
	return NULL;
}

int sl_kafka_config_copy(struct sl_kafka_config *dst, const struct sl_kafka_config *src)
{
	for (uint32_t i = 0; src != NULL && i < src->count; i++) {
		const struct sl_kafka_setting *s = &src->settings[i];
		int rc = setting_put(dst, s->key, strlen(s->key), s->value, strlen(s->value));

		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The settings of the global security options on a Kafka cluster (librdkafka's CONFIGURATION.md):
 *
 *   user U, password P     sasl.mechanisms=SCRAM-SHA-256, sasl.username=U, sasl.password=P
 *   security.protocol      SASL_SSL (a user and TLS), SASL_PLAINTEXT (a user), SSL (TLS alone)
 *   tls_ca, tls_cert/key   ssl.ca.location, ssl.certificate.location, ssl.key.location
 *
 * TLS is implied by tls_ca and tls_cert, as on synclogd's protocol. */
int sl_kafka_config_secure(struct sl_kafka_config *out, const struct sl_security_options *o,
                           const struct sl_kafka_config *user, char *err, size_t err_bytes)
{
	bool tls, sasl;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (o != NULL) {
		if ((o->tls_cert != NULL && o->tls_cert[0] != '\0') != (o->tls_key != NULL && o->tls_key[0] != '\0')) {
			sl_error_set(err, err_bytes,
			             "a client certificate needs its key: give both --tls-cert and --tls-key");
			return -EINVAL;
		}
		sasl = o->user != NULL && o->user[0] != '\0';
		if (sasl && o->password == NULL) {
			sl_error_set(err, err_bytes,
			             "user '%s' needs a password: set SYNCLOG_PASSWORD or --password-file", o->user);
			return -EINVAL;
		}
		tls = o->tls || (o->tls_ca != NULL && o->tls_ca[0] != '\0') ||
		      (o->tls_cert != NULL && o->tls_cert[0] != '\0');
		const struct {
			bool when;
			const char *key, *value;
		} map[] = {
		        {sasl || tls, "security.protocol", sasl ? (tls ? "SASL_SSL" : "SASL_PLAINTEXT") : "SSL"},
		        {sasl, "sasl.mechanisms", "SCRAM-SHA-256"},
		        {sasl, "sasl.username", o->user},
		        {sasl, "sasl.password", o->password},
		        {tls && o->tls_ca != NULL && o->tls_ca[0] != '\0', "ssl.ca.location", o->tls_ca},
		        {tls && o->tls_cert != NULL && o->tls_cert[0] != '\0', "ssl.certificate.location", o->tls_cert},
		        {tls && o->tls_key != NULL && o->tls_key[0] != '\0', "ssl.key.location", o->tls_key},
		};
		for (size_t i = 0; rc == 0 && i < sizeof(map) / sizeof(map[0]); i++)
			if (map[i].when)
				rc = setting_put(out, map[i].key, strlen(map[i].key), map[i].value,
				                 strlen(map[i].value));
	}
	if (rc == 0)
		rc = sl_kafka_config_copy(out, user);
	if (rc != 0) {
		sl_kafka_config_free(out);
		sl_error_set(err, err_bytes, "%s", rc == -E2BIG ? "too many Kafka settings" : "out of memory");
	}
	return rc;
}

void sl_kafka_config_free(struct sl_kafka_config *cfg)
{
	for (uint32_t i = 0; i < cfg->count; i++) {
		free(cfg->settings[i].key);
		/* A password may be among them (sasl.password, ssl.key.password). */
		explicit_bzero(cfg->settings[i].value, strlen(cfg->settings[i].value));
		free(cfg->settings[i].value);
	}
	free(cfg->settings);
	memset(cfg, 0, sizeof(*cfg));
}
