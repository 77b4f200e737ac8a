#!/bin/sh
# run.sh: builds one libFuzzer target of tests/fuzz (clang,
# -fsanitize=fuzzer,address,undefined, no autotools) and runs it for a
# bounded time on a copy of its seed corpus, so that the source tree is
# never written.
#   tests/fuzz/run.sh [BUILD_DIR [TARGET]]
# TARGET (or $FUZZ_TARGET; the argument wins), default request:
#   request  tests/fuzz/fuzz_request.c: the policy request parser
#            (policyd/request.c), corpus tests/fuzz/corpus/request
#   mailhdr  tests/fuzz/fuzz_mailhdr.c: the From: and authserv-id parsers
#            and the Authentication-Results builder (lib/mailhdr.c,
#            milter/authres.c), corpus tests/fuzz/corpus/mailhdr
#   scan     tests/fuzz/fuzz_scan.c: clamd's and spamd's answers and the
#            scan decision (milter/scanner_parse.c, milter/scan.c), corpus
#            tests/fuzz/corpus/scan
# Both with lib/buf.c and lib/alloc.c, and tests/fuzz/TARGET.dict when it
# exists.  BUILD_DIR defaults to build/fuzz (relative to the current
# directory); targets may share it: the binary, corpus copy, log and
# artifacts of each are named after it (fuzz_TARGET, corpus-TARGET,
# fuzz_TARGET.log, fuzz_TARGET-crash-*).
# Last line: "fuzz_TARGET: N runs, 0 crashes" (exit 0), or the path of the
# input that crashed (exit 1).  Exit 2: the target could not be built (or
# is unknown).  Needs clang and its fuzzer runtime (Debian 12: clang
# libclang-rt-14-dev).  FUZZ_SECONDS (default 30) is the time to run;
# FUZZ_MAX_LEN (default 4096) bounds the input size; FUZZ_ARGS adds
# libFuzzer options; CC overrides the compiler.
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-build/fuzz}
target=${2:-${FUZZ_TARGET:-request}}
seconds=${FUZZ_SECONDS:-30}
max_len=${FUZZ_MAX_LEN:-4096}
cc=${CC:-clang}

case "$target" in
request)
    incs="-I$src/lib -I$src/policyd"
    srcs="$src/policyd/request.c" ;;
mailhdr)
    incs="-I$src/lib -I$src/milter"
    srcs="$src/lib/mailhdr.c $src/milter/authres.c" ;;
scan)
    incs="-I$src/lib -I$src/milter -I$src/rules"
    srcs="$src/milter/scanner_parse.c $src/milter/scan.c" ;;
*)
    echo "run.sh: unknown target $target (request, mailhdr, scan)" >&2
    exit 2 ;;
esac
name=fuzz_$target

mkdir -p "$out"
out=$(cd "$out" && pwd)
case "$out/" in
"$src"/tests/*) echo "run.sh: build directory $out is inside tests/" >&2; exit 2 ;;
esac

# shellcheck disable=SC2086 # incs, srcs: several words, split on purpose
if ! "$cc" -g -O1 -std=gnu11 -D_GNU_SOURCE \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
    -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Werror \
    $incs "$src/tests/fuzz/$name.c" $srcs "$src/lib/buf.c" "$src/lib/alloc.c" \
    -o "$out/$name"; then
    echo "run.sh: cannot build $name with $cc -fsanitize=fuzzer (Debian 12: apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi

# a fresh copy of the seeds; what the fuzzer adds stays in $out
corpus=$out/corpus-$target
log=$out/$name.log
rm -rf "$corpus" "$out/$name"-crash-* "$out/$name"-leak-* "$out/$name"-timeout-* "$out/$name"-oom-* \
    "$out/$name"-slow-unit-*
cp -R "$src/tests/fuzz/corpus/$target" "$corpus"
dict=
[ -f "$src/tests/fuzz/$target.dict" ] && dict=-dict=$src/tests/fuzz/$target.dict

status=0
# shellcheck disable=SC2086 # dict may be empty; FUZZ_ARGS: several options, split on purpose
(cd "$out" && "./$name" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
    $dict -artifact_prefix="$out/$name-" \
    -print_final_stats=1 ${FUZZ_ARGS:-} "$corpus") >"$log" 2>&1 || status=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
crash=$(find "$out" -maxdepth 1 \( -name "$name-crash-*" -o -name "$name-leak-*" -o -name "$name-timeout-*" \
    -o -name "$name-oom-*" \) | head -n 1)
if [ "$status" -ne 0 ] || [ -n "$crash" ]; then
    tail -n 40 "$log" >&2
    echo "${crash:-$name failed (status $status), no input saved: see $log}"
    exit 1
fi
echo "$name: ${runs:-0} runs, 0 crashes"
