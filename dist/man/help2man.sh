#!/bin/sh
# help2man.sh NAME SUMMARY BINARY > NAME.1
# A manual page made of `BINARY --help` and `BINARY COMMAND --help` for every command that
# --help lists under "Commands:", so the page says what the tool says (moq and moq-token;
# moq-relay writes its own page with --help-man).
set -eu
name=$1 summary=$2 bin=$3

# roff-safe text: backslashes and hyphens escaped, no line starting with a control character
esc() {
    sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

commands=$("$bin" --help | awk '
    /^Commands:/ { on = 1; next }
    on && /^[^ ]/ { on = 0 }
    on && NF && $1 != "help" && !seen[$1]++ { print $1 }')

printf '.\\" %s(1), written by dist/man/help2man.sh from %s --help.\n' "$name" "$name"
printf '.TH %s 1 "" "%s" "User Commands"\n' "$(echo "$name" | tr a-z A-Z | esc)" \
    "$("$bin" --version | head -n 1 | esc)"
printf '.SH NAME\n%s \\- %s\n' "$(echo "$name" | esc)" "$(echo "$summary" | esc)"
printf '.SH DESCRIPTION\n.nf\n'
"$bin" --help | esc
printf '.fi\n'
for cmd in $commands; do
    printf '.SH "%s %s"\n.nf\n' "$(echo "$name" | tr a-z A-Z | esc)" "$(echo "$cmd" | tr a-z A-Z)"
    "$bin" "$cmd" --help | esc
    printf '.fi\n'
done
printf '.SH SEE ALSO\n.BR moq\\-relay (1)\n'
