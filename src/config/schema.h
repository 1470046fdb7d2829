/*
 * schema.h - internal to src/config: the table of every option (TOML key, flags, env
 * variable, type, default, help) that config.c loads, overrides, prints and validates.
 * Not part of the public API; readers use struct moq_config from config.h.
 */
#ifndef MOQ_CONFIG_SCHEMA_H
#define MOQ_CONFIG_SCHEMA_H

#include <stddef.h>
#include <sys/types.h>

enum opt_type {
    T_STR,        /* any string (paths, names, URLs we do not interpret) */
    T_ADDR,       /* IP:port or [IPv6]:port */
    T_HOSTPORT,   /* like T_ADDR, or hostname:port */
    T_LIST,       /* string or array of strings */
    T_URLS,       /* cluster peers: array of https/moql/moqt URLs */
    T_VERSIONS,   /* array of moq version names */
    T_INTLIST,    /* array of non-negative integers (stored as decimal strings) */
    T_BOOL,       /* boolean */
    T_U64,        /* non-negative integer */
    T_DURATION,   /* "5s", "500ms": stored in milliseconds */
    T_SIZE,       /* integer bytes, "8GiB", "75%": stored in bytes */
    T_LEVEL,      /* error|warn|info|debug|trace */
    T_CONGESTION, /* loss|delay */
    T_BACKEND,    /* quinn|quiche|noq */
    T_HEX,        /* hex string */
    T_PUBLIC,     /* string, array of strings, or { subscribe, publish, api } */
    T_PUBLIC_SUB, /* flag/env only: extra anonymous subscribe prefixes */
    T_PUBLIC_PUB, /* flag/env only: extra anonymous publish prefixes */
    T_PUBLIC_API, /* flag/env only: public access API URL */
    T_MESH,       /* boolean, or (legacy) this node's URL */
    T_ROOT,       /* legacy cluster root: one peer URL */
};

enum opt_flag {
    OPT_ALIAS = 1 << 0,      /* a second TOML spelling of another entry: not in help/docs */
    OPT_IGNORED = 1 << 1,    /* accepted for compatibility; validate warns when it is set */
    OPT_DEPRECATED = 1 << 2, /* validate warns when it is set */
    OPT_COMMA = 1 << 3,      /* the flag value is a comma-separated list too */
    OPT_HIDDEN = 1 << 4,     /* not listed by --help */
};

struct opt {
    const char *key;        /* TOML path, NULL when the option is flag/env only */
    const char *flag;       /* long flag without "--", or NULL */
    const char *flag_alias; /* another accepted flag spelling, or NULL */
    const char *env;        /* MOQ_* variable, or NULL */
    enum opt_type type;
    size_t off;      /* field in struct moq_config */
    ssize_t set_off; /* bool *_set field, or -1 */
    unsigned flags;
    const char *def;  /* default as shown to users, or NULL for "unset" */
    const char *help; /* one line */
};

/* Where a value came from (struct moq_config's origin[].src). */
enum src { SRC_DEFAULT = 0, SRC_FILE, SRC_ENV, SRC_FLAG };

extern const struct opt moq_config_opts[];
extern const size_t moq_config_nopts;

/* The paragraph under the usage line of --help and the DESCRIPTION of the manual page. */
extern const char moq_config_help_intro[];

/* Options of the command line itself rather than settings: --file, --help, --version. */
struct cli_opt {
    const char *flag;        /* long flag without "--" */
    const char *short_flag;  /* one letter without "-", or NULL */
    const char *placeholder; /* " <PATH>", or NULL when the flag takes no value */
    const char *help;        /* one line */
};

extern const struct cli_opt moq_config_cli_opts[];
extern const size_t moq_config_ncli_opts;

/* How --help shows the value of a flag: "[=BOOL]", " <ADDR>", ... */
const char *moq_config_placeholder(const struct opt *o);

#endif
