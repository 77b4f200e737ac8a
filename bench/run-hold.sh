#!/usr/bin/env bash
# run-hold.sh: what pacing mode hold's schedule costs (issue 6/7): how many
# held messages postern-milter's pacer tracks, at what memory, and how long
# its decisions take (bench/hold_bench.c: pacer_decide in mode hold, then
# pacer_release_next + pacer_release_done, then the idle poll, on a real
# pace store with a fake clock; no Postfix, no postsuper).  Four runs:
#   HELD messages held over ACCOUNTS accounts, and HELD_ONE over 1 account,
#   each with the store on the disk (a directory under /var/tmp) and on
#   /dev/shm (tmpfs: the same work without the disk flush of each commit,
#   the store's synchronous=FULL);
# each prints its table, then one summary line per run (markdown).  Speed
# is reported, never asserted: the exit status is 1 only when a run fails.
# About 4.5 minutes on the 2-core test machine.
#
# usage: bench/run-hold.sh [BUILD_DIR=build/bench]   (configured if needed)
# environment: HELD=100000 ACCOUNTS=1000 HELD_ONE=$HELD RELEASES=10000
#   IDLE=1000 WHERE="disk shm"
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build/bench}
held=${HELD:-100000} accounts=${ACCOUNTS:-1000} held_one=${HELD_ONE:-${HELD:-100000}}
releases=${RELEASES:-10000} idle=${IDLE:-1000}
read -r -a wheres <<<"${WHERE:-disk shm}"
say() { printf '%s\n' "$*" >&2; }

if [[ ! -f $build/Makefile ]]; then
    mkdir -p "$build"
    (cd "$build" && "$top/configure" -q) || { say "cannot configure $build"; exit 1; }
fi
made=$(make -C "$build" -s bench/hold_bench 2>&1) || {
    say "$made"
    say "cannot build bench/hold_bench"
    exit 1
}
bench=$(cd "$build" && pwd)/bench/hold_bench

tmp_disk="" tmp_shm=""
trap 'rm -rf "$tmp_disk" "$tmp_shm"' EXIT
tmp_disk=$(mktemp -d /var/tmp/run-hold.XXXXXX)
tmp_shm=$(mktemp -d /dev/shm/run-hold.XXXXXX)

# "median / p99" (and " / max" with a third argument) of the line of hold_bench's
# output $1 whose call is $2 (the name has blanks: fields count from the end)
stats() {
    awk -v name="$2" -v max="${3:-}" 'index($0, name) == 1 {
        printf "%s / %s", $(NF - 2), $(NF - 1); if (max != "") printf " / %s", $NF }' <<<"$1"
}

summary=()
rc=0
for n_acc in "$accounts" 1; do
    n_held=$held
    [[ $n_acc == 1 ]] && n_held=$held_one
    for where in "${wheres[@]}"; do
        case $where in
        disk) dir=$tmp_disk ;;
        shm) dir=$tmp_shm ;;
        *) say "WHERE: disk or shm, not $where"; exit 1 ;;
        esac
        echo "== $n_held held over $n_acc account(s), store on $where ($dir)"
        start=$(date +%s.%N)
        if ! out=$("$bench" -n "$n_held" -a "$n_acc" -r "$releases" -i "$idle" -d "$dir"); then
            printf '%s\n' "$out"
            say "hold_bench failed ($n_held held, $n_acc accounts, $where)"
            rc=1
            continue
        fi
        end=$(date +%s.%N)
        printf '%s\n(%.0f s)\n\n' "$out" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
        hwm=$(sed -n 's/.*VmHWM \([0-9.]*\) MB.*/\1/p' <<<"$out")
        db=$(sed -n 's/.*pace.sqlite \([0-9.]*\) MB + WAL \([0-9.]*\) MB.*/\1 + \2/p' <<<"$out")
        load=$(sed -n 's/^load average: \([0-9.]*\) .*/\1/p' <<<"$out")
        rel_s=$(sed -n 's/.*released, \([0-9]*\)\/s.*/\1/p' <<<"$out")
        row="| $n_acc | $where | $n_held | $(stats "$out" "decide: held" max)"
        row+=" | $(stats "$out" "release_next: claimed") | $(stats "$out" "release_next + done" max)"
        row+=" | $rel_s | $(stats "$out" "release_next: nothing due") | $hwm | $db | $load |"
        summary+=("$row")
    done
done

head="| accounts | store | held | hold decision us median / p99 / max | release_next us median / p99"
head+=" | release_next + done us median / p99 / max | releases/s | idle poll us median / p99"
echo "$head | VmHWM MB | pace.sqlite + WAL MB | load |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${summary[@]}"
exit $rc
