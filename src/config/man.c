/* man.c - moq-relay(1), written from the option table that --help and docs/config.md come
 * from (see config.h: moq_config_print_man). The build runs `moq-relay --help-man`. */
#include <stdbool.h>
#include <stdio.h>

#include "config/config.h"
#include "config/schema.h"

/* Text for roff: backslashes and hyphens escaped, no line starting with a control char. */
static void roff(FILE *out, const char *s)
{
    bool line_start = true;
    for (; *s; s++) {
        if (line_start && (*s == '.' || *s == '\'')) fputs("\\&", out);
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
        line_start = *s == '\n';
    }
}

static void font(FILE *out, const char *f, const char *s)
{
    fprintf(out, "\\f%s", f);
    roff(out, s);
    fputs("\\fR", out);
}

/* " [label value]", as --help writes it */
static void bracket(FILE *out, const char *label, const char *value)
{
    fputs(" [", out);
    roff(out, label);
    roff(out, value);
    fputc(']', out);
}

static void option(FILE *out, const struct opt *o)
{
    char flag[96];
    snprintf(flag, sizeof(flag), "--%s", o->flag);
    fputs(".TP\n", out);
    font(out, "B", flag);
    font(out, "I", moq_config_placeholder(o));
    fputc('\n', out);
    /* the same words, defaults and variables as the --help line */
    roff(out, o->help);
    if (o->flags & OPT_IGNORED) bracket(out, "accepted, no effect", "");
    if (o->def) bracket(out, "default: ", o->def);
    if (o->env) bracket(out, "env: ", o->env);
    if (o->flag_alias) bracket(out, "alias: --", o->flag_alias);
    fputc('\n', out);
    if (!o->key && !(o->flags & OPT_DEPRECATED)) return;
    fputs(".br\n", out);
    if (o->key) {
        fputs("TOML: ", out);
        font(out, "B", o->key);
    }
    if (o->flags & OPT_DEPRECATED) fputs(" (deprecated)", out);
    fputc('\n', out);
}

static void cli_option(FILE *out, const struct cli_opt *c)
{
    char flag[64];
    fputs(".TP\n", out);
    if (c->short_flag) {
        snprintf(flag, sizeof(flag), "-%s", c->short_flag);
        font(out, "B", flag);
        fputs(", ", out);
    }
    snprintf(flag, sizeof(flag), "--%s", c->flag);
    font(out, "B", flag);
    if (c->placeholder) font(out, "I", c->placeholder);
    fputc('\n', out);
    roff(out, c->help);
    fputc('\n', out);
}

static const char *const sections =
    ".SH ENVIRONMENT\n"
    "Every option above has a MOQ_* variable, named with it.\n"
    ".TP\n"
    ".B MOQ_LOG\\fR, \\fBRUST_LOG\n"
    "A RUST_LOG-style filter applied on top of the log level (MOQ_LOG wins).\n"
    ".TP\n"
    ".B NOTIFY_SOCKET\n"
    "Set by systemd for Type=notify services: the relay sends READY=1 once every listener is\n"
    "bound and STOPPING=1 when it shuts down.\n"
    ".TP\n"
    ".B WATCHDOG_USEC\\fR, \\fBWATCHDOG_PID\n"
    "Set by systemd with WatchdogSec=: the relay sends WATCHDOG=1 at half that interval.\n"
    ".SH SIGNALS\n"
    "SIGINT and SIGTERM close every session gracefully, then the relay exits with status 0.\n"
    ".PP\n"
    "SIGHUP re-reads the certificate and key files ([server.tls], [web.https]) and the auth\n"
    "key files, without dropping a session, and logs one line per item. A certificate that\n"
    "fails to load keeps the current one; a key file that fails refuses its tokens until it\n"
    "loads. Other settings (listeners, public paths, cluster) take effect on restart.\n"
    ".SH EXIT STATUS\n"
    "0 after a clean shutdown or --help/--version; 1 for a configuration or startup error\n"
    "(a listener that cannot be bound, a missing certificate); 2 for a command-line error.\n"
    ".SH FILES\n"
    ".TP\n"
    ".I /etc/moq/relay.toml\n"
    "The configuration the systemd unit and the Debian package use.\n"
    ".TP\n"
    ".I /var/lib/moq\n"
    "The service's working directory: relative paths in the configuration start here.\n"
    ".SH SEE ALSO\n"
    ".BR moq (1),\n"
    ".BR moq\\-token (1),\n"
    ".BR systemd.service (5).\n"
    "docs/config.md and docs/operations.md describe every key and the deployment.\n";

void moq_config_print_man(FILE *out)
{
    fputs(".\\\" moq-relay(1), written by moq-relay --help-man from its option table.\n", out);
    fprintf(out, ".TH MOQ\\-RELAY 1 \"\" \"moq\\-relay %s\" \"User Commands\"\n", MOQ_VERSION);
    fputs(".SH NAME\nmoq\\-relay \\- Media over QUIC relay\n", out);
    fputs(".SH SYNOPSIS\n.B moq\\-relay\n[\\fIOPTIONS\\fR] [\\fICONFIG.toml\\fR]\n", out);
    fputs(".SH DESCRIPTION\n", out);
    fputs("moq\\-relay forwards live broadcasts from publishers to subscribers over QUIC,\n"
          "WebTransport and WebSocket, speaking the moq\\-lite protocol.\n.PP\n",
          out);
    roff(out, moq_config_help_intro);
    fputs(".SH OPTIONS\n", out);
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        if (o->flag && !(o->flags & (OPT_HIDDEN | OPT_ALIAS))) option(out, o);
    }
    for (size_t i = 0; i < moq_config_ncli_opts; i++)
        cli_option(out, &moq_config_cli_opts[i]);
    fputs(sections, out);
}
