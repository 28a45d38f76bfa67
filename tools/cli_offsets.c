/* SCAFFOLD, replaced by the engineer building `synclog offsets`: until then the command says it is missing. */
#include "tools/cli.h"

static const struct cli_command command = {"offsets", "usage: synclog offsets ... (not in this build yet)\n"};

int cli_offsets(const struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	return cli_fail(&command, "this build has no 'offsets' command yet");
}
