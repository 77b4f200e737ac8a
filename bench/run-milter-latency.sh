#!/usr/bin/env bash
# run-milter-latency.sh: what postern-milter adds to each message of one
# SMTP session, over a unix socket and over TCP, with and without its TCP
# fix (milter/tcp_tune.c; POSTERN_NO_TCP_TUNE=1 turns it off), in the test
# lab (tests/lab/lab.sh: a private Postfix in a network namespace of its
# own; nothing leaves the machine).  smtp-source sends one session of
# MESSAGES messages of SIZE bytes to Postfix, whose milter signs each one
# (RSA-2048 and Ed25519, the dual signing of a tenant); the figure is
# smtp-source's wall time per message, the best of RUNS runs, for
#   bare           Postfix without a milter
#   unix           postern-milter over unix:private/postern-milter
#   inet           postern-milter over inet:127.0.0.1
#   inet-no-tune   the same with POSTERN_NO_TCP_TUNE=1 (libmilter's sockets
#                  as every stock milter has them: the two 40 ms stalls)
# Delivery is deferred during the runs (defer_transports = smtp) so that
# the queue manager does not compete for the cores; the queue is emptied
# between runs.  Prints a table in the format of bench/README.md.
#
# usage: bench/run-milter-latency.sh [BUILD_DIR=build/werror]
# environment: MESSAGES=200 SIZE=4096 RUNS=3
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build/werror}" && pwd)
messages=${MESSAGES:-200} size=${SIZE:-4096} runs=${RUNS:-3}
milter=$build/milter/postern-milter
say() { printf '%s\n' "$*" >&2; }
calc() { awk "BEGIN { print $1 }"; }   # calc 'EXPR': floating-point arithmetic

make -C "$build" -s milter/postern-milter >/dev/null || { say "cannot build postern-milter"; exit 1; }

# shellcheck source=../tests/lab/lab.sh
. "$top/tests/lab/lab.sh"
lab_up >/dev/null

b=$LAB_DIR/bench
mkdir -p "$b/rules" "$b/keys"
chmod 755 "$b" "$b/rules" "$b/keys"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$b/keys/rsa.pem" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$b/keys/ed.pem" 2>/dev/null
chown nobody:nogroup "$b/keys/"*.pem
chmod 600 "$b/keys/"*.pem
# smtp-source connects from 127.0.0.1 without SASL: a tenant host
cat >"$b/rules/bench.yaml" <<EOF
tenant: bench
domains: [bench.example]
clients: [127.0.0.0/8]
dkim:
  - {domain: bench.example, selector: r1, key: $b/keys/rsa.pem}
  - {domain: bench.example, selector: e1, key: $b/keys/ed.pem}
EOF
msock=$LAB_PF_QUEUE/private/postern-milter
mport=10050

mpid=""
start_milter() { # start_milter LISTEN [ENV...]
    local listen=$1 i
    shift
    cat >"$b/postern.yaml" <<EOF
rules: $b/rules
state_dir: $b/state
timezone: UTC
user: nobody
milter:
  listen: $listen
  pid_file: $b/milter.pid
EOF
    : >"$b/milter.log"
    env "$@" ip netns exec "$LAB_NS" "$milter" -f -c "$b/postern.yaml" >>"$b/milter.log" 2>&1 &
    mpid=$!
    for ((i = 0; i < 600; i++)); do
        grep -q 'event=start' "$b/milter.log" && return 0
        kill -0 "$mpid" 2>/dev/null || break
        sleep 0.1
    done
    say "postern-milter did not start:"; tail -5 "$b/milter.log" >&2
    exit 1
}
stop_milter() {
    [[ -n $mpid ]] || return 0
    kill "$mpid" 2>/dev/null || true
    wait "$mpid" 2>/dev/null || true
    mpid=""
}
use_milter() { # use_milter SPEC ("" for none)
    lab_postconf "smtpd_milters = $1" 'milter_default_action = tempfail' 'milter_protocol = 6' \
        'defer_transports = smtp' >/dev/null
    lab_postfix_reload >/dev/null
}
empty_queue() { ip netns exec "$LAB_NS" postsuper -c "$LAB_PF_CONF" -d ALL >/dev/null 2>&1 || true; }

one_run() { # smtp-source's wall time in seconds for one session
    local t0 t1
    empty_queue
    t0=$(date +%s.%N)
    ip netns exec "$LAB_NS" smtp-source -s 1 -m "$messages" -l "$size" -f sender@bench.example \
        -t rcpt@remote.example 127.0.0.1:25 >/dev/null
    t1=$(date +%s.%N)
    calc "$t1 - $t0"
}
best_of() {
    local best="" t r
    for ((r = 0; r < runs; r++)); do
        t=$(one_run)
        if [[ -z $best ]] || (($(calc "($t < $best)"))); then best=$t; fi
    done
    echo "$best"
}
signed() { # the messages of the last run carry both signatures
    local f
    f=$(find "$LAB_PF_QUEUE/deferred" "$LAB_PF_QUEUE/active" "$LAB_PF_QUEUE/incoming" -type f 2>/dev/null | head -1)
    [[ -n $f ]] || { echo "no message"; return; }
    local n
    n=$(ip netns exec "$LAB_NS" postcat -c "$LAB_PF_CONF" -hq "$(basename "$f")" 2>/dev/null |
        grep -c '^DKIM-Signature:.*d=bench.example' || true)
    [[ $n == 2 ]] && echo "2 signatures" || echo "$n signatures"
}

results=$b/results
: >"$results"
record() { # record LABEL SECONDS NOTE
    printf '%s %s %s\n' "$1" "$2" "$3" >>"$results"
    say "$1: $(calc "$2 * 1000 / $messages") ms/message ($3)"
}

say "1 session x $messages messages of $size bytes, best of $runs"
use_milter ""
record bare "$(best_of)" unsigned
start_milter "unix:$msock"
use_milter "unix:$msock"
record unix "$(best_of)" "$(signed)"
stop_milter
start_milter "inet:127.0.0.1:$mport"
use_milter "inet:127.0.0.1:$mport"
record inet "$(best_of)" "$(signed)"
stop_milter
start_milter "inet:127.0.0.1:$mport" POSTERN_NO_TCP_TUNE=1
grep -q 'tcp_tune=off' "$b/milter.log" || { say "POSTERN_NO_TCP_TUNE=1 was not honoured"; exit 1; }
use_milter "inet:127.0.0.1:$mport"
record inet-no-tune "$(best_of)" "$(signed)"
stop_milter
empty_queue

printf '\nmilter latency: 1 session x %s messages of %s bytes, best of %s, %s on %s cores\n' \
    "$messages" "$size" "$runs" "$(date +%F)" "$(nproc)"
printf '| run | s | ms/message | added by the milter (ms/message) | signed |\n|---|---|---|---|---|\n'
bare=$(awk '$1 == "bare" {print $2}' "$results")
while read -r label secs note; do
    printf '| %s | %.2f | %.2f | %.2f | %s |\n' "$label" "$secs" "$(calc "$secs * 1000 / $messages")" \
        "$(calc "($secs - $bare) * 1000 / $messages")" "$note"
done <"$results"
