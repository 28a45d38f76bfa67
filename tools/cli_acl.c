/* `synclog acl add|remove|list`: which principal may do which operation to which topics, groups or the cluster
 * (synclogd's broker/acl.h). Changes go through the broker and need the cluster admin operation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "tools/cli.h"

static const struct cli_command acl_command = {
        .name = "acl",
        .usage = "usage: synclog acl add --principal NAME (--topic T|--group G|--cluster) --op OP [--prefix]\n"
                 "       synclog acl remove --principal NAME (--topic T|--group G|--cluster) --op OP [--prefix]\n"
                 "       synclog acl list [--principal NAME]\n"
                 "\n"
                 "Permissions, checked when synclogd runs with --auth scram: without an ACL nothing is allowed\n"
                 "(super users aside).\n",
};

#define ACL_ARGS_HELP                                                                                               \
	"  --principal NAME  a user (or a client certificate's CN), or '*' for every authenticated principal\n"     \
	"  --topic T         a topic; with --prefix every topic whose name starts with T; '*' every topic\n"        \
	"  --group G         a consumer group, the same way\n"                                                      \
	"  --cluster         the cluster itself\n"                                                                  \
	"  --op OP           topic: produce, consume, describe, alter (create, alter, compact it), delete;\n"       \
	"                    group: read (consume as a member, commit), describe, delete, reset (offsets reset);\n" \
	"                    cluster: admin (create any topic, manage users and ACLs).\n"                           \
	"                    Any topic or group operation also lets the principal see (describe) it.\n"             \
	"  --prefix          T or G is a prefix of names\n"

static const struct cli_command add_command = {
        .name = "acl add",
        .usage = "usage: synclog acl add --principal NAME (--topic T|--group G|--cluster) --op OP [--prefix]\n"
                 "\n"
                 "Allow one operation. Prints `added ACL ...` (or `ACL already present ...`); with --json\n"
                 "{\"principal\":P,\"resource\":R,\"pattern\":\"literal\"|\"prefix\",\"name\":N,\"op\":O,\"created\":B}"
                 ".\n"
                 "\n" ACL_ARGS_HELP,
};

static const struct cli_command remove_command = {
        .name = "acl remove",
        .usage = "usage: synclog acl remove --principal NAME (--topic T|--group G|--cluster) --op OP [--prefix]\n"
                 "\n"
                 "Remove the ACL that matches exactly. Exits 1 when there is none. Prints `removed ACL ...`; with\n"
                 "--json the ACL's object.\n"
                 "\n" ACL_ARGS_HELP,
};

static const struct cli_command list_command = {
        .name = "acl list",
        .usage = "usage: synclog acl list [--principal NAME]\n"
                 "\n"
                 "Every ACL, or those of one principal: PRINCIPAL RESOURCE PATTERN NAME OP. With --json one object\n"
                 "per ACL: {\"principal\":P,\"resource\":R,\"pattern\":\"literal\"|\"prefix\",\"name\":N,\"op\":O}.\n"
                 "\n"
                 "  --principal NAME  only this principal's (a '*' ACL is listed under '*')\n",
};

static void acl_print(const struct cli *cli, const char *verb, const struct sl_acl_entry *a, int created)
{
	const char *name = strcmp(a->resource, "cluster") == 0 ? "-" : a->name;

	if (cli->json) {
		fputs("{\"principal\":", stdout);
		cli_json_string(a->principal);
		printf(",\"resource\":\"%s\",\"pattern\":\"%s\",\"name\":", a->resource,
		       a->prefix ? "prefix" : "literal");
		cli_json_string(a->name);
		printf(",\"op\":\"%s\"", a->op);
		if (created >= 0)
			printf(",\"created\":%s", created ? "true" : "false");
		fputs("}\n", stdout);
	} else if (verb != NULL) {
		printf("%s principal=%s %s %s %s %s\n", verb, a->principal, a->resource,
		       a->prefix ? "prefix" : "literal", name, a->op);
	} else {
		printf("%-24s %-8s %-8s %-32s %s\n", a->principal, a->resource, a->prefix ? "prefix" : "literal", name,
		       a->op);
	}
}

static void not_enforced_note(bool enforced)
{
	if (!enforced)
		fputs("synclog: note: this broker runs without --auth scram, so it does not check ACLs yet\n", stderr);
}

/* --principal, one of --topic/--group/--cluster, --op, --prefix. Returns 0 or a usage error's exit code. */
static int acl_args(const struct cli_command *cmd, int argc, char **argv, struct sl_acl_entry *a)
{
	const char *principal = NULL, *op = NULL, *resource = NULL, *name = "";
	int rc;

	memset(a, 0, sizeof(*a));
	for (int i = 0; i < argc; i++) {
		const char *v;

		if (strcmp(argv[i], "--prefix") == 0) {
			a->prefix = true;
		} else if (strcmp(argv[i], "--cluster") == 0) {
			if (resource != NULL)
				return cli_usage_error(cmd, "give one of --topic, --group and --cluster");
			resource = "cluster";
		} else if ((rc = cli_flag(argc, argv, &i, "--principal", &v)) != 0) {
			if (rc < 0)
				return cli_usage_error(cmd, "--principal needs a NAME");
			principal = v;
		} else if ((rc = cli_flag(argc, argv, &i, "--op", &v)) != 0) {
			if (rc < 0)
				return cli_usage_error(cmd, "--op needs an operation");
			op = v;
		} else if ((rc = cli_flag(argc, argv, &i, "--topic", &v)) != 0) {
			if (rc < 0 || resource != NULL)
				return cli_usage_error(cmd, rc < 0 ? "--topic needs a name"
				                                   : "give one of --topic, --group and --cluster");
			resource = "topic";
			name = v;
		} else if ((rc = cli_flag(argc, argv, &i, "--group", &v)) != 0) {
			if (rc < 0 || resource != NULL)
				return cli_usage_error(cmd, rc < 0 ? "--group needs a name"
				                                   : "give one of --topic, --group and --cluster");
			resource = "group";
			name = v;
		} else {
			return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
		}
	}
	if (principal == NULL || resource == NULL || op == NULL)
		return cli_usage_error(cmd,
		                       "--principal, one of --topic, --group and --cluster, and --op are required");
	if (strlen(principal) >= sizeof(a->principal) || strlen(name) >= sizeof(a->name) || strlen(op) >= sizeof(a->op))
		return cli_usage_error(cmd, "principal (64), name (200) or operation too long");
	snprintf(a->principal, sizeof(a->principal), "%s", principal);
	snprintf(a->resource, sizeof(a->resource), "%s", resource);
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->op, sizeof(a->op), "%s", op);
	return 0;
}

static int acl_change(const struct cli *cli, const struct cli_command *cmd, bool add, int argc, char **argv)
{
	struct sl_acl_entry a;
	struct sl_conn *c;
	bool created = false, enforced = true;
	uint32_t removed = 0;
	int rc = acl_args(cmd, argc, argv, &a);

	if (rc != 0)
		return rc;
	c = cli_connect(cli, cmd, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = add ? sl_acl_add(c, &a, &created, &enforced) : sl_acl_remove(c, &a, &removed, &enforced);
	if (rc != 0) {
		rc = cli_fail(cmd, "%s", sl_conn_error(c));
	} else if (!add && removed == 0) {
		rc = cli_fail(cmd, "no such ACL: principal=%s %s %s %s %s (see `synclog acl list`)", a.principal,
		              a.resource, a.prefix ? "prefix" : "literal", a.name[0] ? a.name : "-", a.op);
	} else {
		acl_print(cli, add ? (created ? "added ACL" : "ACL already present") : "removed ACL", &a,
		          add ? (int)created : -1);
		not_enforced_note(enforced);
		rc = CLI_EXIT_OK;
	}
	sl_conn_free(c);
	return rc;
}

static int acl_add(const struct cli *cli, int argc, char **argv)
{
	return acl_change(cli, &add_command, true, argc, argv);
}

static int acl_remove(const struct cli *cli, int argc, char **argv)
{
	return acl_change(cli, &remove_command, false, argc, argv);
}

static int acl_list(const struct cli *cli, int argc, char **argv)
{
	const char *principal = NULL;
	struct sl_acl_entry *acls;
	uint32_t count;
	bool enforced = true;
	struct sl_conn *c;

	for (int i = 0; i < argc; i++) {
		const char *v;
		int rc = cli_flag(argc, argv, &i, "--principal", &v);

		if (rc < 0)
			return cli_usage_error(&list_command, "--principal needs a NAME");
		if (rc == 0)
			return cli_usage_error(&list_command, "unexpected argument '%s'", argv[i]);
		principal = v;
	}
	c = cli_connect(cli, &list_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	if (sl_acl_list(c, principal, &acls, &count, &enforced) != 0) {
		int rc = cli_fail(&list_command, "%s", sl_conn_error(c));

		sl_conn_free(c);
		return rc;
	}
	if (!cli->json)
		printf("%-24s %-8s %-8s %-32s %s\n", "PRINCIPAL", "RESOURCE", "PATTERN", "NAME", "OP");
	for (uint32_t i = 0; i < count; i++)
		acl_print(cli, NULL, &acls[i], -1);
	not_enforced_note(enforced);
	free(acls);
	sl_conn_free(c);
	return CLI_EXIT_OK;
}

int cli_acl(const struct cli *cli, int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	        {"add", &add_command, acl_add},
	        {"remove", &remove_command, acl_remove},
	        {"list", &list_command, acl_list},
	};
	return cli_subcommand_run(&acl_command, subs, 3, cli, argc, argv);
}
