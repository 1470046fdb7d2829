#!/bin/sh
# config-reference.sh MOQ_RELAY DOC
# Replace the reference table of DOC (docs/config.md: the table whose header starts with
# "| key | type |") with the one `MOQ_RELAY --help-markdown` writes from the option table.
set -eu
relay=$1 doc=$2
table=$(mktemp)
trap 'rm -f "$table" "$table.new"' EXIT
"$relay" --help-markdown >"$table"
grep -q '^| key | type |' "$doc" || { echo "$doc has no reference table" >&2; exit 1; }
awk -v table="$table" '
    /^\| key \| type \|/ && !done { while ((getline line < table) > 0) print line; skip = 1; done = 1; next }
    skip && /^\|/ { next }
    { skip = 0; print }' "$doc" >"$table.new"
cat "$table.new" >"$doc"
