/* `synclog conflicts list|resolve`: the operator's queue of the reject conflict policy (apply.h rule 9c), and the
 * record of every other conflict decision, as a target keeps them in its conflicts table; resolving one writes the
 * decision into the target through the store (sl_apply_conflict_resolve). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/client/synclog.h"
#include "consumer/sync/apply.h"
#include "tools/cli.h"

/* Rows one list prints at most unless --limit says otherwise: a screenful or two of decisions. */
#define LIST_LIMIT_DEFAULT 100
#define FIELDS_MAX         64

static const struct cli_command conflicts_command = {
        .name = "conflicts",
        .usage = "usage: synclog conflicts list --target sqlite:PATH [--table NAME] [--all | --status S] [--limit N]\n"
                 "       synclog conflicts resolve ID --target sqlite:PATH [--table NAME]\n"
                 "                                 --keep source|target|KEY=VALUE [--keep KEY=VALUE ...]\n",
};

static const struct cli_command list_command = {
        .name = "conflicts list",
        .usage = "usage: synclog conflicts list --target sqlite:PATH [--table NAME] [--all | --status S] [--limit N]\n"
                 "\n"
                 "The conflicts a target kept, oldest first: by default the open ones, which wait for an operator\n"
                 "(the reject policy) and the rejected ones (the source-of-truth policy refused them). One line each:\n"
                 "ID, key, policy, status, stored and incoming version, the incoming record's system, when it was\n"
                 "seen, and why. With --json, one object each: {\"id\":N,\"key\":K,\"policy\":P,\"status\":S,\n"
                 "\"stored_version\":V,\"incoming_version\":V,\"origin_system\":S,\"origin\":O,\"incoming_value\":V,\n"
                 "\"topic\":T,\"partition\":P,\"offset\":O,\"seen_at_ms\":MS,\"reason\":R,\"resolved_at_ms\":MS,\n"
                 "\"resolution\":R}.\n"
                 "  --target sqlite:PATH  the target of `synclog apply`\n"
                 "  --table NAME          its entity table (default entities)\n"
                 "  --all                 every conflict kept, decided ones too (logged, resolved, superseded)\n"
                 "  --status S            only those of status S: open, rejected, logged, resolved, superseded\n"
                 "  --limit N             at most N rows (default 100)\n",
};

static const struct cli_command resolve_command = {
        .name = "conflicts resolve",
        .usage = "usage: synclog conflicts resolve ID --target sqlite:PATH [--table NAME]\n"
                 "                                 --keep source|target|KEY=VALUE [--keep KEY=VALUE ...]\n"
                 "\n"
                 "Decide an open (or rejected) conflict, in one transaction of the target:\n"
                 "  --keep source      write the incoming record's value (or delete) at its version\n"
                 "  --keep target      keep the row as it is\n"
                 "  --keep KEY=VALUE   set field KEY of the stored JSON object to VALUE (JSON, else a string);\n"
                 "                     repeat for more fields\n"
                 "Refused (exit 1) when the row moved on to another version since (the conflict is then marked\n"
                 "superseded: a newer write decided), or when the conflict was decided already. Prints\n"
                 "`resolved conflict ID: WHAT` (or {\"resolved\":ID}). A decision is the target's own: other targets\n"
                 "of the topic, and the source, are not changed.\n",
};

struct target_args {
	const char *path;
	const char *table;
};

/* --target and --table, shared by both subcommands: 1 when argv[*i] was one of them, 0 when not, or an exit code
 * (negative of it) after a usage error. */
static int target_flag(const struct cli_command *cmd, int argc, char **argv, int *i, struct target_args *t)
{
	const char *value;
	int rc;

	if ((rc = cli_flag(argc, argv, i, "--target", &value)) != 0) {
		if (rc < 0 || strncmp(value, "sqlite:", 7) != 0 || value[7] == '\0')
			return -cli_usage_error(
			        cmd, "--target must be sqlite:PATH: conflicts are kept by SQLite targets only");
		t->path = value + 7;
		return 1;
	}
	if ((rc = cli_flag(argc, argv, i, "--table", &value)) != 0) {
		if (rc < 0 || sl_apply_sqlite_table_check(value) != 0)
			return -cli_usage_error(cmd, "--table needs an entity table's name");
		t->table = value;
		return 1;
	}
	return 0;
}

static int store_open(const struct cli_command *cmd, const struct target_args *t, struct sl_apply_sqlite **db,
                      struct sl_apply_store *store)
{
	struct sl_apply_sqlite_options so = {.path = t->path, .values = SL_APPLY_VALUES_JSON, .table = t->table};
	char err[SL_ERROR_BYTES];
	FILE *f;

	if (t->path == NULL)
		return cli_usage_error(cmd, "--target sqlite:PATH is required");
	/* A target is made by `synclog apply`: a missing file is a typo, not a new target. */
	f = fopen(t->path, "rb");
	if (f == NULL)
		return cli_fail(cmd, "cannot open %s: %s (a target of `synclog apply`)", t->path, strerror(errno));
	fclose(f);
	if (sl_apply_sqlite_open_table(db, &so, err, sizeof(err)) != 0)
		return cli_fail(cmd, "%s", err);
	sl_apply_sqlite_store(*db, store);
	return CLI_EXIT_OK;
}

static void json_str_or_null(const char *s)
{
	if (s == NULL)
		fputs("null", stdout);
	else
		cli_json_string(s);
}

struct list_state {
	bool json;
	uint64_t rows;
	int64_t last_id;
};

static int row_print_cb(const struct sl_apply_conflict *c, void *cb_arg)
{
	struct list_state *ls = cb_arg;
	char seen[40];

	ls->rows++;
	ls->last_id = c->id;
	if (ls->json) {
		printf("{\"id\":%" PRId64 ",\"key\":", c->id);
		json_str_or_null(c->key);
		printf(",\"policy\":\"%s\",\"status\":\"%s\",\"stored_version\":%" PRId64
		       ",\"incoming_version\":%" PRId64 ",\"origin_system\":",
		       c->policy, c->status, c->stored_version, c->incoming_version);
		json_str_or_null(c->origin_system);
		printf(",\"origin\":\"%s\",\"op\":", c->origin);
		json_str_or_null(c->op);
		printf(",\"incoming_value\":");
		if (c->incoming_value == NULL)
			fputs("null", stdout);
		else
			sl_json_print_value(stdout, (const uint8_t *)c->incoming_value, strlen(c->incoming_value));
		printf(",\"topic\":");
		json_str_or_null(c->topic);
		printf(",\"partition\":%u,\"offset\":%" PRId64 ",\"seen_at_ms\":%" PRId64 ",\"reason\":", c->partition,
		       c->offset, c->seen_at_ms);
		json_str_or_null(c->reason);
		printf(",\"resolved_at_ms\":%" PRId64 ",\"resolution\":", c->resolved_at_ms);
		json_str_or_null(c->resolution);
		fputs("}\n", stdout);
		return 0;
	}
	cli_time_format(c->seen_at_ms, seen, sizeof(seen));
	printf("%-6" PRId64 " %-20s %-15s %-10s %8" PRId64 " %8" PRId64 " %-12s %-24s %s%s%s\n", c->id, c->key,
	       c->policy, c->status, c->stored_version, c->incoming_version,
	       c->origin_system != NULL ? c->origin_system : "-", seen, c->reason, c->resolution != NULL ? " -> " : "",
	       c->resolution != NULL ? c->resolution : "");
	return 0;
}

static int conflicts_list(const struct cli *cli, int argc, char **argv)
{
	struct target_args t = {0};
	struct sl_apply_sqlite *db;
	struct sl_apply_store store;
	struct list_state ls = {.json = cli->json};
	const char *status = NULL, *value;
	uint64_t limit = LIST_LIMIT_DEFAULT;
	bool all = false;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = target_flag(&list_command, argc, argv, &i, &t)) != 0) {
			if (rc < 0)
				return -rc;
		} else if ((rc = cli_flag(argc, argv, &i, "--status", &value)) != 0) {
			if (rc < 0 || (strcmp(value, "open") != 0 && strcmp(value, "rejected") != 0 &&
			               strcmp(value, "logged") != 0 && strcmp(value, "resolved") != 0 &&
			               strcmp(value, "superseded") != 0))
				return cli_usage_error(
				        &list_command,
				        "--status must be open, rejected, logged, resolved or superseded");
			status = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--limit", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, UINT32_MAX, &limit) != 0 || limit == 0)
				return cli_usage_error(&list_command, "--limit needs a number of rows, at least 1");
		} else if (strcmp(argv[i], "--all") == 0) {
			all = true;
		} else {
			return cli_usage_error(&list_command, "unexpected argument '%s'", argv[i]);
		}
	}
	if (all && status != NULL)
		return cli_usage_error(&list_command, "--all and --status: give one");
	rc = store_open(&list_command, &t, &db, &store);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (!cli->json)
		printf("%-6s %-20s %-15s %-10s %8s %8s %-12s %-24s %s\n", "ID", "KEY", "POLICY", "STATUS", "STORED_V",
		       "INCOMING", "SYSTEM", "SEEN", "WHY");
	if (status != NULL || all) {
		rc = store.ops->conflicts_list(store.ctx, status, 0, (uint32_t)limit, row_print_cb, &ls);
	} else {
		/* The queue: open and rejected, each in id order (two reads of the status index). */
		rc = store.ops->conflicts_list(store.ctx, "open", 0, (uint32_t)limit, row_print_cb, &ls);
		if (rc == 0 && ls.rows < limit)
			rc = store.ops->conflicts_list(store.ctx, "rejected", 0, (uint32_t)(limit - ls.rows),
			                               row_print_cb, &ls);
	}
	if (rc != 0)
		rc = cli_fail(&list_command, "%s", store.ops->error(store.ctx));
	sl_apply_sqlite_close(db);
	return rc;
}

static int conflicts_resolve(const struct cli *cli, int argc, char **argv)
{
	struct target_args t = {0};
	struct sl_apply_sqlite *db;
	struct sl_apply_store store;
	const char *fields[FIELDS_MAX], *value;
	uint32_t field_count = 0;
	int keep = -1; /* enum sl_apply_keep */
	int64_t id = -1;
	char why[SL_ERROR_BYTES];
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = target_flag(&resolve_command, argc, argv, &i, &t)) != 0) {
			if (rc < 0)
				return -rc;
		} else if ((rc = cli_flag(argc, argv, &i, "--keep", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&resolve_command, "--keep needs source, target or KEY=VALUE");
			if (strcmp(value, "source") == 0 || strcmp(value, "target") == 0) {
				if (keep >= 0)
					return cli_usage_error(&resolve_command,
					                       "--keep source or target is one decision: give it once, "
					                       "without KEY=VALUE");
				keep = value[0] == 's' ? SL_APPLY_KEEP_SOURCE : SL_APPLY_KEEP_TARGET;
			} else if (strchr(value, '=') != NULL && value[0] != '=') {
				if ((keep >= 0 && keep != SL_APPLY_KEEP_FIELDS) || field_count == FIELDS_MAX)
					return cli_usage_error(
					        &resolve_command,
					        "--keep KEY=VALUE goes with other KEY=VALUE only (at most %d)",
					        FIELDS_MAX);
				keep = SL_APPLY_KEEP_FIELDS;
				fields[field_count++] = value;
			} else {
				return cli_usage_error(&resolve_command, "--keep needs source, target or KEY=VALUE");
			}
		} else if (id < 0 && cli_parse_i64(argv[i], 1, INT64_MAX, &id) == 0) {
			continue;
		} else {
			return cli_usage_error(&resolve_command, "unexpected argument '%s' (the ID is a number)",
			                       argv[i]);
		}
	}
	if (id < 0)
		return cli_usage_error(&resolve_command,
		                       "the conflict's ID is required (see `synclog conflicts list`)");
	if (keep < 0)
		return cli_usage_error(&resolve_command, "--keep source|target|KEY=VALUE is required");
	rc = store_open(&resolve_command, &t, &db, &store);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = sl_apply_conflict_resolve(&store, id, (enum sl_apply_keep)keep, fields, field_count, sl_clock_wall_ms(),
	                               why, sizeof(why));
	if (rc != 0) {
		rc = cli_fail(&resolve_command, "%s", why);
	} else if (cli->json) {
		printf("{\"resolved\":%" PRId64 "}\n", id);
	} else {
		printf("resolved conflict %" PRId64 ": %s\n", id,
		       keep == SL_APPLY_KEEP_SOURCE   ? "kept the source"
		       : keep == SL_APPLY_KEEP_TARGET ? "kept the target"
		                                      : "set the fields given");
	}
	sl_apply_sqlite_close(db);
	return rc;
}

int cli_conflicts(const struct cli *cli, int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	        {"list", &list_command, conflicts_list},
	        {"resolve", &resolve_command, conflicts_resolve},
	};

	return cli_subcommand_run(&conflicts_command, subs, (int)(sizeof(subs) / sizeof(subs[0])), cli, argc, argv);
}
