/* SCAFFOLD, replaced by the engineer building `synclog group`: until then the command says it is missing. */
#include "tools/cli.h"

static const struct cli_command command = {"group", "usage: synclog group ... (not in this build yet)\n"};

int cli_group(const struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	return cli_fail(&command, "this build has no 'group' command yet");
}
