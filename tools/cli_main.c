/* `synclog`, the operator CLI: takes the global flags from anywhere on the command line and hands the rest to the
 * command. The commands, flags, output and exit codes are the contract in ../shared/CLI.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "tools/cli.h"

static const struct cli_command main_command = {
        .name = "",
        .usage = "usage: synclog [--broker HOST:PORT] [--json] COMMAND ...\n"
                 "\n"
                 "commands:\n"
                 "  topic create NAME --partitions N [--retention-ms MS] [--retention-bytes B] [--compact]\n"
                 "  topic list\n"
                 "  topic describe NAME\n"
                 "  produce TOPIC [--acks none|written|fsync] [--origin live|backfill|repair] [--input tsv|json]\n"
                 "  consume TOPIC [--group G] [--from earliest|latest|OFFSET|@ISO8601] [--partition P] [--max N]\n"
                 "                [--follow]\n"
                 "  group list\n"
                 "  group describe G\n"
                 "  group delete G [--force]\n"
                 "  offsets reset --group G --topic T[:P[,P...]] SPEC [--dry-run|--execute] [--force]\n"
                 "  apply TOPIC --group G --target sqlite:PATH [--follow] [--tombstone-retention DURATION] [--purge]\n"
                 "        [--reject-retries N] [--failure-retries N] [--allow-gap]\n"
                 "  group alter G [--stall-after DURATION] [--window N]\n"
                 "  dlq list|show TOPIC [--group G]\n"
                 "  dlq redrive TOPIC --group G [--offset O] [--execute]\n"
                 "  status [--watch]\n"
                 "\n"
                 "global flags, before or after the command:\n"
                 "  --broker HOST:PORT  the broker (default: $SYNCLOG_BROKER, else " SL_BROKER_DEFAULT ")\n"
                 "  --json              machine output: one JSON object per line\n"
                 "  --help              this text; `synclog COMMAND --help` describes a command\n"
                 "\n"
                 "exit status: 0 success, 1 operating error (stderr says what failed and what to do), 2 bad usage\n",
};

/* Take --broker and --json out of argv wherever they are (up to a "--"); the rest stays in order in args.
 * Returns the new count, or -1 after a usage error was printed. */
static int globals_take(int argc, char **argv, struct cli *cli, char **args)
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
		rc = cli_flag(argc, argv, &i, "--broker", &value);
		if (rc < 0) {
			cli_usage_error(&main_command, "--broker needs a value: HOST:PORT");
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

int main(int argc, char **argv)
{
	struct cli cli = {.broker = NULL, .json = false};
	struct sl_broker_addr addr;
	char err[SL_ERROR_BYTES];
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	int n, rc;

	if (args == NULL) {
		fputs("synclog: out of memory\n", stderr);
		return CLI_EXIT_FAIL;
	}
	n = globals_take(argc, argv, &cli, args);
	if (n < 0) {
		rc = CLI_EXIT_USAGE;
	} else if (n == 0) {
		rc = cli_wants_help(argc - 1, argv + 1) ? cli_help(&main_command)
		                                        : cli_usage_error(&main_command, "a command is required");
	} else if (strcmp(args[0], "--help") == 0 || strcmp(args[0], "-h") == 0 || strcmp(args[0], "help") == 0) {
		rc = cli_help(&main_command);
	} else {
		if (cli.broker == NULL)
			cli.broker = getenv("SYNCLOG_BROKER");
		if (cli.broker == NULL || cli.broker[0] == '\0')
			cli.broker = SL_BROKER_DEFAULT;
		if (sl_broker_parse(cli.broker, &addr, err, sizeof(err)) != 0 && !cli_wants_help(n, args)) {
			rc = cli_usage_error(&main_command, "%s", err);
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
		} else if (strcmp(args[0], "dlq") == 0) {
			rc = cli_dlq(&cli, n - 1, args + 1);
		} else if (strcmp(args[0], "status") == 0) {
			rc = cli_status(&cli, n - 1, args + 1);
		} else {
			rc = cli_usage_error(&main_command, "unknown command '%s'", args[0]);
		}
	}
	free(args);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
		perror("synclog: writing the output");
		rc = CLI_EXIT_FAIL;
	}
	return rc;
}
