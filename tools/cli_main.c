/* `synclog`, the operator CLI: takes the global flags from anywhere on the command line and hands the rest to the
 * command. The commands, flags, output and exit codes are the contract in ../shared/CLI.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "proto/version.h"
#include "tools/cli.h"

static const struct cli_command main_command = {
        .name = "",
        .usage =
                "usage: synclog [--broker HOST:PORT|kafka://HOST:PORT,...] [--kafka-config KEY=VALUE]\n"
                "               [--kafka-config-file FILE] [--json] [--timeout DURATION] [--user NAME]\n"
                "               [--password-file FILE] [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]\n"
                "               COMMAND ...\n"
                "\n"
                "commands:\n"
                "  topic create NAME --partitions N [--retention-ms D] [--retention-bytes B] [--segment-bytes B]\n"
                "               [--segment-ms D] [--if-not-exists]\n"
                "  topic list\n"
                "  topic describe NAME\n"
                "  topic delete NAME\n"
                "  produce TOPIC [--acks none|written|fsync] [--origin live|backfill|repair] [--input tsv|json]\n"
                "                [--compression none|zstd]\n"
                "  consume TOPIC [--group G] [--from earliest|latest|OFFSET|-N|@TIME] [--partition P] [--max N]\n"
                "                [--follow] [--format TEMPLATE]\n"
                "  group list\n"
                "  group describe G\n"
                "  group delete G [--force]\n"
                "  offsets reset --group G --topic T[:P[,P...]] SPEC [--dry-run|--execute] [--force]\n"
                "  apply TOPIC --group G --target sqlite:PATH [--table NAME] [--follow] [--tombstone-retention D]\n"
                "        [--purge] [--reject-retries N] [--failure-retries N] [--allow-gap]\n"
                "        [--conflicts P] [--upcast VERSION=MAPPING] [--fetch-url URL] [--no-contract] ...\n"
                "  backfill TOPIC --source SRC [--key COL] [--version COL] [--value COL] [--chunk N] [--rate N]\n"
                "           [--rate-bytes B] [--checkpoint PATH] [--restart] [--acks LEVEL]\n"
                "  reconcile --source SRC --target TARGET [--table NAME] [--key COL] [--version COL] [--value COL]\n"
                "            [--sample F] [--seed N] [--threshold R] [--report PATH] [--repair TOPIC] [--every D]\n"
                "  contract set TOPIC FILE [--set-by NAME] [--if-version N]\n"
                "  contract show TOPIC [--version N] [--history]\n"
                "  contract check TOPIC [--target TARGET] [--table NAME]\n"
                "  conflicts list --target sqlite:PATH [--table NAME] [--all | --status S] [--limit N]\n"
                "  conflicts resolve ID --target sqlite:PATH [--table NAME] --keep source|target|KEY=VALUE\n"
                "  copy --from BROKER --to BROKER TOPIC [--group G] [--to-topic NAME] [--rate N]\n"
                "  user add NAME [--password-stdin] [--data-dir DIR]\n"
                "  user list\n"
                "  user delete NAME\n"
                "  acl add|remove --principal NAME (--topic T|--group G|--cluster) --op OP [--prefix]\n"
                "  acl list [--principal NAME]\n"
                "  group alter G [--stall-after D] [--window N]\n"
                "  dlq list|show TOPIC [--group G]\n"
                "  dlq redrive TOPIC --group G [--offset O] [--values json|text] [--execute]\n"
                "  status [--watch]\n"
                "  version\n"
                "\n"
                "global flags, before or after the command:\n"
                "  --broker HOST:PORT  the broker (default: $SYNCLOG_BROKER, else " SL_BROKER_DEFAULT
                "); HOST may be a\n"
                "                      name or an IPv6 address in brackets: [::1]:7070. kafka://HOST:PORT,...\n"
                "                      names a Kafka or Redpanda cluster (its bootstrap servers, port 9092 by\n"
                "                      default): the commands reach it through librdkafka\n"
                "  --kafka-config KEY=VALUE  a librdkafka setting for a kafka:// broker (security.protocol,\n"
                "                      sasl.username, ssl.ca.location, timeouts, ...); repeatable, over the file's\n"
                "  --kafka-config-file FILE  librdkafka settings, one KEY=VALUE a line (# comments), as Kafka's\n"
                "                      client.properties\n"
                "  --json              machine output: one JSON object per line\n"
                "  --timeout D         give up connecting or waiting for an answer of the broker after D\n"
                "                      (default 30s; 500ms, 10s, 2m or ISO 8601)\n"
                "  --user NAME         authenticate as NAME with SCRAM-SHA-256 (default: $SYNCLOG_USER); the\n"
                "                      password comes from $SYNCLOG_PASSWORD or --password-file\n"
                "  --password-file FILE  the password is the first line of FILE\n"
                "  --tls               connect with TLS (default: $SYNCLOG_TLS=1); implied by --tls-ca, --tls-cert\n"
                "  --tls-ca FILE       PEM CA certificates the broker's certificate must chain to (default:\n"
                "                      $SYNCLOG_TLS_CA, else the system's)\n"
                "  --tls-cert FILE     a client certificate for mutual TLS, with --tls-key ($SYNCLOG_TLS_CERT)\n"
                "  --tls-key FILE      its private key ($SYNCLOG_TLS_KEY)\n"
                "                      On a kafka:// broker these are SASL SCRAM-SHA-256 and TLS settings of\n"
                "                      librdkafka (security.protocol SASL_SSL, SASL_PLAINTEXT or SSL, sasl.*,\n"
                "                      ssl.*); --kafka-config settings replace them\n"
                "  --version           print the version\n"
                "  --help              this text; `synclog COMMAND --help` describes a command\n"
                "\n"
                "Durations (D) are 500ms, 30s, 10m, 2h, 7d, 1h30m or ISO 8601 (PT30M, P7D); times (TIME) are ISO 8601\n"
                "(2024-05-01T12:00:00Z), epoch milliseconds, or a duration ago (-10m).\n"
                "exit status: 0 success, 1 operating error (stderr says what failed and what to do), 2 bad usage\n"
                "Manual: man synclog, man synclog-COMMAND (synclog-topic, synclog-consume, ...), man synclogd.\n",
};

/* The password file's first line, without its line end. */
static char password_file_text[1024];

static int password_file_read(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "synclog: cannot read --password-file %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fgets(password_file_text, sizeof(password_file_text), f) == NULL)
		password_file_text[0] = '\0';
	fclose(f);
	n = strcspn(password_file_text, "\r\n");
	password_file_text[n] = '\0';
	return 0;
}

/* The security flags among the global ones: 1 when argv[*i] was one (taken), 0 when not, -1 after a usage error. */
static int security_flag(int argc, char **argv, int *i, struct cli *cli)
{
	static const char *const files[] = {"--tls-ca", "--tls-cert", "--tls-key", "--user", "--password-file"};
	const char *value;

	if (strcmp(argv[*i], "--tls") == 0) {
		cli->security.tls = true;
		return 1;
	}
	for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
		int rc = cli_flag(argc, argv, i, files[k], &value);

		if (rc == 0)
			continue;
		if (rc < 0 || value[0] == '\0') {
			cli_usage_error(&main_command, "%s needs a value", files[k]);
			return -1;
		}
		switch (k) {
		case 0:
			cli->security.tls_ca = value;
			break;
		case 1:
			cli->security.tls_cert = value;
			break;
		case 2:
			cli->security.tls_key = value;
			break;
		case 3:
			cli->security.user = value;
			break;
		default:
			if (password_file_read(value) != 0)
				return -2;
			cli->security.password = password_file_text;
		}
		return 1;
	}
	return 0;
}

/* The global flags' values that are resolved after all of them were seen. */
struct globals_late {
	const char *kafka_config_file;
	const char **kafka_settings; /* argc entries */
	int kafka_setting_count;
};

/* Take --broker, --json and the other global flags out of argv wherever they are (up to a "--"); the rest stays
 * in order in args. Returns the new count, -1 after a usage error was printed, -2 after an operating error. */
static int globals_take(int argc, char **argv, struct cli *cli, char **args, struct globals_late *late)
{
	int n = 0;
	bool rest = false;

	for (int i = 1; i < argc; i++) {
		const char *value;
		int rc;

		if (rest) {
			args[n++] = argv[i];
			continue;
		}
		if (strcmp(argv[i], "--") == 0) {
			rest = true;
			args[n++] = argv[i];
			continue;
		}
		if (strcmp(argv[i], "--json") == 0) {
			cli->json = true;
			continue;
		}
		rc = cli_flag(argc, argv, &i, "--timeout", &value);
		if (rc != 0) {
			int64_t ms;

			if (rc < 0 || cli_parse_duration_ms(value, &ms) != 0 || ms < 1 || ms > UINT32_MAX) {
				cli_usage_error(
				        &main_command,
				        "--timeout needs a duration such as 500ms, 10s or 2m (at most 49 days)");
				return -1;
			}
			cli->timeout_ms = (uint32_t)ms;
			continue;
		}
		rc = cli_flag(argc, argv, &i, "--kafka-config-file", &value);
		if (rc != 0) {
			if (rc < 0) {
				cli_usage_error(&main_command, "--kafka-config-file needs a FILE of KEY=VALUE lines");
				return -1;
			}
			late->kafka_config_file = value;
			continue;
		}
		rc = cli_flag(argc, argv, &i, "--kafka-config", &value);
		if (rc != 0) {
			if (rc < 0) {
				cli_usage_error(&main_command, "--kafka-config needs KEY=VALUE (a librdkafka setting)");
				return -1;
			}
			late->kafka_settings[late->kafka_setting_count++] = value;
			continue;
		}
		rc = security_flag(argc, argv, &i, cli);
		if (rc < 0)
			return rc;
		if (rc == 1)
			continue;
		rc = cli_flag(argc, argv, &i, "--broker", &value);
		if (rc < 0) {
			cli_usage_error(&main_command, "--broker needs a value: HOST:PORT or kafka://HOST:PORT,...");
			return -1;
		}
		if (rc == 1) {
			cli->broker = value;
			continue;
		}
		args[n++] = argv[i];
	}
	args[n] = NULL;
	return n;
}

/* --kafka-config-file, then every --kafka-config over it, into cli->kafka. Kafka settings with a native broker are
 * a usage error, except for copy, whose brokers are its own flags. */
static int kafka_config_load(struct cli *cli, const struct globals_late *late, int n, char **args)
{
	char err[SL_ERROR_BYTES];
	bool given = late->kafka_config_file != NULL || late->kafka_setting_count > 0;

	if (!given)
		return CLI_EXIT_OK;
	if (!sl_broker_is_kafka(cli->broker) && strcmp(args[0], "copy") != 0 && !cli_wants_help(n, args))
		return cli_usage_error(&main_command,
		                       "--kafka-config and --kafka-config-file apply to a kafka:// broker, not '%s'",
		                       cli->broker);
	if (late->kafka_config_file != NULL &&
	    sl_kafka_config_read_file(&cli->kafka, late->kafka_config_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "synclog: %s\n", err);
		return CLI_EXIT_FAIL;
	}
	for (int i = 0; i < late->kafka_setting_count; i++)
		if (sl_kafka_config_add(&cli->kafka, late->kafka_settings[i], err, sizeof(err)) != 0)
			return cli_usage_error(&main_command, "%s", err);
	return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct cli cli = {.broker = NULL, .json = false, .timeout_ms = 0};
	struct globals_late late = {.kafka_settings = calloc((size_t)argc + 1, sizeof(*late.kafka_settings))};
	struct sl_broker_addr addr;
	char err[SL_ERROR_BYTES];
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	int n, rc;

	if (args == NULL || late.kafka_settings == NULL) {
		fputs("synclog: out of memory\n", stderr);
		return CLI_EXIT_FAIL;
	}
	sl_security_options_from_env(&cli.security);
	n = globals_take(argc, argv, &cli, args, &late);
	if (n < 0) {
		rc = n == -1 ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
	} else if (n == 0) {
		rc = cli_wants_help(argc - 1, argv + 1) ? cli_help(&main_command)
		                                        : cli_usage_error(&main_command, "a command is required");
	} else if (strcmp(args[0], "--help") == 0 || strcmp(args[0], "-h") == 0 || strcmp(args[0], "help") == 0) {
		rc = cli_help(&main_command);
	} else if (strcmp(args[0], "--version") == 0 || strcmp(args[0], "version") == 0) {
		rc = n > 1 && !cli_wants_help(n - 1, args + 1)
		             ? cli_usage_error(&main_command, "version takes no arguments")
		             : (printf("synclog %s\n", SL_VERSION), CLI_EXIT_OK);
	} else {
		if (cli.broker == NULL)
			cli.broker = getenv("SYNCLOG_BROKER");
		if (cli.broker == NULL || cli.broker[0] == '\0')
			cli.broker = SL_BROKER_DEFAULT;
		if (sl_broker_parse(cli.broker, &addr, err, sizeof(err)) != 0 && !cli_wants_help(n, args)) {
			rc = cli_usage_error(&main_command, "%s", err);
		} else if ((rc = kafka_config_load(&cli, &late, n, args)) != CLI_EXIT_OK) {
			/* said why */
		} else if (strcmp(args[0], "topic") == 0) {
			rc = cli_topic(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "produce") == 0) {
			rc = cli_produce(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "consume") == 0) {
			rc = cli_consume(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "group") == 0) {
			rc = cli_group(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "offsets") == 0) {
			rc = cli_offsets(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "apply") == 0) {
			rc = cli_apply(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "backfill") == 0) {
			rc = cli_backfill(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "reconcile") == 0) {
			rc = cli_reconcile(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "contract") == 0) {
			rc = cli_contract(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "conflicts") == 0) {
			rc = cli_conflicts(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "copy") == 0) {
			rc = cli_copy(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "user") == 0) {
			rc = cli_user(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "acl") == 0) {
			rc = cli_acl(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "dlq") == 0) {
			rc = cli_dlq(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "status") == 0) {
			rc = cli_status(&cli, n - 1, args + 1);
		} else {
			rc = cli_usage_error(&main_command, "unknown command '%s'", args[0]);
		}
	}
	free(args);
	free(late.kafka_settings);
	sl_kafka_config_free(&cli.kafka);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
		perror("synclog: writing the output");
		rc = CLI_EXIT_FAIL;
	}
	return rc;
}
