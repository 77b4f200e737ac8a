#!/bin/sh
# run.sh: builds the libFuzzer target of the policy request parser
# (tests/fuzz/fuzz_request.c with policyd/request.c, lib/buf.c, lib/alloc.c;
# clang, -fsanitize=fuzzer,address,undefined, no autotools) into the build
# directory $1 (default build/fuzz, relative to the current directory) and
# runs it for FUZZ_SECONDS (default 30) on a copy of the seed corpus
# tests/fuzz/corpus/request, so that the source tree is never written.
# Last line: "fuzz_request: N runs, 0 crashes" (exit 0), or the path of the
# input that crashed (exit 1).  Exit 2: the target could not be built.
# Needs clang and its fuzzer runtime (Debian 12: clang libclang-rt-14-dev).
# FUZZ_MAX_LEN (default 4096) bounds the input size; FUZZ_ARGS adds
# libFuzzer options; CC overrides the compiler.
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-build/fuzz}
seconds=${FUZZ_SECONDS:-30}
max_len=${FUZZ_MAX_LEN:-4096}
cc=${CC:-clang}

mkdir -p "$out"
out=$(cd "$out" && pwd)
case "$out/" in
"$src"/tests/*) echo "run.sh: build directory $out is inside tests/" >&2; exit 2 ;;
esac

if ! "$cc" -g -O1 -std=gnu11 -D_GNU_SOURCE \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
    -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Werror \
    -I"$src/lib" -I"$src/policyd" \
    "$src/tests/fuzz/fuzz_request.c" "$src/policyd/request.c" "$src/lib/buf.c" "$src/lib/alloc.c" \
    -o "$out/fuzz_request"; then
    echo "run.sh: cannot build with $cc -fsanitize=fuzzer (Debian 12: apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi

# a fresh copy of the seeds; what the fuzzer adds stays in $out
rm -rf "$out/corpus" "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*
cp -R "$src/tests/fuzz/corpus/request" "$out/corpus"

status=0
# shellcheck disable=SC2086 # FUZZ_ARGS: several options, split on purpose
(cd "$out" && ./fuzz_request -max_total_time="$seconds" -max_len="$max_len" \
    -dict="$src/tests/fuzz/request.dict" -artifact_prefix="$out/" \
    -print_final_stats=1 ${FUZZ_ARGS:-} corpus) >"$out/fuzz.log" 2>&1 || status=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" | tail -n 1)
crash=$(find "$out" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | head -n 1)
if [ "$status" -ne 0 ] || [ -n "$crash" ]; then
    tail -n 40 "$out/fuzz.log" >&2
    echo "${crash:-fuzz_request failed (status $status), no input saved: see $out/fuzz.log}"
    exit 1
fi
echo "fuzz_request: ${runs:-0} runs, 0 crashes"
