#!/usr/bin/env bash
# run-policy.sh: postern-policyd against postfwd2 under the same policy
# load (bench/policy_load): 10,000 generated tenants (gen-tenants.sh),
# 1, 8 and 32 lockstep connections, postern over inet and unix sockets,
# postfwd2 over inet with the equivalent rules of bench/postfwd/postfwd.cf
# (and its minimal rule set at 8 connections, for reference).  Then an
# equivalence check: a load that runs 2 tenants into their quotas, sent to
# a fresh instance of each; both must give the same replies, kind by kind.
# Prints a table, the ratios postern/postfwd2 at 8 connections,
# postern-policyd's peak RSS with the tenants loaded, and the targets (exit
# status 1 when one is missed).  Everything lives in a temporary directory
# and every process it started is stopped on exit.
#
# usage: bench/run-policy.sh [BUILD_DIR=build/werror]
# environment: TENANTS=10000  DURATION=5 (seconds a run)  RUNS=3 (best
#   of, by requests/s)  SEED=1  CONNS="1 8 32"  EQUIV=1 (0: skip the
#   equivalence check)  POSTFWD=1 (0: skip the peer; when postfwd2 is
#   missing and we are root it is installed from Debian's postfwd package
#   without starting its service)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build/werror}" && pwd)
tenants=${TENANTS:-10000} duration=${DURATION:-5} runs=${RUNS:-3} seed=${SEED:-1}
conns_list=${CONNS:-1 8 32} use_postfwd=${POSTFWD:-1} equiv=${EQUIV:-1}
load_timeout=$((duration * 4 + 30))
# the equivalence load: 2 conns x 8000 requests over 2 tenants (~2,100
# messages each: over 2000/hour; the "*" logins over 200/day)
equiv_args=(-c 2 -n 8000 --tenants 2 --accounts 12 --seed 7 --timeout 300)

tmp=$(mktemp -d /tmp/postern-bench-policy.XXXXXX)
policyd_pid="" postfwd_master=""
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    set +e
    stop_postern
    stop_postfwd
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }

listening_tcp() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        listening_tcp "$p" || { echo "$p"; return 0; }
    done
    say "no free port found"; return 1
}

# Wait up to $2 seconds for the command string $1 to succeed.
wait_for() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if eval "$1"; then return 0; fi
        sleep 0.1
    done
    return 1
}

# ---- postern-policyd: start_postern NAME (state in $tmp/NAME), stop_postern
pport=""
start_postern() {
    local conf="$tmp/$1.yaml"
    mkdir -p "$tmp/$1"
    rm -f "$tmp/policy.sock"
    cat >"$conf" <<EOF
rules: $tmp/rules.d
state_dir: $tmp/$1
timezone: UTC
user: root
policyd:
  listen: [unix:$tmp/policy.sock, inet:127.0.0.1:$pport]
  pid_file: $tmp/$1/policyd.pid
EOF
    "$build/policyd/postern-policyd" -f -c "$conf" 2>"$tmp/$1.log" &
    policyd_pid=$!
    if wait_for "[[ -S $tmp/policy.sock ]] && listening_tcp $pport || ! kill -0 $policyd_pid 2>/dev/null" 60 &&
        kill -0 "$policyd_pid" 2>/dev/null && [[ -S $tmp/policy.sock ]]; then
        return 0
    fi
    say "postern-policyd did not start; its log:"
    tail -n 20 "$tmp/$1.log" >&2
    stop_postern
    return 1
}
stop_postern() {
    [[ -n $policyd_pid ]] || return 0
    if kill -0 "$policyd_pid" 2>/dev/null; then
        kill -TERM "$policyd_pid"
        for _ in $(seq 50); do kill -0 "$policyd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$policyd_pid" 2>/dev/null || true
    fi
    wait "$policyd_pid" 2>/dev/null || true
    policyd_pid=""
}

# ---- postfwd2: start_postfwd CONFIG, stop_postfwd.  postfwd2 always
# detaches (its --nodaemon mode reads stdin and has no rate limits): its
# master writes a pid file and, on SIGTERM, ends its whole process group
# (cache daemon, policy server, children; it is a session of its own).
fport=""
start_postfwd() {
    rm -rf "$tmp/postfwd"
    mkdir -p "$tmp/postfwd"
    # --perfmon: no logging at all (there may be no syslog here, and a
    # missing /dev/log makes every log call slow): the peer's best case.
    (cd "$tmp/postfwd" && postfwd2 -f "$1" --interface 127.0.0.1 --port "$fport" --proto tcp \
        --pidfile "$tmp/postfwd/master.pid" --cache_proto unix --cache_port "$tmp/postfwd/cache.sock" \
        --user root --group root --nodns --perfmon >"$tmp/postfwd/out.log" 2>&1) &&
        wait_for "[[ -s $tmp/postfwd/master.pid ]]" 20 && postfwd_master=$(cat "$tmp/postfwd/master.pid") &&
        wait_for "listening_tcp $fport" 30 && return 0
    say "postfwd2 did not start:"
    cat "$tmp/postfwd/out.log" >&2
    stop_postfwd
    return 1
}
stop_postfwd() {
    [[ -n $postfwd_master ]] || return 0
    if kill -0 "$postfwd_master" 2>/dev/null; then
        kill -TERM "$postfwd_master"
        for _ in $(seq 50); do kill -0 "$postfwd_master" 2>/dev/null || break; sleep 0.1; done
        # whatever is left of its process group
        kill -KILL -- "-$postfwd_master" 2>/dev/null || true
    fi
    postfwd_master=""
    wait_for "! listening_tcp $fport" 10 || true
}

install_postfwd() {
    if [[ $(id -u) != 0 ]]; then
        say "postfwd2 is missing (apt-get install postfwd, as root); skipping the peer"
        return 1
    fi
    say "installing postfwd (Debian package) without starting its service"
    local guard="" rc=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q postfwd >"$tmp/apt.log" 2>&1 || rc=$?
    [[ -z $guard ]] || rm -f /usr/sbin/policy-rc.d
    # Debian's /etc/default/postfwd has STARTUP=0 and policy-rc.d denied the
    # start: make sure that nothing runs anyway.
    if pgrep -x postfwd2 >/dev/null 2>&1 || pgrep -f '^/usr/sbin/postfwd' >/dev/null 2>&1; then
        service postfwd stop >/dev/null 2>&1 || true
    fi
    if [[ $rc != 0 ]]; then
        say "apt-get install postfwd failed; skipping the peer"
        tail -5 "$tmp/apt.log" >&2
        return 1
    fi
}

results="$tmp/results"
: >"$results"
# run_load LABEL SOCKET CONNS: best of $runs runs, appended to $results.
run_load() {
    local label=$1 sock=$2 c=$3 best="" best_rps=-1 line rps r
    for ((r = 0; r < runs; r++)); do
        if ! line=$("$build/bench/policy_load" --socket "$sock" -c "$c" -n 1000000000 --duration "$duration" \
            --timeout "$load_timeout" --tenants "$tenants" --seed "$seed" --label "$label" 2>"$tmp/load.err"); then
            say "policy_load $label c=$c failed:"
            sed 's/^/  /' "$tmp/load.err" >&2
            [[ -z $line ]] || say "  $line"
            return 1
        fi
        grep -v '^policy_load: sample' "$tmp/load.err" >&2 || true
        rps=$(sed -n 's/.* rps=\([0-9]*\).*/\1/p' <<<"$line")
        if ((rps > best_rps)); then best=$line best_rps=$rps; fi
    done
    # one reply of each kind but DUNNO, so that a wrong peer shows
    sed -n 's/^policy_load: sample /  sample /p' "$tmp/load.err" >&2
    say "$best"
    echo "$best" >>"$results"
}
# A short unmeasured run: connections, children and caches warmed up.
warm_up() {
    "$build/bench/policy_load" --socket "$1" -c 8 -n 200 --timeout 60 --tenants "$tenants" --seed 99 \
        >/dev/null 2>&1 || true
}
# equiv_load LABEL SOCKET: the equivalence load; prints the reply counts.
equiv_load() {
    local line
    line=$("$build/bench/policy_load" --socket "$2" "${equiv_args[@]}" --label "$1" 2>"$tmp/load.err") || true
    sed -n 's/^policy_load: sample /  sample /p' "$tmp/load.err" >&2
    say "$line"
    sed -n 's/.* \(dunno=.*errors=[0-9]*\).*/\1/p' <<<"$line"
}

say "building in $build"
make -C "$build" -s bench/policy_load policyd/postern-policyd >"$tmp/make.log" 2>&1 ||
    { cat "$tmp/make.log" >&2; exit 1; }
"$top/bench/gen-tenants.sh" "$tmp/rules.d" "$tenants" 10
say "generated $tenants tenants ($(du -sh "$tmp/rules.d" | cut -f1)) in $tmp"
pport=$(free_port)

# ---- postern-policyd
rss_hwm="" rss_loaded="" equiv_postern="" equiv_postfwd=""
t_start=$(date +%s.%N)
if start_postern state; then
    t_ready=$(date +%s.%N)
    rss_loaded=$(awk '/^VmHWM/ {print $2}' "/proc/$policyd_pid/status")
    say "postern-policyd ready in $(awk -v a="$t_start" -v b="$t_ready" 'BEGIN {printf "%.2f", b - a}') s," \
        "VmHWM $((rss_loaded / 1024)) MB with $tenants tenants"
    warm_up "unix:$tmp/policy.sock"
    for c in $conns_list; do
        run_load postern-inet "inet:127.0.0.1:$pport" "$c" || true
        run_load postern-unix "unix:$tmp/policy.sock" "$c" || true
    done
    rss_hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$policyd_pid/status" 2>/dev/null || true)
    say "postern-policyd: $(grep -c 'event=audit' "$tmp/state.log") audit lines in its log; the last one:"
    grep 'event=audit' "$tmp/state.log" | tail -n 1 | cut -c1-400 >&2
    stop_postern
    rm -f "$tmp/state.log"
    if [[ $equiv == 1 ]] && start_postern equiv; then
        equiv_postern=$(equiv_load postern-equiv "inet:127.0.0.1:$pport")
        stop_postern
    fi
fi

# ---- postfwd2
if [[ $use_postfwd == 1 ]] && { command -v postfwd2 >/dev/null || install_postfwd; }; then
    fport=$(free_port)
    if start_postfwd "$top/bench/postfwd/postfwd.cf"; then
        say "postfwd2 $(postfwd2 -V 2>/dev/null | awk '{print $2; exit}') on 127.0.0.1:$fport (bench/postfwd/postfwd.cf)"
        warm_up "inet:127.0.0.1:$fport"
        for c in $conns_list; do run_load postfwd2-inet "inet:127.0.0.1:$fport" "$c" || true; done
        stop_postfwd
    fi
    if start_postfwd "$top/bench/postfwd/postfwd-minimal.cf"; then
        warm_up "inet:127.0.0.1:$fport"
        run_load postfwd2-minimal "inet:127.0.0.1:$fport" 8 || true
        stop_postfwd
    fi
    if [[ $equiv == 1 ]] && start_postfwd "$top/bench/postfwd/postfwd.cf"; then
        equiv_postfwd=$(equiv_load postfwd2-equiv "inet:127.0.0.1:$fport")
        stop_postfwd
    fi
fi

# ---- report
echo
echo "policy load: $tenants tenants, best of $runs runs of ${duration}s, seed $seed, $(date -u +%Y-%m-%d) on $(nproc) cores"
awk '
function kv(s, k,   a, n, i, p) { n = split(s, a, " "); for (i = 1; i <= n; i++) { p = index(a[i], "="); if (substr(a[i], 1, p - 1) == k) return substr(a[i], p + 1) } return "" }
BEGIN { printf "| %-16s | %5s | %8s | %6s | %6s | %6s | %7s | %7s | %-34s |\n", "server", "conns", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "dunno/filter/4xx/5xx/other, errors"
        print "|------------------|-------|----------|--------|--------|--------|---------|---------|------------------------------------|" }
{ printf "| %-16s | %5s | %8s | %6s | %6s | %6s | %7s | %7s | %-34s |\n", kv($0, "label"), kv($0, "conns"), kv($0, "requests"), kv($0, "rps"), kv($0, "p50_ms"), kv($0, "p90_ms"), kv($0, "p99_ms"), kv($0, "max_ms"),
         kv($0, "dunno") "/" kv($0, "filter") "/" kv($0, "4xx") "/" kv($0, "5xx") "/" kv($0, "other") ", " kv($0, "errors") (kv($0, "timeout") ? " TIMEOUT" : "") }
' "$results"
get() { awk -v l="$1" -v c="$2" -v k="$3" '
    { lab = ""; con = ""; val = ""
      for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == "label") lab = a[2]; if (a[1] == "conns") con = a[2]; if (a[1] == k) val = a[2] } }
    lab == l && con == c { print val }' "$results"; }
echo
status=0
p_rps=$(get postern-inet 8 rps) p_p99=$(get postern-inet 8 p99_ms)
f_rps=$(get postfwd2-inet 8 rps) f_p99=$(get postfwd2-inet 8 p99_ms)
m_rps=$(get postfwd2-minimal 8 rps)
if [[ -n $p_rps && -n $f_rps ]]; then
    awk -v a="$p_rps" -v b="$f_rps" -v x="$p_p99" -v y="$f_p99" -v m="$m_rps" 'BEGIN {
        printf "postern/postfwd2 at 8 connections (inet): requests/s x%.1f; p99 x%.3f (postfwd2 p99 %.0f times postern p99)\n", a / b, x / y, y / x
        if (m != "") printf "postern/postfwd2 with the minimal rule set at 8 connections: requests/s x%.1f\n", a / m }'
fi
if [[ -n $rss_hwm ]]; then
    echo "postern-policyd VmHWM: $((rss_loaded / 1024)) MB with $tenants tenants loaded, $((rss_hwm / 1024)) MB after the runs"
fi
if [[ -n $equiv_postern && -n $equiv_postfwd ]]; then
    if [[ $equiv_postern == "$equiv_postfwd" ]]; then
        echo "equivalence (policy_load ${equiv_args[*]}): same replies: $equiv_postern"
    else
        echo "equivalence (policy_load ${equiv_args[*]}): DIFFERENT replies:"
        echo "  postern:  $equiv_postern"
        echo "  postfwd2: $equiv_postfwd"
        status=1
    fi
fi
echo "targets: requests/s >= 25 x postfwd2 at 8 connections; p99 < 1 ms; RSS < 100 MB with 10,000 tenants"
target() { # NAME AWK-CONDITION
    if awk "BEGIN { exit !($2) }"; then echo "  $1: met"; else echo "  $1: NOT met"; status=1; fi
}
if [[ -n $p_rps && -n $f_rps ]]; then
    target "requests/s at 8 connections ($p_rps vs 25 x $f_rps)" "$p_rps >= 25 * $f_rps"
fi
if [[ -n $p_p99 ]]; then
    target "p99 at 8 connections ($p_p99 ms)" "$p_p99 < 1.0"
else
    echo "  postern-policyd: not measured"; status=1
fi
if [[ -n $rss_hwm ]]; then
    target "RSS ($((rss_hwm / 1024)) MB)" "$rss_hwm < 100 * 1024"
fi
exit "$status"
