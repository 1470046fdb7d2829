/*
 * cli.h - moq-relay's command line in one call: flags, MOQ_* environment, the TOML file,
 * --help/--version, log levels (MOQ_LOG / RUST_LOG) and the startup validation.
 *
 * main() calls moq_cli_configure() first. Output goes to stdout (help, version) and stderr
 * (errors, warnings through the logger). On success the caller owns *cfg and frees it with
 * moq_config_free(); otherwise nothing needs freeing.
 */
#ifndef MOQ_CONFIG_CLI_H
#define MOQ_CONFIG_CLI_H

#include <stdbool.h>

#include "config/config.h"

/* Returns true when the relay should start with *cfg (fully loaded, validated, logging
 * configured, warnings already logged). Returns false when main() should return *status
 * right away: 0 after --help/--version, 2 for a command-line error, 1 for a configuration
 * error (the message is already on stderr). envp may be NULL (the process environment). */
bool moq_cli_configure(struct moq_config *cfg, int argc, char **argv, char **envp, int *status);

#endif
