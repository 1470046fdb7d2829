/*
 * moq-token: generate keys, sign and verify tokens for moq-relay. Same commands, flags and
 * files as upstream's Rust moq-token (and the @moq/token CLI where they differ).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auth/auth.h"
#include "util/err.h"

#define EXIT_USAGE 2

static const char *global_key; /* legacy: moq-token --key FILE <command> */

static const char main_usage[] =
    "Generate, sign, and verify tokens for moq-relay\n"
    "\n"
    "Usage: moq-token [--key FILE] <COMMAND> [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  generate  Generate a new signing key\n"
    "  sign      Sign a token, writing it to stdout\n"
    "  verify    Verify a token, writing its claims to stdout as JSON\n"
    "  help      Print this message or the help of a command\n"
    "\n"
    "Options:\n"
    "  --key FILE     Key file for sign/verify, or where generate writes the key (legacy form)\n"
    "  -h, --help     Print help\n"
    "  -V, --version  Print version\n";

static const char generate_usage[] =
    "Generate a new signing key.\n"
    "\n"
    "A random key ID is assigned unless --id is specified. Key files are base64url-encoded\n"
    "JSON (the form upstream writes); --json writes plain JSON. Files holding secret\n"
    "material are created owner-only (0600).\n"
    "\n"
    "Usage: moq-token generate [OPTIONS]\n"
    "\n"
    "Options:\n"
    "  --algorithm ALG   HS256 (default), HS384, HS512, ES256, ES384, RS256, RS384, RS512,\n"
    "                    PS256, PS384, PS512, EdDSA\n"
    "  --id KID          Key ID (A-Z a-z 0-9 - _); random 16 hex digits if omitted\n"
    "  --out FILE        Write the key to FILE ('-' for stdout, the default); alias --key\n"
    "  --out-dir DIR     Write the key to DIR/{kid}.jwk (DIR is created, owner-only, if missing)\n"
    "  --public FILE     Write the public key to FILE (asymmetric algorithms; '-' stdout)\n"
    "  --public-dir DIR  Write the public key to DIR/{kid}.jwk (DIR is created if missing)\n"
    "  --root PATH       Root of the key scope (only with --publish/--subscribe)\n"
    "  --publish PATH    Publish prefix the key may grant (repeatable); makes a scoped key\n"
    "  --subscribe PATH  Subscribe prefix the key may grant (repeatable); makes a scoped key\n"
    "  --base64          Write base64url-encoded JSON (default)\n"
    "  --json            Write plain JSON instead\n"
    "  -h, --help        Print help\n";

static const char sign_usage[] =
    "Sign a token, writing it to stdout.\n"
    "\n"
    "Usage: moq-token sign --key FILE [OPTIONS]\n"
    "\n"
    "Options:\n"
    "  --key FILE          Signing key file ('-' for stdin)\n"
    "  --root PATH         Root path of the token [default: \"\"]\n"
    "  --publish PATH      Path suffix the holder may publish under (repeatable; \"\" = all)\n"
    "  --subscribe PATH    Path suffix the holder may subscribe under (repeatable; \"\" = all)\n"
    "  --cluster           Mark the token as a cluster node (legacy \"cluster\" claim)\n"
    "  --expires WHEN      Expiry: unix timestamp, RFC 3339 time, or +DURATION (+3600, 90s,\n"
    "                      30m, 12h, 7d) from now; a time already past is refused\n"
    "  --allow-expired     Sign even when --expires is past (to test that relays refuse it)\n"
    "  --issued WHEN       Issued-at time, same forms as --expires\n"
    "  -h, --help          Print help\n";

static const char verify_usage[] =
    "Verify a token, writing its claims to stdout as JSON.\n"
    "\n"
    "Exits non-zero with the reason on stderr when the token is invalid.\n"
    "\n"
    "Usage: moq-token verify --key FILE [OPTIONS] < TOKEN\n"
    "\n"
    "Options:\n"
    "  --key FILE   Key file ('-' for stdin, then --in must be a file)\n"
    "  --in FILE    Read the token from FILE ('-' for stdin, the default)\n"
    "  --root PATH  Also require the token to grant access at connection path PATH\n"
    "  -h, --help   Print help\n";

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("Error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_FAILURE;
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n\nFor more information, try 'moq-token %s--help'.\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

static bool is_dash(const char *s)
{
    return s && strcmp(s, "-") == 0;
}

/* Read a whole stream (bounded), trimmed of surrounding whitespace. */
static char *read_stream(FILE *f, size_t max, size_t *len_out)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 == cap) {
            if (cap > max) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - 1 - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) break;
            buf[len] = '\0';
            char *start = buf;
            while (isspace((unsigned char)*start))
                start++;
            while (len > (size_t)(start - buf) && isspace((unsigned char)buf[len - 1]))
                len--;
            buf[len] = '\0';
            memmove(buf, start, len - (size_t)(start - buf) + 1);
            *len_out = len - (size_t)(start - buf);
            return buf;
        }
    }
    free(buf);
    return NULL;
}

static int read_key(const char *path, moq_jwk **key)
{
    moq_auth_error err = {0};
    if (!is_dash(path)) {
        if (moq_jwk_load(path, key, &err) != 0)
            return fail("failed to read key from %s: %s", path, err.msg);
        return 0;
    }
    size_t len;
    char *text = read_stream(stdin, MOQ_JWK_MAX_LEN, &len);
    if (!text) return fail("failed to read key from stdin: %s", strerror(errno));
    int rc = moq_jwk_parse(text, len, key, &err);
    free(text);
    if (rc) return fail("failed to parse key from stdin: %s", err.msg);
    return 0;
}

/* ---- time values ---- */

static bool parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* RFC 3339: 2030-01-02T03:04:05(.frac)?(Z|+hh:mm|-hh:mm); 't'/' ' separators allowed. */
static bool parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int year, mon, day, hour, min, sec;
    const char *p = s;
    if (!parse_digits(&p, 4, &year) || *p++ != '-' || !parse_digits(&p, 2, &mon) || *p++ != '-' ||
        !parse_digits(&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
        return false;
    p++;
    if (!parse_digits(&p, 2, &hour) || *p++ != ':' || !parse_digits(&p, 2, &min) || *p++ != ':' ||
        !parse_digits(&p, 2, &sec))
        return false;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    int offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!parse_digits(&p, 2, &oh) || *p++ != ':' || !parse_digits(&p, 2, &om) || oh > 23 ||
            om > 59)
            return false;
        offset = sign * (oh * 3600 + om * 60);
    } else {
        return false;
    }
    if (*p || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return false;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *out = (int64_t)timegm(&tm) - offset;
    return true;
}

/* A unix timestamp (upstream's form), an RFC 3339 time, or a duration from now. */
static bool parse_when(const char *s, int64_t now, int64_t *out)
{
    if (!*s) return false;
    bool relative = s[0] == '+';
    const char *p = relative ? s + 1 : s;
    if (!isdigit((unsigned char)*p)) return false;
    errno = 0;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (errno == ERANGE) return false;
    if (*end == '\0' && !relative) {
        *out = v;
        return true;
    }
    static const struct {
        char unit;
        long long secs;
    } units[] = {{'\0', 1}, {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (*end != units[i].unit || (units[i].unit && end[1] != '\0')) continue;
        if (v > (INT64_MAX - now) / units[i].secs) return false;
        *out = now + v * units[i].secs;
        return true;
    }
    return parse_rfc3339(s, out);
}

/* ---- generate ---- */

static char *dir_join(const char *dir, const char *kid)
{
    size_t n = strlen(dir) + strlen(kid) + 6;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s.jwk", dir, kid);
    return p;
}

static int write_key(const moq_jwk *key, const char *path, bool json)
{
    if (is_dash(path)) {
        char *s = json ? moq_jwk_to_json(key, true) : moq_jwk_to_base64(key);
        if (!s) return fail("out of memory");
        puts(s);
        free(s);
        return 0;
    }
    moq_auth_error err = {0};
    if (moq_jwk_save(key, path, json, &err) != 0)
        return fail("failed to write key to %s: %s", path, err.msg);
    return 0;
}

/* mkdir -p: create dir and its missing parents with `mode`; existing ones are kept. */
static int make_dirs(const char *dir, mode_t mode)
{
    if (!dir[0]) {
        errno = ENOENT;
        return -1;
    }
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1;; p++) {
        bool last = *p == '\0';
        if (*p != '/' && !last) continue;
        *p = '\0';
        struct stat st;
        if (mkdir(path, mode) < 0 &&
            (errno != EEXIST || stat(path, &st) < 0 || !S_ISDIR(st.st_mode))) {
            if (errno == EEXIST) errno = ENOTDIR;
            return -1;
        }
        if (last) return 0;
        *p = '/';
    }
}

static int write_key_to(const moq_jwk *key, const char *dir, const char *path, bool json,
                        mode_t dir_mode)
{
    if (!dir) return write_key(key, path, json);
    if (make_dirs(dir, dir_mode) < 0)
        return fail("cannot create directory %s: %s", dir, strerror(errno));
    char *p = dir_join(dir, moq_jwk_kid(key));
    if (!p) return fail("out of memory");
    int rc = write_key(key, p, json);
    free(p);
    return rc;
}

enum {
    OPT_ALGORITHM = 256,
    OPT_ID,
    OPT_OUT,
    OPT_OUT_DIR,
    OPT_PUBLIC,
    OPT_PUBLIC_DIR,
    OPT_ROOT,
    OPT_PUBLISH,
    OPT_SUBSCRIBE,
    OPT_BASE64,
    OPT_JSON,
    OPT_KEY,
    OPT_CLUSTER,
    OPT_EXPIRES,
    OPT_ISSUED,
    OPT_IN,
    OPT_ALLOW_EXPIRED,
};

static int cmd_generate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"algorithm", required_argument, NULL, OPT_ALGORITHM},
        {"alg", required_argument, NULL, OPT_ALGORITHM},
        {"id", required_argument, NULL, OPT_ID},
        {"kid", required_argument, NULL, OPT_ID},
        {"out", required_argument, NULL, OPT_OUT},
        {"key", required_argument, NULL, OPT_OUT},
        {"out-dir", required_argument, NULL, OPT_OUT_DIR},
        {"public", required_argument, NULL, OPT_PUBLIC},
        {"public-dir", required_argument, NULL, OPT_PUBLIC_DIR},
        {"root", required_argument, NULL, OPT_ROOT},
        {"publish", required_argument, NULL, OPT_PUBLISH},
        {"subscribe", required_argument, NULL, OPT_SUBSCRIBE},
        {"base64", no_argument, NULL, OPT_BASE64},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *alg_name = "HS256", *id = NULL, *out = global_key, *out_dir = NULL;
    const char *public = NULL, *public_dir = NULL;
    bool json = false;
    moq_scope scope = {0};
    int c, rc = EXIT_USAGE;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ALGORITHM:
            alg_name = optarg;
            break;
        case OPT_ID:
            id = optarg;
            break;
        case OPT_OUT:
            out = optarg;
            break;
        case OPT_OUT_DIR:
            out_dir = optarg;
            break;
        case OPT_PUBLIC:
            public
            = optarg;
            break;
        case OPT_PUBLIC_DIR:
            public_dir = optarg;
            break;
        case OPT_ROOT:
            free(scope.root);
            scope.root = strdup(optarg);
            break;
        case OPT_PUBLISH:
            moq_strlist_push(&scope.publish, optarg);
            break;
        case OPT_SUBSCRIBE:
            moq_strlist_push(&scope.subscribe, optarg);
            break;
        case OPT_BASE64:
            json = false;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            fputs(generate_usage, stdout);
            rc = 0;
            goto out;
        default:
            goto out_usage;
        }
    }
    if (optind < argc) {
        rc = usage_error("generate ", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    int alg = moq_jwt_alg_parse(alg_name);
    if (alg < 0) {
        rc = usage_error("generate ", "invalid algorithm: %s", alg_name);
        goto out;
    }
    if (out && out_dir) {
        rc = usage_error("generate ", "--out and --out-dir cannot be used together");
        goto out;
    }
    if (public && public_dir) {
        rc = usage_error("generate ", "--public and --public-dir cannot be used together");
        goto out;
    }
    if (is_dash(public) && !out_dir && (!out || is_dash(out))) {
        rc = fail("cannot write both keys to stdout; use --out/--public with a file path, or "
                  "--out-dir/--public-dir");
        goto out;
    }

    char kid[MOQ_KID_MAX + 1];
    if (id) {
        if (moq_kid_validate(id, strlen(id)) != 0) {
            rc = fail("key ID contains invalid characters or is too long (only A-Z a-z 0-9 - _, "
                      "1..%d characters)",
                      MOQ_KID_MAX);
            goto out;
        }
        snprintf(kid, sizeof(kid), "%s", id);
    } else if (moq_kid_random(kid) != 0) {
        rc = fail("random generator failed");
        goto out;
    }

    moq_auth_error err = {0};
    moq_jwk *key = NULL, *scoped = NULL, *pub = NULL;
    if (moq_jwk_generate((moq_jwt_alg)alg, kid, &key, &err) != 0) {
        rc = fail("%s", err.msg);
        goto out;
    }
    rc = EXIT_FAILURE;
    if (scope.publish.len || scope.subscribe.len) {
        if (moq_jwk_with_scope(key, &scope, &scoped, &err) != 0) {
            fail("%s", err.msg);
            goto out_keys;
        }
        moq_jwk_unref(key);
        key = scoped;
    }
    if (public || public_dir) {
        if (moq_jwk_public(key, &pub, &err) != 0) {
            fail("%s", err.msg);
            goto out_keys;
        }
        if (write_key_to(pub, public_dir, public, json, 0755) != 0) goto out_keys;
    }
    /* a key directory holds secrets: a new one is owner-only */
    rc = write_key_to(key, out_dir, out ? out : "-", json, 0700);
out_keys:
    moq_jwk_unref(pub);
    moq_jwk_unref(key);
out:
    moq_scope_free(&scope);
    return rc;
out_usage:
    moq_scope_free(&scope);
    return usage_error("generate ", "invalid arguments");
}

/* ---- sign ---- */

static int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, OPT_KEY},
        {"root", required_argument, NULL, OPT_ROOT},
        {"publish", required_argument, NULL, OPT_PUBLISH},
        {"subscribe", required_argument, NULL, OPT_SUBSCRIBE},
        {"cluster", no_argument, NULL, OPT_CLUSTER},
        {"expires", required_argument, NULL, OPT_EXPIRES},
        {"issued", required_argument, NULL, OPT_ISSUED},
        {"allow-expired", no_argument, NULL, OPT_ALLOW_EXPIRED},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *key_path = global_key, *expires = NULL;
    bool allow_expired = false;
    moq_claims claims;
    moq_claims_init(&claims);
    int64_t now = (int64_t)time(NULL);
    int c, rc = EXIT_USAGE;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_KEY:
            key_path = optarg;
            break;
        case OPT_ROOT:
            moq_claims_set_root(&claims, optarg);
            break;
        case OPT_PUBLISH:
            moq_strlist_push(&claims.publish, optarg);
            break;
        case OPT_SUBSCRIBE:
            moq_strlist_push(&claims.subscribe, optarg);
            break;
        case OPT_CLUSTER:
            claims.cluster = true;
            break;
        case OPT_EXPIRES:
            if (!parse_when(optarg, now, &claims.exp)) {
                rc = usage_error("sign ",
                                 "invalid --expires '%s': expected a unix timestamp, "
                                 "an RFC 3339 time or +DURATION",
                                 optarg);
                goto out;
            }
            claims.has_exp = true;
            expires = optarg;
            break;
        case OPT_ALLOW_EXPIRED:
            allow_expired = true;
            break;
        case OPT_ISSUED:
            if (!parse_when(optarg, now, &claims.iat)) {
                rc = usage_error("sign ", "invalid --issued '%s'", optarg);
                goto out;
            }
            claims.has_iat = true;
            break;
        case 'h':
            fputs(sign_usage, stdout);
            rc = 0;
            goto out;
        default:
            rc = usage_error("sign ", "invalid arguments");
            goto out;
        }
    }
    if (optind < argc) {
        rc = usage_error("sign ", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!key_path) {
        rc = usage_error("sign ", "the following required arguments were not provided: --key");
        goto out;
    }
    if ((claims.has_exp && claims.exp < 0) || (claims.has_iat && claims.iat < 0)) {
        rc = usage_error("sign ", "timestamps before 1970 are not allowed");
        goto out;
    }
    if (claims.has_exp && claims.exp <= now && !allow_expired) {
        char when[32] = "";
        time_t t = (time_t)claims.exp;
        struct tm tm;
        if (gmtime_r(&t, &tm)) strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        rc = usage_error("sign ",
                         "--expires '%s' (%s) is not in the future: the token would never "
                         "verify (--allow-expired signs it anyway)",
                         expires, when);
        goto out;
    }
    moq_jwk *key;
    rc = EXIT_FAILURE;
    if (read_key(key_path, &key) != 0) goto out;
    moq_auth_error err = {0};
    char *token = NULL;
    if (moq_jwt_sign(key, &claims, &token, &err) != 0) {
        fail("%s", err.msg);
    } else {
        puts(token);
        rc = 0;
    }
    free(token);
    moq_jwk_unref(key);
out:
    moq_claims_free(&claims);
    return rc;
}

/* ---- verify ---- */

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, OPT_KEY},
        {"in", required_argument, NULL, OPT_IN},
        {"root", required_argument, NULL, OPT_ROOT},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *key_path = global_key, *in = "-", *root = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_KEY:
            key_path = optarg;
            break;
        case OPT_IN:
            in = optarg;
            break;
        case OPT_ROOT:
            root = optarg;
            break;
        case 'h':
            fputs(verify_usage, stdout);
            return 0;
        default:
            return usage_error("verify ", "invalid arguments");
        }
    }
    if (optind < argc) return usage_error("verify ", "unexpected argument '%s'", argv[optind]);
    if (!key_path)
        return usage_error("verify ", "the following required arguments were not provided: --key");
    if (is_dash(key_path) && is_dash(in)) return fail("--key and --in cannot both read from stdin");

    moq_jwk *key;
    if (read_key(key_path, &key) != 0) return EXIT_FAILURE;
    FILE *f = is_dash(in) ? stdin : fopen(in, "r");
    size_t len = 0;
    char *token = f ? read_stream(f, MOQ_JWT_MAX_LEN * 2, &len) : NULL;
    int saved = errno;
    if (f && f != stdin) fclose(f);
    if (!token) {
        moq_jwk_unref(key);
        return fail("failed to read token from %s: %s", is_dash(in) ? "stdin" : in,
                    strerror(saved));
    }

    moq_auth_error err = {0};
    moq_claims claims;
    moq_perms perms = {0};
    int rc = EXIT_FAILURE;
    if (moq_jwt_verify(key, token, len, (int64_t)time(NULL), &claims, &err) != 0) {
        fail("invalid token: %s", err.msg);
    } else if (root && moq_claims_authorize(&claims, root, &perms, &err) != 0) {
        fail("token not valid at path \"%s\": %s", root, err.msg);
    } else {
        char *json = moq_claims_to_json(&claims, true);
        if (json) {
            puts(json);
            rc = 0;
        } else {
            fail("out of memory");
        }
        free(json);
    }
    moq_perms_free(&perms);
    moq_claims_free(&claims);
    free(token);
    moq_jwk_unref(key);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, OPT_KEY},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
        switch (c) {
        case OPT_KEY:
            global_key = optarg;
            break;
        case 'h':
            fputs(main_usage, stdout);
            return 0;
        case 'V':
            printf("moq-token %s\n", MOQ_VERSION);
            return 0;
        default:
            return usage_error("", "invalid arguments");
        }
    }
    if (optind >= argc) {
        fputs(main_usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    if (strcmp(cmd, "generate") == 0) return cmd_generate(sub_argc, sub_argv);
    if (strcmp(cmd, "sign") == 0) return cmd_sign(sub_argc, sub_argv);
    if (strcmp(cmd, "verify") == 0) return cmd_verify(sub_argc, sub_argv);
    if (strcmp(cmd, "help") == 0) {
        const char *topic = sub_argc > 1 ? sub_argv[1] : "";
        fputs(strcmp(topic, "generate") == 0 ? generate_usage
              : strcmp(topic, "sign") == 0   ? sign_usage
              : strcmp(topic, "verify") == 0 ? verify_usage
                                             : main_usage,
              stdout);
        return 0;
    }
    return usage_error("", "unrecognized subcommand '%s'", cmd);
}
