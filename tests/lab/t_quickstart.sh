#!/usr/bin/env bash
# t_quickstart.sh: contrib/quickstart.sh, the first command of the README,
# works end to end (rules checked, sandbox up, a message through it, signed
# by postern-milter and verified by dkimverify) and leaves nothing behind.
# Uses the build of tests/run (POSTERN_BUILD).
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
check() { # check DESCRIPTION FAILURE CMD...: PASS, or FAIL and the output
    local what=$1 why=$2
    shift 2
    if "$@"; then
        echo "PASS: $what"
    else
        echo "FAIL: $why"
        cat "$out"
    fi
}
check "quickstart checks the example rules" "example rules not checked" \
    grep -q '^ok: 3 tenants' "$out"
check "quickstart delivers a message through the sandbox" "no delivery" \
    grep -q '^delivered to the sink: ' "$out"
check "quickstart's message is DKIM-signed by postern-milter with d=globex.example" \
    "no DKIM-Signature of d=globex.example on the message" \
    grep -qE '^  DKIM-Signature: (.*[; ])?d=globex\.example(;|$)' "$out"
check "dkimverify says signature ok on quickstart's message" "dkimverify did not say signature ok" \
    grep -qx '  dkimverify: signature ok' "$out"
after=$(ip netns list | grep -c '^postern-lab-' || true)
dir=$(sed -n 's/^namespace .*, files in //p' "$out")
if grep -q '^quickstart: sandbox removed' "$out" && [ "$after" -le "$before" ] && [ -n "$dir" ] && [ ! -e "$dir" ]; then
    echo "PASS: quickstart removes its sandbox"
else
    echo "FAIL: sandbox left behind (namespaces $before -> $after, dir $dir)"
fi
