/* What names a Kafka cluster and how to reach it (consumer/client/kafka_config.c): kafka:// addresses and their
 * bootstrap servers, --kafka-config KEY=VALUE settings, settings files in the Java properties form, and the
 * security options (--user, --tls-ca, ...) as librdkafka's SASL and TLS settings. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer/client/client_impl.h"
#include "log_test_util.h"

static void kafka_addresses_name_their_bootstrap_servers(void **state)
{
	char err[SL_ERROR_BYTES], *servers;
	struct sl_broker_addr addr;

	(void)state;
	assert_true(sl_broker_is_kafka("kafka://b1:9092"));
	assert_false(sl_broker_is_kafka("127.0.0.1:7070"));
	assert_int_equal(sl_broker_parse("kafka://b1,b2:9093,[::1]:19092", &addr, err, sizeof(err)), 0);
	assert_string_equal(addr.host, "b1");
	assert_string_equal(addr.port, "9092"); /* Kafka's port when none is given, not synclogd's */
	assert_int_equal(sl_kafka_bootstrap_text("kafka://b1,b2:9093,[::1]:19092", &servers, err, sizeof(err)), 0);
	assert_string_equal(servers, "b1:9092,b2:9093,[::1]:19092");
	free(servers);
}

static void bad_kafka_addresses_are_refused_with_the_reason(void **state)
{
	static const char *const bad[] = {"kafka://",         "kafka://b1,,b2", "kafka://b1:0",
	                                  "kafka://b1:99999", "kafka://b1,",    "kafka://[::1"};
	char err[SL_ERROR_BYTES];
	struct sl_broker_addr addr;
	struct sl_conn *c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(sl_broker_parse(bad[i], &addr, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
		assert_int_equal(sl_conn_new(&c, bad[i], "t"), -EINVAL);
		assert_null(c);
	}
}

static void settings_take_key_value_and_the_last_wins(void **state)
{
	struct sl_kafka_config cfg = {0};
	char err[SL_ERROR_BYTES];

	(void)state;
	assert_int_equal(sl_kafka_config_add(&cfg, "security.protocol=SASL_SSL", err, sizeof(err)), 0);
	assert_int_equal(sl_kafka_config_add(&cfg, " sasl.password = a=b ", err, sizeof(err)), 0);
	assert_int_equal(sl_kafka_config_add(&cfg, "security.protocol=SSL", err, sizeof(err)), 0);
	assert_int_equal(cfg.count, 2);
	assert_string_equal(sl_kafka_config_get(&cfg, "security.protocol"), "SSL");
	assert_string_equal(sl_kafka_config_get(&cfg, "sasl.password"), "a=b"); /* the first '=' splits */
	assert_null(sl_kafka_config_get(&cfg, "acks"));
	assert_int_equal(sl_kafka_config_add(&cfg, "no-equals", err, sizeof(err)), -EINVAL);
	assert_int_equal(sl_kafka_config_add(&cfg, "=value", err, sizeof(err)), -EINVAL);
	assert_int_equal(cfg.count, 2);
	sl_kafka_config_free(&cfg);
	assert_int_equal(cfg.count, 0);
}

static void security_options_become_sasl_and_tls_settings(void **state)
{
	struct sl_security_options o = {.user = "admin", .password = "pw", .tls_ca = "/ca.pem"};
	struct sl_kafka_config out, user = {0};
	char err[SL_ERROR_BYTES];

	(void)state;
	/* A user and a CA: SASL over TLS, SCRAM-SHA-256 as synclogd's own protocol uses. */
	assert_int_equal(sl_kafka_config_secure(&out, &o, NULL, err, sizeof(err)), 0);
	assert_string_equal(sl_kafka_config_get(&out, "security.protocol"), "SASL_SSL");
	assert_string_equal(sl_kafka_config_get(&out, "sasl.mechanisms"), "SCRAM-SHA-256");
	assert_string_equal(sl_kafka_config_get(&out, "sasl.username"), "admin");
	assert_string_equal(sl_kafka_config_get(&out, "sasl.password"), "pw");
	assert_string_equal(sl_kafka_config_get(&out, "ssl.ca.location"), "/ca.pem");
	assert_null(sl_kafka_config_get(&out, "ssl.certificate.location"));
	sl_kafka_config_free(&out);
	/* The user's own settings win over the mapped ones. */
	assert_int_equal(sl_kafka_config_add(&user, "sasl.mechanisms=SCRAM-SHA-512", err, sizeof(err)), 0);
	assert_int_equal(sl_kafka_config_secure(&out, &o, &user, err, sizeof(err)), 0);
	assert_string_equal(sl_kafka_config_get(&out, "sasl.mechanisms"), "SCRAM-SHA-512");
	assert_string_equal(sl_kafka_config_get(&out, "sasl.username"), "admin");
	sl_kafka_config_free(&out);
	sl_kafka_config_free(&user);
	/* A user without TLS; TLS without a user (a client certificate implies it). */
	o = (struct sl_security_options){.user = "admin", .password = "pw"};
	assert_int_equal(sl_kafka_config_secure(&out, &o, NULL, err, sizeof(err)), 0);
	assert_string_equal(sl_kafka_config_get(&out, "security.protocol"), "SASL_PLAINTEXT");
	assert_null(sl_kafka_config_get(&out, "ssl.ca.location"));
	sl_kafka_config_free(&out);
	o = (struct sl_security_options){.tls_cert = "/c.pem", .tls_key = "/k.pem"};
	assert_int_equal(sl_kafka_config_secure(&out, &o, NULL, err, sizeof(err)), 0);
	assert_string_equal(sl_kafka_config_get(&out, "security.protocol"), "SSL");
	assert_string_equal(sl_kafka_config_get(&out, "ssl.certificate.location"), "/c.pem");
	assert_string_equal(sl_kafka_config_get(&out, "ssl.key.location"), "/k.pem");
	assert_null(sl_kafka_config_get(&out, "sasl.username"));
	sl_kafka_config_free(&out);
	/* Nothing set: no settings at all (librdkafka's plaintext default). */
	o = (struct sl_security_options){0};
	assert_int_equal(sl_kafka_config_secure(&out, &o, NULL, err, sizeof(err)), 0);
	assert_int_equal(out.count, 0);
	sl_kafka_config_free(&out);
	/* Refused as on synclogd's protocol. */
	o = (struct sl_security_options){.tls_cert = "/c.pem"};
	assert_int_equal(sl_kafka_config_secure(&out, &o, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--tls-key"));
	o = (struct sl_security_options){.user = "admin"};
	assert_int_equal(sl_kafka_config_secure(&out, &o, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "needs a password"));
}

static void settings_files_are_java_properties(void **state)
{
	char dir[256], path[300], err[SL_ERROR_BYTES];
	struct sl_kafka_config cfg = {0};
	FILE *f;

	(void)state;
	assert_int_equal(lt_tmpdir_make(dir, sizeof(dir)), 0);
	assert_int_equal(lt_path_join(path, sizeof(path), dir, "client.properties"), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# client.properties\n\n! another comment\nsecurity.protocol=SASL_SSL\n"
	      "  sasl.mechanisms = SCRAM-SHA-256  \nssl.ca.location=/etc/ca.pem\n",
	      f);
	fclose(f);
	assert_int_equal(sl_kafka_config_read_file(&cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg.count, 3);
	assert_string_equal(sl_kafka_config_get(&cfg, "sasl.mechanisms"), "SCRAM-SHA-256");
	assert_string_equal(sl_kafka_config_get(&cfg, "ssl.ca.location"), "/etc/ca.pem");
	f = fopen(path, "w");
	fputs("acks=all\nthis line is no setting\n", f);
	fclose(f);
	err[0] = '\0';
	assert_int_equal(sl_kafka_config_read_file(&cfg, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 2"));
	unlink(path);
	assert_int_equal(sl_kafka_config_read_file(&cfg, path, err, sizeof(err)), -ENOENT);
	rmdir(dir);
	sl_kafka_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(kafka_addresses_name_their_bootstrap_servers),
	        cmocka_unit_test(bad_kafka_addresses_are_refused_with_the_reason),
	        cmocka_unit_test(settings_take_key_value_and_the_last_wins),
	        cmocka_unit_test(settings_files_are_java_properties),
	        cmocka_unit_test(security_options_become_sasl_and_tls_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
