/* moq-relay: configuration from the command line, MOQ_* environment and relay.toml, then
 * the relay until SIGINT/SIGTERM (or, with --check, only the checks). See `moq-relay --help` and
 * docs/config.md. */
#include <unistd.h>

#include "config/cli.h"
#include "relay/relay.h"

int main(int argc, char **argv)
{
    struct moq_config cfg;
    int status;
    if (!moq_cli_configure(&cfg, argc, argv, environ, &status)) return status;
    status = cfg.check ? moq_relay_check(&cfg, stdout) : moq_relay_run(&cfg);
    moq_config_free(&cfg);
    return status;
}
