/* Unit tests for src/config's command line beyond the settings: --file PATH (upstream's
 * packaged unit names the config this way), and the hidden --help-man / --help-markdown that
 * write the manual page and the reference of docs/config.md from the option table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/cli.h"
#include "config/config.h"
#include "config/schema.h"
#include "util/err.h"
#include "util/log.h"

static char err[512];
static char *no_env[] = {NULL};

static const char *src_path(const char *rel)
{
    static char buf[1024];
    const char *root = getenv("MOQ_SOURCE_DIR");
    snprintf(buf, sizeof(buf), "%s/%s", root && *root ? root : "../..", rel);
    return buf;
}

static void file_flag_loads_the_file(void **state)
{
    char path[1024], joined[1100];
    snprintf(path, sizeof(path), "%s", src_path("dev/relay.toml"));
    snprintf(joined, sizeof(joined), "--file=%s", path);
    char *spaced[] = {"moq-relay", "--file", path, NULL};
    char *equals[] = {"moq-relay", joined, NULL};
    char **forms[] = {spaced, equals};
    int counts[] = {3, 2};
    for (int i = 0; i < 2; i++) {
        struct moq_config cfg;
        enum moq_config_action action;
        assert_int_equal(
            moq_config_load(&cfg, counts[i], forms[i], no_env, &action, err, sizeof(err)), 0);
        assert_int_equal(action, MOQ_CONFIG_RUN);
        assert_string_equal(cfg.file, path);
        assert_string_equal(cfg.server.bind, "[::]:4443"); /* from dev/relay.toml */
        moq_config_free(&cfg);
    }
}

static void file_flag_errors(void **state)
{
    static const struct {
        const char *args[3];
        const char *msg;
    } cases[] = {
        {{"--file"}, "--file: missing value"},
        {{"a.toml", "--file", "b.toml"},
         "unexpected argument \"b.toml\": only one config file may be given"},
        {{"--file=a.toml", "b.toml"},
         "unexpected argument \"b.toml\": only one config file may be given"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[5] = {"moq-relay"};
        int argc = 1;
        for (int k = 0; k < 3 && cases[i].args[k]; k++)
            argv[argc++] = (char *)cases[i].args[k];
        struct moq_config cfg;
        enum moq_config_action action;
        int rc = moq_config_load(&cfg, argc, argv, no_env, &action, err, sizeof(err));
        if (rc != MOQ_ERR_CONFIG || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: rc=%d \"%s\"", i, rc, err);
        moq_config_free(&cfg);
    }
    /* a command-line mistake: exit status 2, as for an unknown flag */
    struct moq_config cfg;
    int status = -1;
    char *missing[] = {"moq-relay", "--file", NULL};
    assert_false(moq_cli_configure(&cfg, 2, missing, no_env, &status));
    assert_int_equal(status, 2);
}

static void hidden_help_actions(void **state)
{
    struct moq_config cfg;
    enum moq_config_action action;
    char *man[] = {"moq-relay", "--help-man", NULL};
    assert_int_equal(moq_config_load(&cfg, 2, man, no_env, &action, err, sizeof(err)), 0);
    assert_int_equal(action, MOQ_CONFIG_HELP_MAN);
    moq_config_free(&cfg);
    char *md[] = {"moq-relay", "relay.toml", "--help-markdown", NULL};
    assert_int_equal(moq_config_load(&cfg, 3, md, no_env, &action, err, sizeof(err)), 0);
    assert_int_equal(action, MOQ_CONFIG_HELP_MARKDOWN);
    assert_null(cfg.server.tls.generate.v); /* nothing loaded */
    moq_config_free(&cfg);
    char *both[] = {"moq-relay", "--help-man", "--help", NULL}; /* --help wins */
    assert_int_equal(moq_config_load(&cfg, 3, both, no_env, &action, err, sizeof(err)), 0);
    assert_int_equal(action, MOQ_CONFIG_HELP);
    moq_config_free(&cfg);
}

static char *render(void (*print)(FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    print(f);
    fclose(f);
    return buf;
}

/* s as the manual page spells it: hyphens and backslashes escaped */
static void roff_escape(const char *s, char *out, size_t n)
{
    size_t o = 0;
    for (; *s && o + 3 < n; s++) {
        if (*s == '-' || *s == '\\') out[o++] = '\\';
        out[o++] = *s == '\\' ? 'e' : *s;
    }
    out[o] = '\0';
}

static void man_page_lists_what_help_lists(void **state)
{
    char *man = render(moq_config_print_man);
    char *help = render(moq_config_print_help);
    assert_non_null(strstr(man, ".TH MOQ\\-RELAY 1 "));
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        if (!o->flag || (o->flags & (OPT_HIDDEN | OPT_ALIAS))) continue;
        char flag[96], text[512];
        snprintf(flag, sizeof(flag), "--%s", o->flag);
        assert_non_null(strstr(help, flag));
        roff_escape(flag, text, sizeof(text));
        if (!strstr(man, text)) fail_msg("the manual page lacks %s", flag);
        roff_escape(o->help, text, sizeof(text));
        if (!strstr(man, text)) fail_msg("the manual page lacks the help of %s", flag);
        if (o->env && !strstr(man, o->env)) fail_msg("the manual page lacks %s", o->env);
        roff_escape(o->key ? o->key : "", text, sizeof(text));
        if (o->key && !strstr(man, text)) fail_msg("the manual page lacks %s", o->key);
    }
    for (size_t i = 0; i < moq_config_ncli_opts; i++) {
        char flag[64], text[128];
        snprintf(flag, sizeof(flag), "--%s", moq_config_cli_opts[i].flag);
        assert_non_null(strstr(help, flag));
        roff_escape(flag, text, sizeof(text));
        if (!strstr(man, text)) fail_msg("the manual page lacks %s", flag);
    }
    free(man);
    free(help);
}

int main(void)
{
    moq_log_set_level(MOQ_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_flag_loads_the_file),
        cmocka_unit_test(file_flag_errors),
        cmocka_unit_test(hidden_help_actions),
        cmocka_unit_test(man_page_lists_what_help_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
