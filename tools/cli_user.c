/* `synclog user add|list|delete`: the broker's SCRAM-SHA-256 users. Through the broker (which needs the cluster
 * admin operation), or, for add with --data-dir, straight into DATA/security/users while the broker is stopped:
 * the way the first administrator is created, as Kafka's storage tool does. Either way only a salted verifier is
 * stored (proto/users.h); the password never leaves this process. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer/client/synclog.h"
#include "proto/base/fs.h"
#include "proto/users.h"
#include "tools/cli.h"

static const struct cli_command user_command = {
        .name = "user",
        .usage = "usage: synclog user add NAME [--password-stdin] [--data-dir DIR]\n"
                 "       synclog user list\n"
                 "       synclog user delete NAME\n"
                 "\n"
                 "The users that authenticate to synclogd --auth scram (SCRAM-SHA-256). They need the cluster admin\n"
                 "operation (a super user, or `synclog acl add --principal NAME --cluster --op admin`).\n",
};

static const struct cli_command add_command = {
        .name = "user add",
        .usage = "usage: synclog user add NAME [--password-stdin] [--data-dir DIR]\n"
                 "\n"
                 "Add user NAME, or set a new password for it. The password is asked twice on the terminal, or read\n"
                 "from the first line of stdin with --password-stdin. Only a salted SCRAM-SHA-256 verifier (4096\n"
                 "iterations) is sent and stored, never the password. NAME is 1 to 64 characters of [A-Za-z0-9._@-].\n"
                 "\n"
                 "  --password-stdin  read the password from stdin instead of prompting\n"
                 "  --data-dir DIR    write DIR/security/users directly instead of asking the broker: for the first\n"
                 "                    administrator, while synclogd is stopped (it reads the file at start, and the\n"
                 "                    command refuses while a broker holds DIR)\n"
                 "\n"
                 "Prints `added user NAME` or `changed the password of user NAME`; with --json\n"
                 "{\"user\":NAME,\"created\":true|false}.\n",
};

static const struct cli_command list_command = {
        .name = "user list",
        .usage = "usage: synclog user list\n"
                 "\n"
                 "The users, sorted by name: mechanism, iterations, and whether synclogd names them in its\n"
                 "super users. With --json one object per user:\n"
                 "{\"user\":NAME,\"mechanism\":\"SCRAM-SHA-256\",\"iterations\":N,\"super_user\":true|false}\n",
};

static const struct cli_command delete_command = {
        .name = "user delete",
        .usage = "usage: synclog user delete NAME\n"
                 "\n"
                 "Delete a user: new connections can no longer authenticate as it (connections already open keep\n"
                 "their session). Its ACLs stay until removed with `synclog acl remove`. Exits 1 when there is no\n"
                 "such user. Prints `deleted user NAME`, or {\"deleted\":NAME} with --json.\n",
};

static void added_print(const struct cli *cli, const char *name, bool created)
{
	if (cli->json) {
		fputs("{\"user\":", stdout);
		cli_json_string(name);
		printf(",\"created\":%s}\n", created ? "true" : "false");
	} else {
		printf(created ? "added user %s\n" : "changed the password of user %s\n", name);
	}
}

/* --data-dir: the users file itself, under the data directory's lock so that a running broker is never
 * overwritten behind its back. */
static int add_offline(const struct cli *cli, const char *dir, const char *name, const char *password)
{
	struct sl_users users;
	struct sl_scram_verifier v;
	char err[512];
	pid_t holder = 0;
	int fd, created, rc;

	rc = sl_fs_lock_data_dir(dir, &fd, &holder);
	if (rc == -EWOULDBLOCK) {
		if (holder > 0)
			return cli_fail(
			        &add_command,
			        "synclogd (pid %ld) is running on %s: stop it first, or add the user through it "
			        "(without --data-dir)",
			        (long)holder, dir);
		return cli_fail(&add_command, "a synclogd is running on %s: stop it first, or add the user through it",
		                dir);
	}
	if (rc < 0)
		return cli_fail(&add_command, "cannot lock %s/%s: %s (check --data-dir and its permissions)", dir,
		                SL_DATA_DIR_LOCK_FILE, strerror(-rc));
	rc = sl_users_load(dir, &users, err, sizeof(err));
	if (rc < 0) {
		close(fd);
		return cli_fail(&add_command, "%s", err);
	}
	rc = sl_scram_verifier_new(password, strlen(password), SL_SCRAM_ITERATIONS_DEFAULT, &v);
	if (rc == 0)
		rc = sl_users_put(&users, name, &v, &created);
	OPENSSL_cleanse(&v, sizeof(v));
	if (rc == 0)
		rc = sl_users_save(dir, &users);
	sl_users_free(&users);
	close(fd); /* the lock goes with it */
	if (rc == -E2BIG)
		return cli_fail(&add_command, "%s already has %d users, the most synclogd keeps", dir, SL_USERS_MAX);
	if (rc < 0)
		return cli_fail(&add_command, "cannot write %s/%s/%s: %s", dir, SL_SECURITY_DIR, SL_USERS_FILE,
		                strerror(-rc));
	added_print(cli, name, created);
	return CLI_EXIT_OK;
}

static int user_add(const struct cli *cli, int argc, char **argv)
{
	const char *name = NULL, *dir = NULL;
	bool from_stdin = false;
	char password[1024];
	int rc;

	for (int i = 0; i < argc; i++) {
		const char *v;

		if (strcmp(argv[i], "--password-stdin") == 0) {
			from_stdin = true;
		} else if ((rc = cli_flag(argc, argv, &i, "--data-dir", &v)) != 0) {
			if (rc < 0 || v[0] == '\0')
				return cli_usage_error(&add_command, "--data-dir needs a directory");
			dir = v;
		} else if (cli_operand(&add_command, argv[i], &name) != 0) {
			return CLI_EXIT_USAGE;
		}
	}
	if (name == NULL)
		return cli_usage_error(&add_command, "the user NAME is required");
	if (sl_user_name_check(name) != 0)
		return cli_usage_error(&add_command, "invalid user name '%s': 1 to 64 characters of [A-Za-z0-9._@-]",
		                       name);
	if (cli_password_read(&add_command, from_stdin, true, password, sizeof(password)) != 0)
		return CLI_EXIT_FAIL;
	if (dir != NULL) {
		rc = add_offline(cli, dir, name, password);
	} else {
		struct sl_conn *c = cli_connect(cli, &add_command, "synclog-cli");
		bool created = false;

		if (c == NULL) {
			rc = CLI_EXIT_FAIL;
		} else if (sl_user_set_password(c, name, password, 0, &created) != 0) {
			rc = cli_fail(&add_command, "%s", sl_conn_error(c));
		} else {
			added_print(cli, name, created);
			rc = CLI_EXIT_OK;
		}
		sl_conn_free(c);
	}
	OPENSSL_cleanse(password, sizeof(password));
	return rc;
}

static int user_list(const struct cli *cli, int argc, char **argv)
{
	struct sl_user_info *users;
	uint32_t count;
	struct sl_conn *c;

	if (argc > 0)
		return cli_usage_error(&list_command, "unexpected argument '%s'", argv[0]);
	c = cli_connect(cli, &list_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	if (sl_user_list(c, &users, &count) != 0) {
		int rc = cli_fail(&list_command, "%s", sl_conn_error(c));

		sl_conn_free(c);
		return rc;
	}
	if (!cli->json)
		printf("%-32s %-14s %10s %s\n", "USER", "MECHANISM", "ITERATIONS", "SUPER");
	for (uint32_t i = 0; i < count; i++) {
		if (cli->json) {
			fputs("{\"user\":", stdout);
			cli_json_string(users[i].name);
			printf(",\"mechanism\":\"SCRAM-SHA-256\",\"iterations\":%u,\"super_user\":%s}\n",
			       users[i].iterations, users[i].super_user ? "true" : "false");
		} else {
			printf("%-32s %-14s %10u %s\n", users[i].name, "SCRAM-SHA-256", users[i].iterations,
			       users[i].super_user ? "yes" : "no");
		}
	}
	free(users);
	sl_conn_free(c);
	return CLI_EXIT_OK;
}

static int user_delete(const struct cli *cli, int argc, char **argv)
{
	struct sl_conn *c;
	int rc;

	if (argc == 0)
		return cli_usage_error(&delete_command, "the user NAME is required");
	if (argc > 1)
		return cli_usage_error(&delete_command, "unexpected argument '%s'", argv[1]);
	if (argv[0][0] == '-')
		return cli_usage_error(&delete_command, "unknown flag '%s'", argv[0]);
	c = cli_connect(cli, &delete_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	if (sl_user_delete(c, argv[0]) != 0) {
		rc = cli_fail(&delete_command, "%s", sl_conn_error(c));
	} else {
		rc = cli_print_done(cli, "deleted", "user", argv[0]);
	}
	sl_conn_free(c);
	return rc;
}

int cli_user(const struct cli *cli, int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	        {"add", &add_command, user_add},
	        {"list", &list_command, user_list},
	        {"delete", &delete_command, user_delete},
	};
	return cli_subcommand_run(&user_command, subs, 3, cli, argc, argv);
}
