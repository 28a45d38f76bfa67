/* `synclog contract set|show|check`: a topic's sync contract (consumer/sync/contract.h) written as a file, checked
 * here, stored with the topic by the broker and versioned there; shown back as written, or as its stored JSON; and
 * compared clause by clause with the running system (tools/cli_contract_check.c). */
#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer/client/synclog.h"
#include "consumer/sync/contract.h"
#include "tools/cli.h"
#include "tools/cli_contract.h"

static const struct cli_command contract_command = {
        .name = "contract",
        .usage = "usage: synclog contract set TOPIC FILE [--set-by NAME] [--if-version N]\n"
                 "       synclog contract show TOPIC [--version N] [--history]\n"
                 "       synclog contract check TOPIC [--target TARGET] [--table NAME]\n",
};

static const struct cli_command set_command = {
        .name = "contract set",
        .usage = "usage: synclog contract set TOPIC FILE [--set-by NAME] [--if-version N]\n"
                 "\n"
                 "Check the sync contract in FILE (YAML, or JSON; - for stdin) and store it with TOPIC as its next\n"
                 "version; the versions before it are kept with who set them and when. A mistake is refused with\n"
                 "its line and key, and nothing is stored. The broker enforces the produce clause at once\n"
                 "(delivery.duplicates: idempotency-key with without_idempotency_key: refuse or count); apply,\n"
                 "reconcile and contract check take their defaults for TOPIC from it. The keys are in\n"
                 "synclog-contract(1).\n"
                 "  --set-by NAME   who sets it (default: $SYNCLOG_USER, else the login name, with @host)\n"
                 "  --if-version N  store only if the current version is N (0: only if there is none yet), so\n"
                 "                  that two people editing one contract do not undo each other\n"
                 "Prints `topic T contract version N` (or {\"topic\":T,\"version\":N}), and on stderr the\n"
                 "lines of the contract block the file leaves blank (fields_derived, recovery.replay_owner,\n"
                 "consumer_impact.on_delete, ...): what a reviewer of the sync will ask for.\n",
};

static const struct cli_command show_command = {
        .name = "contract show",
        .usage = "usage: synclog contract show TOPIC [--version N] [--history]\n"
                 "\n"
                 "Print TOPIC's contract: a line with its version, who set it, from where and when, then the file\n"
                 "as it was written. With --json one object: {\"topic\":T,\"version\":N,\"set_by\":S,\"peer\":P,\n"
                 "\"set_at_ms\":MS,\"contract\":{the stored form},\"text\":\"the file\",\"enforcement\":{...}}; "
                 "enforcement\n"
                 "counts what produce saw since this version was set (or the broker started): live_records,\n"
                 "without_idempotency_key, batches_refused, records_refused (the text form prints them as a\n"
                 "comment line when there were any).\n"
                 "  --version N     an older version (the broker keeps the last 50)\n"
                 "  --history       one line per version kept, oldest first: version, time, who, from where (or\n"
                 "                  one object per version with --json)\n"
                 "Exits 1 when the topic has no contract.\n",
};

/* "user@host": who sets a contract, as far as the client can tell (the broker also keeps the address). */
static void who_am_i(char *out, size_t cap)
{
	const char *user = getenv("SYNCLOG_USER");
	struct passwd *pw;
	char host[256] = "";

	if (user == NULL || user[0] == '\0')
		user = getenv("USER");
	if ((user == NULL || user[0] == '\0') && (pw = getpwuid(getuid())) != NULL)
		user = pw->pw_name;
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	snprintf(out, cap, "%s%s%s", user != NULL && user[0] != '\0' ? user : "unknown", host[0] != '\0' ? "@" : "",
	         host);
}

int cli_file_read(const char *path, size_t max, char **out, size_t *len_out, char *err, size_t err_bytes)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf;
	size_t len = 0, n;

	*out = NULL;
	if (f == NULL) {
		snprintf(err, err_bytes, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	buf = malloc(max + 2);
	if (buf == NULL) {
		if (f != stdin)
			fclose(f);
		return -ENOMEM;
	}
	while ((n = fread(buf + len, 1, max + 1 - len, f)) > 0 && len <= max)
		len += n;
	if (ferror(f)) {
		snprintf(err, err_bytes, "cannot read %s: %s", path, strerror(errno));
		free(buf);
		if (f != stdin)
			fclose(f);
		return -EIO;
	}
	if (f != stdin)
		fclose(f);
	if (len > max) {
		snprintf(err, err_bytes, "%s is larger than %zu bytes", path, max);
		free(buf);
		return -E2BIG;
	}
	buf[len] = '\0';
	*out = buf;
	*len_out = len;
	return 0;
}

/* The review drill: the lines of the seed's block this contract leaves blank, on stderr, so the author sees what
 * a reviewer will ask for. Stored anyway: a contract is filled in over time, and each version is kept. */
static void blank_lines_note(const char *topic, const struct sl_contract *c)
{
	const char *names[40];
	size_t count = sl_contract_blank_lines(c, names, sizeof(names) / sizeof(names[0]));

	if (count == 0)
		return;
	fprintf(stderr, "synclog contract set: topic %s: %zu line%s of the contract block left blank:", topic, count,
	        count == 1 ? "" : "s");
	for (size_t i = 0; i < count && i < sizeof(names) / sizeof(names[0]); i++)
		fprintf(stderr, "%s %s", i ? "," : "", names[i]);
	fputc('\n', stderr);
}

static int contract_set(const struct cli *cli, int argc, char **argv)
{
	const char *topic = NULL, *file = NULL, *set_by = NULL, *value;
	uint64_t expected = 0; /* below UINT32_MAX: SL_CONTRACT_EXPECT_NONE is no version */
	bool if_version = false;
	struct sl_contract_record stored;
	struct sl_contract *contract;
	struct sl_conn *c;
	char err[SL_ERROR_BYTES], who[300];
	char *text;
	size_t len;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--set-by", &value)) != 0) {
			if (rc < 0 || value[0] == '\0' || strlen(value) > 255)
				return cli_usage_error(&set_command, "--set-by needs a name of 1 to 255 characters");
			set_by = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--if-version", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, UINT32_MAX - 1, &expected) != 0)
				return cli_usage_error(&set_command,
				                       "--if-version needs a version number (0: none yet)");
			if_version = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage_error(&set_command, "unknown flag '%s'", argv[i]);
		} else if (topic == NULL) {
			topic = argv[i];
		} else if (file == NULL) {
			file = argv[i];
		} else {
			return cli_usage_error(&set_command, "unexpected argument '%s'", argv[i]);
		}
	}
	if (topic == NULL || file == NULL)
		return cli_usage_error(&set_command, "TOPIC and FILE are required");
	if (cli_file_read(file, SL_CONTRACT_TEXT_BYTES_MAX, &text, &len, err, sizeof(err)) != 0)
		return cli_fail(&set_command, "%s", err);
	if (sl_contract_parse(text, len, &contract, err, sizeof(err)) != 0) {
		free(text);
		return cli_fail(&set_command, "%s: %s; nothing was stored", file, err);
	}
	if (set_by == NULL) {
		who_am_i(who, sizeof(who));
		set_by = who;
	}
	c = cli_connect(cli, &set_command, "synclog-contract");
	if (c == NULL) {
		rc = CLI_EXIT_FAIL;
	} else if (sl_topic_contract_set(c, topic, text, contract->json, set_by,
	                                 if_version && expected == 0 ? SL_CONTRACT_EXPECT_NONE : (uint32_t)expected,
	                                 &stored) != 0) {
		rc = cli_fail(&set_command, "%s", sl_conn_error(c));
	} else {
		if (cli->json) {
			printf("{\"topic\":");
			cli_json_string(topic);
			printf(",\"version\":%u}\n", stored.version);
		} else {
			printf("topic %s contract version %u\n", topic, stored.version);
		}
		blank_lines_note(topic, contract);
		sl_contract_record_free(&stored);
		rc = CLI_EXIT_OK;
	}
	sl_conn_free(c);
	sl_contract_free(contract);
	free(text);
	return rc;
}

static void record_json_print(const char *topic, const struct sl_contract_record *r, bool with_text,
                              const struct sl_contract_enforcement *e)
{
	printf("{\"topic\":");
	cli_json_string(topic);
	printf(",\"version\":%u,\"set_by\":", r->version);
	cli_json_string(r->set_by);
	printf(",\"peer\":");
	cli_json_string(r->peer);
	printf(",\"set_at_ms\":%lld,\"contract\":%s", (long long)r->set_at_ms,
	       r->contract[0] == '{' ? r->contract : "null");
	if (with_text) {
		printf(",\"text\":");
		cli_json_string(r->text);
	}
	if (e != NULL)
		printf(",\"enforcement\":{\"since_ms\":%lld,\"live_records\":%llu,\"without_idempotency_key\":%llu,"
		       "\"batches_refused\":%llu,\"records_refused\":%llu}",
		       (long long)e->since_ms, (unsigned long long)e->live_records,
		       (unsigned long long)e->records_without_idempotency_key, (unsigned long long)e->batches_refused,
		       (unsigned long long)e->records_refused);
	printf("}\n");
}

static void record_line_print(const char *topic, const struct sl_contract_record *r)
{
	char when[40];

	cli_time_format(r->set_at_ms, when, sizeof(when));
	printf("topic %s contract version %u, set by %s from %s at %s\n", topic, r->version, r->set_by,
	       r->peer[0] != '\0' ? r->peer : "-", when);
}

static int contract_show(const struct cli *cli, int argc, char **argv)
{
	const char *topic = NULL, *value;
	struct sl_contract_record rec, *history = NULL;
	struct sl_contract_enforcement enforcement;
	uint32_t history_count = 0;
	uint64_t version = 0;
	bool want_history = false;
	struct sl_conn *c;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--version", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, UINT32_MAX, &version) != 0 || version == 0)
				return cli_usage_error(&show_command, "--version needs a version number (1, 2, ...)");
		} else if (strcmp(argv[i], "--history") == 0) {
			want_history = true;
		} else if (cli_operand(&show_command, argv[i], &topic) != 0) {
			return CLI_EXIT_USAGE;
		}
	}
	if (topic == NULL)
		return cli_usage_error(&show_command, "the TOPIC is required");
	c = cli_connect(cli, &show_command, "synclog-contract");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = sl_topic_contract_get(c, topic, (uint32_t)version, &rec, want_history, &history, &history_count,
	                           &enforcement);
	if (rc != 0) {
		rc = cli_fail(&show_command, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	if (want_history) {
		for (uint32_t i = 0; i < history_count; i++) {
			if (cli->json)
				record_json_print(topic, &history[i], true, NULL);
			else
				record_line_print(topic, &history[i]);
			sl_contract_record_free(&history[i]);
		}
		free(history);
	} else if (cli->json) {
		record_json_print(topic, &rec, true, rec.version == enforcement.current_version ? &enforcement : NULL);
	} else {
		record_line_print(topic, &rec);
		if (rec.version == enforcement.current_version && enforcement.live_records > 0) {
			char since[40];

			cli_time_format(enforcement.since_ms, since, sizeof(since));
			printf("# since %s: %llu live records produced, %llu without an idempotency key, %llu batches "
			       "(%llu records) refused\n",
			       since, (unsigned long long)enforcement.live_records,
			       (unsigned long long)enforcement.records_without_idempotency_key,
			       (unsigned long long)enforcement.batches_refused,
			       (unsigned long long)enforcement.records_refused);
		}
		fputs(rec.text, stdout);
		if (rec.text[0] != '\0' && rec.text[strlen(rec.text) - 1] != '\n')
			putchar('\n');
	}
	sl_contract_record_free(&rec);
	sl_conn_free(c);
	return CLI_EXIT_OK;
}

int cli_contract_fetch(const struct cli *cli, const char *topic, struct sl_contract **out, uint32_t *version_out,
                       char *err, size_t err_bytes)
{
	struct sl_contract_record rec;
	struct sl_conn *c;
	int rc;

	*out = NULL;
	/* A Kafka cluster keeps no sync contracts (they live with synclogd's topics): the tools keep their own
	 * defaults there, as for a topic without one. */
	if (sl_broker_is_kafka(cli->broker))
		return 0;
	if (sl_conn_new(&c, cli->broker, "synclog-contract") != 0) {
		snprintf(err, err_bytes, "out of memory");
		return -ENOMEM;
	}
	if (cli->timeout_ms > 0)
		sl_conn_set_timeout(c, cli->timeout_ms);
	/* The same TLS and credentials as the command's other connections (a secured broker refuses the rest). */
	rc = sl_conn_set_security(c, &cli->security);
	if (rc != 0) {
		snprintf(err, err_bytes, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	rc = sl_topic_contract_get(c, topic, 0, &rec, false, NULL, NULL, NULL);
	if (rc != 0) {
		/* A topic without a contract: the tools keep their own defaults. */
		if (rc == -ENODATA)
			rc = 0;
		else
			snprintf(err, err_bytes, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	rc = sl_contract_parse(rec.contract, strlen(rec.contract), out, err, err_bytes);
	if (rc != 0) {
		char why[SL_ERROR_BYTES];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, err_bytes,
		         "contract version %u of topic %s cannot be read by this synclog (%s): set it again with "
		         "`synclog contract set`",
		         rec.version, topic, why);
	}
	if (version_out != NULL)
		*version_out = rec.version;
	sl_contract_record_free(&rec);
	sl_conn_free(c);
	return rc;
}

int cli_contract(const struct cli *cli, int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	        {"set", &set_command, contract_set},
	        {"show", &show_command, contract_show},
	        {"check", &cli_contract_check_command, cli_contract_check},
	};

	return cli_subcommand_run(&contract_command, subs, (int)(sizeof(subs) / sizeof(subs[0])), cli, argc, argv);
}
