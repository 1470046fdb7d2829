/* cli.c - the relay's startup configuration sequence (see cli.h). */
#include "config/cli.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* Configuration errors quote values, and a value may hold a token (a peer URL's ?jwt=). */
static void print_error(const char *err)
{
    char msg[512];
    size_t len = strlen(err) < sizeof(msg) - 1 ? strlen(err) : sizeof(msg) - 1;
    memcpy(msg, err, len);
    len = moq_log_redact(msg, len, sizeof(msg) - 1);
    msg[len] = '\0';
    fprintf(stderr, "moq-relay: %s\n", msg);
}

/* --help, --version and the hidden --help-man / --help-markdown (the build writes the manual
 * page and the reference table of docs/config.md with them). */
static void print_and_stop(enum moq_config_action action)
{
    if (action == MOQ_CONFIG_HELP) moq_config_print_help(stdout);
    if (action == MOQ_CONFIG_VERSION) printf("moq-relay %s\n", MOQ_VERSION);
    if (action == MOQ_CONFIG_HELP_MAN) moq_config_print_man(stdout);
    if (action == MOQ_CONFIG_HELP_MARKDOWN) moq_config_print_reference(stdout);
}

bool moq_cli_configure(struct moq_config *cfg, int argc, char **argv, char **envp, int *status)
{
    char err[512] = "";
    enum moq_config_action action = MOQ_CONFIG_RUN;
    int rc = moq_config_load(cfg, argc, argv, envp, &action, err, sizeof(err));
    if (rc == 0 && action != MOQ_CONFIG_RUN) {
        print_and_stop(action);
        *status = 0;
        goto stop;
    }
    if (rc) {
        /* Problems in argv itself are usage errors; the rest are configuration errors. */
        bool usage = strncmp(err, "--", 2) == 0 && strstr(err, "unknown option");
        usage = usage || strstr(err, "missing value") || strstr(err, "unexpected argument");
        print_error(err);
        if (usage) fprintf(stderr, "Run 'moq-relay --help' for the list of options.\n");
        *status = usage ? 2 : 1;
        goto stop;
    }
    char warn[512] = "";
    if (moq_config_apply_log(cfg, envp, warn, sizeof(warn)) < 0) moq_warn("config", "%s", warn);
    if (moq_config_validate(cfg, err, sizeof(err)) < 0) {
        print_error(err);
        *status = 1;
        goto stop;
    }
    for (size_t i = 0; i < cfg->warnings.len; i++)
        moq_warn("config", "%s", cfg->warnings.v[i]);
    if (cfg->file)
        moq_info("config", "loaded %s", cfg->file);
    else
        moq_info("config", "no config file given: running on defaults, environment and flags");
    *status = 0;
    return true;
stop:
    moq_config_free(cfg);
    return false;
}
