/* SCAFFOLD, replaced by the engineer building `synclog apply`: until then the command says it is missing. */
#include "tools/cli.h"

static const struct cli_command command = {"apply", "usage: synclog apply ... (not in this build yet)\n"};

int cli_apply(const struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	return cli_fail(&command, "this build has no 'apply' command yet");
}
