#!/usr/bin/env bash
# Token auth through the WebSocket path with @moq/net 0.3.4 in Node.js. The relay verifies
# tokens with a key made by our moq-token (--auth-key) and lets anyone in under the public
# prefix "anon". Per moq-lite version:
# - anonymous clients publish and subscribe under /anon;
# - without a token, /demo and /demo/alice are refused at the upgrade (HTTP 401), which the
#   client reports as a failed connect();
# - a client with ?jwt= (root demo, publish+subscribe alice) publishes under demo/alice; a
#   session publishing under demo/bob is closed with Unauthorized (6) and the reason "not
#   allowed to publish bob/cam", and so is a session of a subscribe-only token that
#   publishes; neither broadcast is ever announced; subscribing to demo/bob, or asking for
#   announcements there, is refused with code 6 while the session lives on;
# - an observer token (root demo, subscribe everything) sees and receives demo/alice/cam.
# The relay logs every refusal at info with the path and the grant.
# Tokens with a bad signature or past their expiry are refused too.
# Prints "N passed, M failed"; exits non-zero on any failure.
source "$(dirname "$0")/node/lib.sh"

install_client
[ -x "$TOKEN_BIN" ] || abort "moq-token binary not found at $TOKEN_BIN (build first)"

key="$WORK/key.jwk"
other="$WORK/other.jwk"
# Two keys with the same id: a token from the other one fails on its signature alone.
"$TOKEN_BIN" generate --id interop --out "$key" >/dev/null 2>&1 || abort "moq-token generate failed"
"$TOKEN_BIN" generate --id interop --out "$other" >/dev/null 2>&1 || abort "moq-token generate failed"
sign() { "$TOKEN_BIN" sign "$@" || abort "moq-token sign $* failed"; }
PUB=$(sign --key "$key" --root demo --publish alice --subscribe alice)
OBS=$(sign --key "$key" --root demo --subscribe "")
FORGED=$(sign --key "$other" --root demo --publish alice --subscribe alice)
EXPIRED=$(sign --key "$key" --root demo --publish alice --subscribe alice --expires 1700000000 --allow-expired)

start_relay auth --web-http-listen 127.0.0.1:0 --auth-key "$key" --auth-public anon
[ -n "$HTTP_PORT" ] || abort "no HTTP port in the relay log"
BASE="http://localhost:$HTTP_PORT"

for v in moq-lite-05 moq-lite-04 moq-lite-03; do
    scenario "$v: public prefix, token scopes and refusals" auth \
        "{\"base\":\"$BASE\",\"version\":\"$v\",\"root\":\"demo\",\"allowed\":\"alice\",\"denied\":\"bob\",\"publicPrefix\":\"anon\",\"pubToken\":\"$PUB\",\"obsToken\":\"$OBS\"}"
done
scenario "a token signed by another key is refused" refused "{\"url\":\"$BASE/demo?jwt=$FORGED\"}"
scenario "an expired token is refused" refused "{\"url\":\"$BASE/demo?jwt=$EXPIRED\"}"

expect_log "anonymous sessions got the public prefix" "session accepted \\(moq-lite-0[345]\\) root=/anon "
expect_log "token sessions got the token's scope" "session accepted \\(moq-lite-0[345]\\) root=/demo publish=\\[\"alice\"\\] subscribe=\\[\"alice\"\\]"
expect_log "a publish outside the grant was refused with the path and grant" \
    'refused: the peer may not publish /demo/bob/cam \(root /demo, publish=\["alice"\]\)'
expect_log "a publish with a subscribe-only token was refused" \
    'refused: the peer may not publish /demo/alice/viewer \(root /demo, publish=\[\]\)'
expect_log "a subscription outside the grant was refused with the path and grant" \
    'refused: the peer may not (subscribe to|read track info of) /demo/bob/cam track t \(root /demo, subscribe=\["alice"\]\)'
expect_log "announcements outside the grant were refused" \
    'refused: the peer may not see announcements under /demo/bob \(root /demo, subscribe=\["alice"\]\)'
expect_no_log "no refused broadcast became a route" "announced /demo/(bob|alice/viewer)"
expect_log "upgrades without a token were refused" "WebSocket refused: a token is required at this path"
expect_log "the forged token was refused for its signature" "WebSocket refused: invalid token signature"
expect_log "the expired token was refused as expired" "WebSocket refused: token expired"
expect_no_log "no session used another transport" "session over (QUIC|WebTransport)"
finish_relay "auth relay"

finish
