#!/usr/bin/env bash
# Interop between our moq-token and the published @moq/token@0.2.3 (npm): keys and tokens
# made by either side must load and verify on the other, in JSON and base64url key forms.
# Needs node, npm and the npm registry (the package is cached under the build directory).
# Prints "N passed, M failed"; exits non-zero on any failure, including a failed install.
set -u

JS_VERSION=0.2.3
BUILD=${MOQ_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
SRC=${MOQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN="$BUILD/moq-token"
CACHE="$BUILD/interop-cache/moq-token-$JS_VERSION"

pass=0
fail=0

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

abort() {
    echo "FAIL: $*" >&2
    fail=$((fail + 1))
    finish
}

# check NAME COMMAND...: run a check, count and report it.
check() {
    local name=$1
    shift
    local out
    if out=$("$@" 2>&1); then
        pass=$((pass + 1))
        echo "ok   $name"
    else
        fail=$((fail + 1))
        echo "FAIL $name"
        printf '%s\n' "$out" | sed 's/^/     /' | head -20
    fi
}

[ -x "$BIN" ] || abort "moq-token binary not found at $BIN (build first)"
command -v node >/dev/null || abort "node is not installed (scripts/deps.sh installs nodejs)"
command -v npm >/dev/null || abort "npm is not installed (scripts/deps.sh installs npm)"

install_js() {
    local pkg="$CACHE/node_modules/@moq/token/package.json"
    if [ -f "$pkg" ] && grep -q "\"version\": \"$JS_VERSION\"" "$pkg"; then return 0; fi
    rm -rf "$CACHE"
    mkdir -p "$CACHE" || return 1
    echo '{"name":"moq-token-interop","private":true}' >"$CACHE/package.json"
    (cd "$CACHE" && timeout 300 npm install --no-audit --no-fund --loglevel=error \
        "@moq/token@$JS_VERSION") || return 1
    grep -q "\"version\": \"$JS_VERSION\"" "$pkg"
}
install_js || abort "could not install @moq/token@$JS_VERSION from the npm registry" \
    "(network or registry unavailable); this test needs it and does not skip"
cp "$SRC/tests/interop/token/interop.mjs" "$CACHE/interop.mjs"
JS_CLI="$CACHE/node_modules/@moq/token/cli.js"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || abort "cannot enter $WORK"

js() { node "$CACHE/interop.mjs" "$@"; }

# Our verify succeeds and its JSON names the expected root.
ours_verifies() { # KEY TOKEN ROOT
    local claims
    claims=$(printf '%s\n' "$2" | "$BIN" verify --key "$1") || return 1
    printf '%s\n' "$claims" | grep -q "\"root\": \"$3\"" || {
        echo "unexpected claims: $claims"
        return 1
    }
}
ours_rejects() { # KEY TOKEN
    if printf '%s\n' "$2" | "$BIN" verify --key "$1" >/dev/null 2>err.txt; then
        echo "accepted a token it should refuse"
        return 1
    fi
    [ -s err.txt ] || { echo "no reason on stderr"; return 1; }
}
js_verifies() { # KEY TOKEN ROOT
    local claims
    claims=$(js verify "$1" "$2" "$3") || return 1
    printf '%s\n' "$claims" | grep -q "\"root\":\"$3\"" || {
        echo "unexpected claims: $claims"
        return 1
    }
}
js_rejects() { # KEY TOKEN ROOT
    if js verify "$1" "$2" "$3" >/dev/null 2>&1; then
        echo "@moq/token accepted a token it should refuse"
        return 1
    fi
}

ALGS="HS256 HS384 HS512 ES256 ES384 RS256 RS512 PS256 EdDSA"
for alg in $ALGS; do
    asym=1
    case $alg in HS*) asym=0 ;; esac

    # Keys and tokens from @moq/token, verified by us.
    if [ $asym = 1 ]; then
        check "$alg: @moq/token generates a key pair" js gen "$alg" "js-$alg" "js-$alg.jwk" "js-$alg.pub.jwk"
        jspub="js-$alg.pub.jwk"
    else
        check "$alg: @moq/token generates a key" js gen "$alg" "js-$alg" "js-$alg.jwk" -
        jspub="js-$alg.jwk"
    fi
    token=$(js sign "js-$alg.jwk" demo alice "" 2>/dev/null)
    check "$alg: @moq/token token verifies with our moq-token (private key file)" \
        ours_verifies "js-$alg.jwk" "$token" demo
    [ $asym = 1 ] && check "$alg: @moq/token token verifies with our moq-token (public key file)" \
        ours_verifies "$jspub" "$token" demo
    tampered=$(printf '%s' "$token" | sed 's/\.\(.\)/.X\1/')
    check "$alg: a tampered @moq/token token is refused by us" ours_rejects "$jspub" "$tampered"

    # Keys and tokens from us, used by @moq/token.
    if [ $asym = 1 ]; then
        check "$alg: our generate writes a key pair" "$BIN" generate --algorithm "$alg" \
            --id "c-$alg" --out "c-$alg.jwk" --public "c-$alg.pub.jwk"
        cpub="c-$alg.pub.jwk"
    else
        check "$alg: our generate writes a key" "$BIN" generate --algorithm "$alg" \
            --id "c-$alg" --out "c-$alg.jwk"
        cpub="c-$alg.jwk"
    fi
    ctoken=$("$BIN" sign --key "c-$alg.jwk" --root demo --publish bob --subscribe "" 2>/dev/null)
    check "$alg: our token verifies with @moq/token (our key files)" js_verifies "$cpub" "$ctoken" demo
    jtoken=$(js sign "c-$alg.jwk" room "" - 2>/dev/null)
    check "$alg: @moq/token signs with our private key, we verify" \
        ours_verifies "$cpub" "$jtoken" room
    xtoken=$("$BIN" sign --key "js-$alg.jwk" --root mix --subscribe x 2>/dev/null)
    check "$alg: we sign with a @moq/token key, @moq/token verifies" js_verifies "$jspub" "$xtoken" mix
    check "$alg: a token from another key is refused by us" ours_rejects "$cpub" "$token"
done

# base64url key files in both directions, and JSON from us.
js gen ES256 js-b64 js-b64.jwk js-b64.pub.jwk base64 >/dev/null 2>&1
token=$(js sign js-b64.jwk b64 "" - 2>/dev/null)
check "base64url keys from @moq/token load in our moq-token" ours_verifies js-b64.pub.jwk "$token" b64
check "our base64url key files are not JSON on disk" bash -c "! grep -q '{' c-ES256.jwk"
check "@moq/token re-exports our base64url key as JSON" js reexport c-EdDSA.jwk reexported.jwk
token=$("$BIN" sign --key reexported.jwk --root again --publish "" 2>/dev/null)
check "the re-exported key still signs for our original public key" \
    js_verifies c-EdDSA.pub.jwk "$token" again
check "our --json key files load in @moq/token" "$BIN" generate --algorithm HS256 --json \
    --out c-json.jwk
token=$("$BIN" sign --key c-json.jwk --root j --subscribe "" 2>/dev/null)
check "a token signed with our JSON key verifies in @moq/token" js_verifies c-json.jwk "$token" j

# The @moq/token command line against ours.
check "@moq/token CLI generates an ES256 pair" node "$JS_CLI" generate --key cli.jwk \
    --algorithm ES256 --public cli.pub.jwk
token=$(node "$JS_CLI" sign --key cli.jwk --root rooms/1 --publish alice --subscribe "" 2>/dev/null)
check "@moq/token CLI token verifies with our moq-token" ours_verifies cli.pub.jwk "$token" rooms/1
token=$(printf '%s\n' "$token" | "$BIN" verify --key cli.pub.jwk --root rooms 2>/dev/null)
check "our verify --root accepts a parent path of the token root" test -n "$token"
ctoken=$("$BIN" sign --key c-ES256.jwk --root rooms/2 --publish bob 2>/dev/null)
check "our token verifies with the @moq/token CLI" bash -c \
    "printf '%s\n' '$ctoken' | node '$JS_CLI' verify --key c-ES256.pub.jwk --root rooms/2"

# Legacy cluster claim and expiry.
ctoken=$("$BIN" sign --key c-HS256.jwk --root "" --subscribe "" --publish "" --cluster 2>/dev/null)
check "a --cluster token verifies in @moq/token" js_verifies c-HS256.jwk "$ctoken" ""
check "the cluster claim is in our token" bash -c \
    "printf '%s\n' '$ctoken' | '$BIN' verify --key c-HS256.jwk | grep -q '\"cluster\": true'"
past=$(($(date +%s) - 60))
etoken=$("$BIN" sign --key c-HS256.jwk --root old --publish "" --expires "$past" --allow-expired 2>/dev/null)
check "an expired token of ours is refused by @moq/token" js_rejects c-HS256.jwk "$etoken" old
check "an expired token of ours is refused by us" ours_rejects c-HS256.jwk "$etoken"
jtoken=$(js sign js-HS256.jwk old "" - "$past" 2>/dev/null)
check "an expired @moq/token token is refused by us" ours_rejects js-HS256.jwk "$jtoken"
future=$(($(date +%s) + 3600))
jtoken=$(js sign js-HS256.jwk fresh "" - "$future" 2>/dev/null)
check "an unexpired @moq/token token with exp verifies with us" \
    ours_verifies js-HS256.jwk "$jtoken" fresh

finish
