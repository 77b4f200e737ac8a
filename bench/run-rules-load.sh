#!/usr/bin/env bash
# run-rules-load.sh: generates 10,000 tenants x 10 accounts and measures
# the rule load (time, peak memory) with rules_load_bench and with
# "posternctl check", which an operator runs.  Targets: < 2 s, < 200 MB.
# usage: bench/run-rules-load.sh [BUILD_DIR=build/werror] [TENANTS=10000]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build/werror} n=${2:-10000}
make -C "$build" -s bench/rules_load_bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$top/bench/gen-tenants.sh" "$tmp/rules.d" "$n" 10
echo "generated $n tenant files ($(du -sh "$tmp/rules.d" | cut -f1))"
for _ in 1 2 3; do "$build/bench/rules_load_bench" "$tmp/rules.d" 1000000; done
/usr/bin/time -f "posternctl check: %e s elapsed, %M KB peak RSS" \
    "$build/ctl/posternctl" -r "$tmp/rules.d" check 2>&1 >/dev/null | grep -v warning | tail -1
