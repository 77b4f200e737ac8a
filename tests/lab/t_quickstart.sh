#!/usr/bin/env bash
# t_quickstart.sh: contrib/quickstart.sh, the first command of the README,
# works end to end (rules checked, sandbox up, a message through it) and
# leaves nothing behind.  Uses the build of tests/run (POSTERN_BUILD).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${POSTERN_BUILD:-$top/build/werror}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
before=$(ip netns list | grep -c '^postern-lab-' || true)
if "$top/contrib/quickstart.sh" --once --no-install --build "$build" </dev/null >"$out" 2>&1; then
    echo "PASS: quickstart.sh exits 0"
else
    echo "FAIL: quickstart.sh failed"; cat "$out"; exit 1
fi
grep -q '^ok: 3 tenants' "$out" && echo "PASS: quickstart checks the example rules" ||
    { echo "FAIL: example rules not checked"; cat "$out"; }
grep -q '^delivered to the sink: ' "$out" && echo "PASS: quickstart delivers a message through the sandbox" ||
    { echo "FAIL: no delivery"; cat "$out"; }
after=$(ip netns list | grep -c '^postern-lab-' || true)
dir=$(sed -n 's/^namespace .*, files in //p' "$out")
if grep -q '^quickstart: sandbox removed' "$out" && [ "$after" -le "$before" ] && [ -n "$dir" ] && [ ! -e "$dir" ]; then
    echo "PASS: quickstart removes its sandbox"
else
    echo "FAIL: sandbox left behind (namespaces $before -> $after, dir $dir)"
fi
