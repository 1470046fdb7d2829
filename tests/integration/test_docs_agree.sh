#!/usr/bin/env bash
# `moq-relay --help`, the manual page moq-relay(1) and docs/config.md say the same thing:
# the reference table of docs/config.md is exactly what the option table gives (make docs),
# the built manual page is what `moq-relay --help-man` writes, every option of the rendered
# page is a line of --help (and the other way round) whose words are in docs/config.md, and
# the pages of moq and moq-token carry the --help of each of their commands.
source "$(dirname "$0")/lib.sh"
MAN_DIR="$MOQ_BUILD_DIR/man/man1"
DOC="$MOQ_SOURCE_DIR/docs/config.md"

note "docs/config.md's reference is the option table's"
cp "$DOC" "$TMP/config.md"
"$MOQ_SOURCE_DIR/scripts/config-reference.sh" "$MOQ_RELAY_BIN" "$TMP/config.md"
diff -u "$DOC" "$TMP/config.md" >"$TMP/reference.diff" ||
    fail "docs/config.md is stale (run make docs): $(head -20 "$TMP/reference.diff")"

note "the built manual pages are current and render without warnings"
"$MOQ_RELAY_BIN" --help-man >"$TMP/moq-relay.1"
cmp -s "$TMP/moq-relay.1" "$MAN_DIR/moq-relay.1" || fail "$MAN_DIR/moq-relay.1 is stale"
for page in moq-relay moq moq-token; do
    groff -man -ww -z "$MAN_DIR/$page.1" 2>"$TMP/groff.log" || fail "groff failed on $page.1"
    [[ ! -s "$TMP/groff.log" ]] || fail "groff warns about $page.1: $(cat "$TMP/groff.log")"
done

note "every option of the manual page is a line of --help, and the other way round"
"$MOQ_RELAY_BIN" --help >"$TMP/help.txt"
# the rendered page, one line per paragraph: options at 7 columns, their text at 14
LC_ALL=C MANWIDTH=4000 man -l "$MAN_DIR/moq-relay.1" >"$TMP/man.txt" 2>/dev/null
awk '/^OPTIONS/ { on = 1; next } /^[A-Z]/ { on = 0 }
    on && /^       -/ { sub(/^ +/, ""); flag = $0; next }
    on && flag != "" && /^              / { sub(/^ +/, ""); print flag "\t" $0; flag = "" }' \
    "$TMP/man.txt" >"$TMP/man-options.tsv"
declare -A in_help doc_row
while IFS= read -r line; do [[ -z "$line" ]] || in_help["$line"]=1; done <"$TMP/help.txt"
while IFS= read -r row; do # every docs/config.md table row, by each flag it names
    rest="$row"
    while [[ "$rest" =~ \`(--[a-z0-9-]+)\`(.*) ]]; do
        doc_row["${BASH_REMATCH[1]}"]+="$row"
        rest="${BASH_REMATCH[2]}"
    done
done < <(grep '^|' "$DOC")
entries=0
while IFS=$'\t' read -r left text; do
    entries=$((entries + 1))
    line="$(printf '  %-42s %s' "$left" "$text")"
    [[ -n "${in_help[$line]:-}" ]] || fail "--help lacks the manual's line: $line"
    words="${text%% \[accepted, no effect\]*}"
    words="${words%% \[default: *}"
    words="${words%% \[env: *}"
    words="${words%% \[alias: *}"
    [[ "$left" =~ (--[a-z0-9-]+) ]] || fail "no flag in the manual's '$left'"
    flag="${BASH_REMATCH[1]}"
    [[ "${doc_row[$flag]:-}" == *"$words"* ]] ||
        fail "docs/config.md does not describe $flag as: $words"
done <"$TMP/man-options.tsv"
options="$(grep -cE '^  -' "$TMP/help.txt")"
((entries == options && entries > 50)) ||
    fail "the manual page has $entries options, --help $options"

note "moq(1) and moq-token(1) carry each command's --help"
for tool in moq moq-token; do
    LC_ALL=C MANWIDTH=4000 man -l "$MAN_DIR/$tool.1" >"$TMP/$tool.txt" 2>/dev/null
    commands="$("$MOQ_BUILD_DIR/$tool" --help |
        awk '/^Commands:/ { on = 1; next } on && /^[^ ]/ { on = 0 } on && NF && $1 != "help" { print $1 }' |
        sort -u)"
    [[ -n "$commands" ]] || fail "$tool --help lists no commands"
    for cmd in $commands; do
        usage="$("$MOQ_BUILD_DIR/$tool" "$cmd" --help | grep -m1 '^Usage:')"
        grep -qF -- "$usage" "$TMP/$tool.txt" || fail "$tool.1 lacks '$usage'"
    done
done
echo "PASS"
