/* What the contract commands share with the tools that take their defaults from a topic's contract (apply,
 * reconcile) and with `contract check` (tools/cli_contract_check.c). */
#ifndef SL_TOOLS_CLI_CONTRACT_H
#define SL_TOOLS_CLI_CONTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "consumer/sync/contract.h"
#include "tools/cli.h"

/* Read a whole file (or stdin for "-") of at most max bytes, NUL-terminated, into *out (free it). Returns 0 or a
 * negative errno with err set. */
int cli_file_read(const char *path, size_t max, char **out, size_t *len_out, char *err, size_t err_bytes);

/* The current contract of topic from the broker: 0 with *out (NULL when the topic has none or the broker is a Kafka
 * cluster, which keeps no contracts; else free it with
 * sl_contract_free) and *version_out (may be NULL), or a negative errno with err set (broker unreachable, no such
 * topic, a stored contract this synclog cannot read). */
int cli_contract_fetch(const struct cli *cli, const char *topic, struct sl_contract **out, uint32_t *version_out,
                       char *err, size_t err_bytes);

/* `synclog contract check` (tools/cli_contract_check.c). */
extern const struct cli_command cli_contract_check_command;
int cli_contract_check(const struct cli *cli, int argc, char **argv);

#endif
