#!/bin/sh
# rules_bad.sh: every directory of tests/rules-bad/ holds a broken rule set
# and "expected", the exact diagnostics posternctl must print; each must
# exit 1 with exactly that text.  Also: rules/examples must pass.
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
echo "rules_bad: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
