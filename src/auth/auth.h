/*
 * auth.h - authentication: JWK keys, JWS-compact JWT tokens, claims, path scoping, and the
 * relay's per-connection authorizer. Compatible with upstream moq-token (Rust) and the
 * npm package @moq/token: the same key files, the same tokens, the same claim semantics.
 *
 * Ownership:
 * - moq_jwk is reference counted and immutable once shared: moq_jwk_ref/moq_jwk_unref.
 *   Every function that returns a moq_jwk ** hands the caller one reference.
 * - moq_claims, moq_scope and moq_perms are plain structs owned by the caller: init (or
 *   zero) them, and release what the library put in them with the matching *_free.
 *   Strings inside them are heap copies owned by the struct.
 * - Strings returned as char * (tokens, JSON) are malloc'd and freed by the caller.
 * - moq_auth is created from config and freed with moq_auth_free. moq_auth_check may be
 *   called from several threads at once (the key cache is locked internally).
 *
 * Errors: functions return 0 on success or a negative MOQ_ERR_* (util/err.h). Rejections of
 * tokens and connections return MOQ_ERR_AUTH and fill the optional moq_auth_error with a
 * machine-readable reason and a one-line message meant for the log. Messages never contain
 * secrets; token-controlled text in them is truncated and sanitised by the logger.
 *
 * Time is always passed in (unix seconds): nothing here reads the clock.
 */
#ifndef MOQ_AUTH_AUTH_H
#define MOQ_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strlist.h"

/* Tokens longer than this are refused before any decoding. */
#define MOQ_JWT_MAX_LEN 8192
/* Key files (JSON or base64url) larger than this are refused. */
#define MOQ_JWK_MAX_LEN (64 * 1024)
/* Key ids: 1..128 of [A-Za-z0-9_-] (upstream KeyId). */
#define MOQ_KID_MAX 128
/* Symmetric secrets must be at least this long (upstream and @moq/token agree). */
#define MOQ_OCT_MIN_BYTES 32

/* ---- reasons ---------------------------------------------------------------------- */

enum moq_auth_reason {
    MOQ_AUTH_R_NONE = 0,
    MOQ_AUTH_R_MALFORMED,        /* not a JWS compact token, bad base64url or JSON */
    MOQ_AUTH_R_TOO_LARGE,        /* token over MOQ_JWT_MAX_LEN */
    MOQ_AUTH_R_ALGORITHM,        /* alg none/unknown, or not the key's algorithm */
    MOQ_AUTH_R_SIGNATURE,        /* signature does not verify */
    MOQ_AUTH_R_EXPIRED,          /* exp is in the past */
    MOQ_AUTH_R_USELESS,          /* grants neither publish nor subscribe */
    MOQ_AUTH_R_SCOPE,            /* grants more than the key's scope allows */
    MOQ_AUTH_R_KEY_OPS,          /* key_ops forbid the operation, or no private half */
    MOQ_AUTH_R_KID_MISSING,      /* key_dir needs a kid and the token has none */
    MOQ_AUTH_R_KID_INVALID,      /* kid is not [A-Za-z0-9_-]{1,128} */
    MOQ_AUTH_R_KID_MISMATCH,     /* token kid differs from the key's kid */
    MOQ_AUTH_R_KEY_NOT_FOUND,    /* no configured key for this token */
    MOQ_AUTH_R_KEY_INVALID,      /* a key file could not be read or parsed */
    MOQ_AUTH_R_TOKEN_UNEXPECTED, /* a token was given but no key is configured */
    MOQ_AUTH_R_TOKEN_REQUIRED,   /* no token and no public access at this path */
    MOQ_AUTH_R_ROOT_MISMATCH,    /* connection path is unrelated to the token root */
    MOQ_AUTH_R_NO_ACCESS,        /* path overlaps the root but no grant survives */
    MOQ_AUTH_R_NOT_YET_VALID,    /* nbf is in the future */
    MOQ_AUTH_R_CRITICAL,         /* the header has "crit": no extension is understood */
};

typedef struct moq_auth_error {
    int reason; /* enum moq_auth_reason */
    char msg[256];
} moq_auth_error;

/* Short stable name of a reason ("expired", "signature", ...). Never NULL. */
const char *moq_auth_reason_name(int reason);
/* HTTP status for a refused connection (upstream answers 401 for every refusal). */
int moq_auth_http_status(int reason);

/* ---- algorithms and key ids ------------------------------------------------------- */

typedef enum moq_jwt_alg {
    MOQ_ALG_HS256,
    MOQ_ALG_HS384,
    MOQ_ALG_HS512,
    MOQ_ALG_ES256,
    MOQ_ALG_ES384,
    MOQ_ALG_RS256,
    MOQ_ALG_RS384,
    MOQ_ALG_RS512,
    MOQ_ALG_PS256,
    MOQ_ALG_PS384,
    MOQ_ALG_PS512,
    MOQ_ALG_EDDSA,
    MOQ_ALG_COUNT
} moq_jwt_alg;

/* "HS256".. "EdDSA" (exact case, as JOSE spells them). */
const char *moq_jwt_alg_name(moq_jwt_alg alg);
/* Returns the algorithm (>= 0) or MOQ_ERR_INVALID. "none" is never an algorithm. */
int moq_jwt_alg_parse(const char *name);

/* 0 when kid is a valid key id, else MOQ_ERR_INVALID. */
int moq_kid_validate(const char *kid, size_t len);
/* A random 16-hex-digit key id, as upstream generates. out must hold 17 bytes. */
int moq_kid_random(char out[17]);

/* ---- string lists ------------------------------------------------------------------ */

/* moq_strlist comes from util/strlist.h */

/* ---- claims ------------------------------------------------------------------------ */

/* The token payload. publish = "put", subscribe = "get"; each entry is a path suffix
 * relative to root; "" grants everything under root; an empty list grants nothing. */
typedef struct moq_claims {
    char *root; /* NULL means "" */
    moq_strlist publish;
    moq_strlist subscribe;
    bool has_exp;
    int64_t exp; /* unix seconds */
    bool has_iat;
    int64_t iat;
    bool has_nbf;
    int64_t nbf; /* not before, unix seconds */
    /* Legacy "cluster": true claim (upstream dropped it when clustering moved to hop
     * lists; old tokens still carry it). Parsed and carried, enforces nothing itself. */
    bool cluster;
} moq_claims;

void moq_claims_init(moq_claims *c);
void moq_claims_free(moq_claims *c);
int moq_claims_set_root(moq_claims *c, const char *root);
/* MOQ_ERR_AUTH (reason USELESS) when the claims grant neither role. */
int moq_claims_validate(const moq_claims *c, moq_auth_error *err);
/* Parse a payload JSON object. put/get accept a string or a list of strings; exp/iat/nbf
 * integers (or null); unknown members are ignored; duplicate members are malformed. */
int moq_claims_from_json(const char *json, size_t len, moq_claims *out, moq_auth_error *err);
/* Serialize as upstream orders it: root, put, get, cluster (only when true), exp, iat.
 * root is always present (the JS verifier requires it). NULL on allocation failure. */
char *moq_claims_to_json(const moq_claims *c, bool pretty);

/* ---- key scope ------------------------------------------------------------------- */

/* The ceiling on what a key may grant, stored in its JWK as "scope": {root, put, get}.
 * A token exceeding its key's scope in any role or path is rejected whole. */
typedef struct moq_scope {
    char *root; /* NULL means "" */
    moq_strlist publish;
    moq_strlist subscribe;
} moq_scope;

void moq_scope_free(moq_scope *s);
/* True when every path the claims grant lies under a path the scope allows, per role. */
bool moq_scope_allows(const moq_scope *s, const moq_claims *c);

/* ---- permissions ----------------------------------------------------------------- */

/* What a connection may do. root is the normalised connection path ("" for "/"); the
 * prefixes are normalised, relative to root, deduplicated and free of redundant entries
 * (a shorter prefix subsumes longer ones), sorted by length then bytes. */
typedef struct moq_perms {
    char *root;
    moq_strlist publish;
    moq_strlist subscribe;
    int64_t expires; /* unix seconds; 0 = never */
    bool cluster;    /* the token carried the legacy cluster claim */
    bool anonymous;  /* granted by public access, without a token */
} moq_perms;

void moq_perms_free(moq_perms *p);

/* Scope claims to a connection path (upstream Claims::authorize):
 * - path extends the root: grants are narrowed to what lies under path, rebased;
 * - path is a parent of the root: grants are prefixed with the rest of the root;
 * - otherwise MOQ_ERR_AUTH reason ROOT_MISMATCH; no grant left: reason NO_ACCESS.
 * Fills every field of out (expires/cluster from the claims). */
int moq_claims_authorize(const moq_claims *c, const char *path, moq_perms *out,
                         moq_auth_error *err);

/* Engine checks. path is a broadcast path relative to perms->root (slashes at the
 * boundaries and doubled slashes do not matter). Matching is on segment boundaries:
 * "foo" covers "foo" and "foo/bar", never "foobar". */
bool moq_perms_can_publish(const moq_perms *p, const char *path, size_t len);
bool moq_perms_can_subscribe(const moq_perms *p, const char *path, size_t len);
/* An announcement of path is shown to this session iff it may subscribe to it. */
bool moq_perms_announce_visible(const moq_perms *p, const char *path, size_t len);
/* True when an announce interest in prefix can match anything this session may see
 * (some subscribe prefix lies under prefix, or prefix lies under one). */
bool moq_perms_subscribe_overlaps(const moq_perms *p, const char *prefix, size_t len);

/* ---- keys -------------------------------------------------------------------------- */

enum moq_key_op {
    MOQ_KEYOP_SIGN = 1,
    MOQ_KEYOP_VERIFY = 2,
    MOQ_KEYOP_ENCRYPT = 4,
    MOQ_KEYOP_DECRYPT = 8,
};

typedef struct moq_jwk moq_jwk;

/* Parse a key: JSON, or base64url-encoded JSON (the form upstream writes). kty oct/RSA/
 * EC/OKP (missing kty means oct, as old upstream keys omit it), alg must suit the key
 * type and curve, key_ops defaults to sign+verify, optional kid and scope. */
int moq_jwk_parse(const char *text, size_t len, moq_jwk **out, moq_auth_error *err);
/* Read and parse a key file. */
int moq_jwk_load(const char *path, moq_jwk **out, moq_auth_error *err);
/* A fresh key: HS 32/48/64-byte secret, RSA 2048, P-256/P-384, Ed25519. kid may be NULL. */
int moq_jwk_generate(moq_jwt_alg alg, const char *kid, moq_jwk **out, moq_auth_error *err);
/* The verify-only public half (fails for oct keys and keys that cannot verify). */
int moq_jwk_public(const moq_jwk *key, moq_jwk **out, moq_auth_error *err);
/* A copy of key carrying scope (copied); MOQ_ERR_INVALID when the scope grants nothing. */
int moq_jwk_with_scope(const moq_jwk *key, const moq_scope *scope, moq_jwk **out,
                       moq_auth_error *err);

moq_jwk *moq_jwk_ref(moq_jwk *key);
void moq_jwk_unref(moq_jwk *key);

moq_jwt_alg moq_jwk_alg(const moq_jwk *key);
const char *moq_jwk_kid(const moq_jwk *key);        /* NULL when the key has none */
unsigned moq_jwk_ops(const moq_jwk *key);           /* enum moq_key_op bits */
bool moq_jwk_is_private(const moq_jwk *key);        /* holds secret material */
const moq_scope *moq_jwk_scope(const moq_jwk *key); /* NULL: unrestricted */

/* Upstream's JSON form (member order alg, key_ops, kty, material, kid, scope). */
char *moq_jwk_to_json(const moq_jwk *key, bool pretty);
/* base64url (unpadded) of the compact JSON: what upstream writes to key files. */
char *moq_jwk_to_base64(const moq_jwk *key);
/* Write the key file (base64url unless as_json). A key with secret material is written
 * owner-only (0600) through a fresh temporary file renamed into place, so the secret is
 * never readable by others, even when replacing a world-readable file. */
int moq_jwk_save(const moq_jwk *key, const char *path, bool as_json, moq_auth_error *err);

/* ---- tokens -------------------------------------------------------------------------- */

/* Sign claims with key: key_ops must allow sign, the key must be private, claims must
 * grant something and stay within the key's scope. *out is a malloc'd token. */
int moq_jwt_sign(const moq_jwk *key, const moq_claims *claims, char **out, moq_auth_error *err);

/* Verify token with key at time now: the header alg must equal the key's alg (so an HS
 * token never verifies against an RSA/EC/OKP key), the signature must verify, exp (if
 * any) must not be in the past (no clock skew allowance, as upstream), the claims must
 * grant something within the key's scope. On success out holds the claims (caller frees
 * with moq_claims_free); on failure out is left empty. */
int moq_jwt_verify(const moq_jwk *key, const char *token, size_t len, int64_t now, moq_claims *out,
                   moq_auth_error *err);

typedef struct moq_jwt_header {
    moq_jwt_alg alg;
    char *kid; /* NULL when absent; not validated */
} moq_jwt_header;

/* Decode only the header (no signature check): for choosing a key by kid. */
int moq_jwt_header_parse(const char *token, size_t len, moq_jwt_header *out, moq_auth_error *err);
void moq_jwt_header_free(moq_jwt_header *h);

/* ---- the relay's authorizer -------------------------------------------------------- */

/* [auth] config, already parsed. All strings are borrowed for the duration of the call.
 * - key: one key file; a token's kid must match the key's kid when both have one.
 * - keys: several key files (rotation); merged with key. A token with a kid uses the key
 *   with that kid (or a key without kid); a token without kid is tried against each.
 * - key_dir: "{key_dir}/{kid}.jwk" resolved per token (kid required and validated).
 *   Cannot be combined with key/keys (upstream refuses --auth-key with --auth-key-dir).
 * - public_publish/public_subscribe: anonymous prefixes (TOML `public = "x"` puts x in
 *   both; `[auth.public] publish/subscribe` fill them separately). "" = everything.
 * Key files are re-read when they change on disk (stat), as upstream reads them per
 * connection. At least one source must be configured. */
typedef struct moq_auth_config {
    const char *key;
    const char *const *keys;
    size_t keys_len;
    const char *key_dir;
    const char *const *public_publish;
    size_t public_publish_len;
    const char *const *public_subscribe;
    size_t public_subscribe_len;
} moq_auth_config;

typedef struct moq_auth moq_auth;

/* Returns MOQ_ERR_CONFIG with err->msg on a bad config (unreadable key file, ...). */
int moq_auth_new(const moq_auth_config *cfg, moq_auth **out, moq_auth_error *err);
void moq_auth_free(moq_auth *a);

/* Permissions of a peer authenticated by a verified client certificate (mTLS), as upstream
 * grants them: everything under the connection path of `target` ("/path?query"; the query
 * is ignored), until `expires` (the certificate's notAfter; 0 = never). */
int moq_auth_certified(const char *target, size_t len, int64_t expires, moq_perms *out,
                       moq_auth_error *err);

/* One key file's outcome in moq_auth_reload: key (borrowed for the call) on success, NULL
 * and err on failure. */
typedef void (*moq_auth_reload_report)(void *ctx, const char *path, const moq_jwk *key,
                                       const moq_auth_error *err);

/* Re-read every key file of key/keys now, whether or not it changed on disk, and forget the
 * keys cached from key_dir (they are read again on their next use). Each file is reported
 * through `report` (may be NULL). A file that fails to load fails closed, as on a change
 * seen at connection time: tokens it signed are refused until it loads again. Returns the
 * number of files that failed; *dropped (may be NULL) gets the number of key_dir keys
 * forgotten. */
size_t moq_auth_reload(moq_auth *a, moq_auth_reload_report report, void *ctx, size_t *dropped);

/* Number of key files configured through key/keys. */
size_t moq_auth_key_files(const moq_auth *a);
/* True when key_dir is configured. */
bool moq_auth_has_key_dir(const moq_auth *a);

/* Authorize a connection. path is the connection path ("" or "/" is the root); jwt the
 * token or NULL/"" for anonymous access. On success *out holds the permissions (free
 * with moq_perms_free). With a token, public access is not consulted. */
int moq_auth_check(moq_auth *a, const char *path, const char *jwt, int64_t now, moq_perms *out,
                   moq_auth_error *err);

/* As moq_auth_check, taking the request target of a URL-bearing transport (WebTransport
 * CONNECT :path, WebSocket GET target, moq-lite-05 SETUP path): "/room/x?jwt=eyJ...",
 * split by moq_target_split (util/url.h) as the HTTP server splits it. Dot segments are
 * removed from the path as a URL parser would; the token is read by moq_auth_query_jwt. A
 * target that does not split, or a query with a bad percent-escape, is refused
 * (MOQ_AUTH_R_MALFORMED). */
int moq_auth_check_target(moq_auth *a, const char *target, size_t len, int64_t now, moq_perms *out,
                          moq_auth_error *err);

/* As moq_auth_check, for URL-less transports where path and query arrive separately (the
 * moq-lite-05 SETUP path): the path is used as is (empty means "/"). query may be NULL. */
int moq_auth_check_path(moq_auth *a, const char *path, size_t path_len, const char *query,
                        size_t query_len, int64_t now, moq_perms *out, moq_auth_error *err);

/* The `jwt` parameter of a form-encoded query, read by moq_query_param (util/url.h: the
 * last non-empty occurrence, decoded by the relay's one percent-decoder). *out gets it
 * (malloc'd) or NULL when there is none or it is empty. Returns 0, MOQ_ERR_INVALID when
 * the query has a bad percent-escape anywhere, or MOQ_ERR_NOMEM. */
int moq_auth_query_jwt(const char *query, size_t len, char **out);

#endif
