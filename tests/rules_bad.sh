#!/bin/sh
# rules_bad.sh: posternctl against golden files.  Every directory of
# tests/rules-bad/ holds a broken rule set and "expected", the exact
# diagnostics posternctl must print; each must exit 1 with exactly that
# text.  Also: rules/examples pass; a broken postern.yaml gives its exact
# errors; "rules show" prints the golden effective settings; unknown
# tenants and bad usage get exit 1 and 2.
# Run by "make check" with POSTERNCTL and SRCDIR set.
set -u
ctl=${POSTERNCTL:?} src=${SRCDIR:?}
pass=0 fail=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for dir in "$src"/tests/rules-bad/*/; do
    name=$(basename "$dir")
    (cd "$dir" && "$ctl" -r . check >/dev/null 2>"$tmp")
    rc=$?
    if [ "$rc" -eq 1 ] && cmp -s "$tmp" "$dir/expected"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: rules-bad/$name (exit $rc)"
        diff -u "$dir/expected" "$tmp"
    fi
done
if "$ctl" -r "$src/rules/examples" check >"$tmp" 2>/dev/null && grep -q '^ok: 3 tenants' "$tmp"; then
    pass=$((pass + 1))
else
    fail=$((fail + 1))
    echo "FAIL: rules/examples are not accepted"
    cat "$tmp"
fi
fix=$src/tests/fixtures/ctl
expect() { # expect NAME WANT-RC GOLDEN CMD...: CMD's exit code and output
    local name=$1 want=$2 golden=$3 rc
    shift 3
    "$@" >"$tmp" 2>&1
    rc=$?
    if [ "$rc" -eq "$want" ] && { [ -z "$golden" ] || cmp -s "$tmp" "$golden"; }; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $name (exit $rc, wanted $want)"
        [ -n "$golden" ] && diff -u "$golden" "$tmp"
    fi
}
expect "bad postern.yaml" 1 "$fix/bad-postern.expected" sh -c "cd '$fix' && '$ctl' -c bad-postern.yaml check"
expect "rules show acme" 0 "$fix/show-acme.txt" sh -c "cd '$src/rules/examples' && '$ctl' -r . rules show acme"
expect "rules show Globex" 0 "$fix/show-globex.txt" sh -c "cd '$src/rules/examples' && '$ctl' -r . rules show Globex"
expect "rules show nobody" 1 "" "$ctl" -r "$src/rules/examples" rules show nobody
expect "usage" 2 "" "$ctl" -r "$src/rules/examples" rules
expect "unknown command" 2 "" "$ctl" frobnicate
echo "rules_bad: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
