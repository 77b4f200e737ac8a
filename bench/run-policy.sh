#!/usr/bin/env bash
# run-policy.sh: postern-policyd against postfwd2 under the same policy
# load (bench/policy_load): 10,000 generated tenants (gen-tenants.sh),
# 1, 8 and 32 lockstep connections, postern over inet and unix sockets,
# postfwd2 over inet with the equivalent rules of bench/postfwd/postfwd.cf
# (and its minimal rule set at 8 connections, for reference).  Prints a
# table, the ratios postern/postfwd2 at 8 connections, postern-policyd's
# peak RSS with the tenants loaded, and the targets.  Everything lives in
# a temporary directory and every process it started is stopped on exit.
#
# usage: bench/run-policy.sh [BUILD_DIR=build/werror]
# environment: TENANTS=10000  DURATION=5 (seconds a run)  RUNS=3 (best
#   of, by requests/s)  SEED=1  CONNS="1 8 32"  POSTFWD=1 (0: skip the
#   peer; when postfwd2 is missing and we are root it is installed from
#   Debian's postfwd package without starting its service)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build/werror}" && pwd)
tenants=${TENANTS:-10000} duration=${DURATION:-5} runs=${RUNS:-3} seed=${SEED:-1}
conns_list=${CONNS:-1 8 32} use_postfwd=${POSTFWD:-1}
load_timeout=$((duration * 4 + 30))

tmp=$(mktemp -d /tmp/postern-bench-policy.XXXXXX)
policyd_pid="" postfwd_master=""
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    set +e
    if [[ -n $policyd_pid ]] && kill -0 "$policyd_pid" 2>/dev/null; then
        kill -TERM "$policyd_pid"
        for _ in $(seq 50); do kill -0 "$policyd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$policyd_pid" 2>/dev/null
        wait "$policyd_pid" 2>/dev/null
    fi
    stop_postfwd
    rm -rf "$tmp"
}
# postfwd2 always detaches (its --nodaemon mode reads stdin and has no rate
# limits): its master writes a pid file and, on SIGTERM, ends its whole
# process group (cache daemon, policy server, children).
stop_postfwd() {
    [[ -n $postfwd_master ]] || return 0
    if kill -0 "$postfwd_master" 2>/dev/null; then
        kill -TERM "$postfwd_master"
        for _ in $(seq 50); do kill -0 "$postfwd_master" 2>/dev/null || break; sleep 0.1; done
        # whatever is left of its process group (it is its own session)
        kill -KILL -- "-$postfwd_master" 2>/dev/null || true
    fi
    postfwd_master=""
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

# Wait up to $2 seconds for check "$1" (a command string) to succeed.
wait_for() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if eval "$1"; then return 0; fi
        sleep 0.1
    done
    return 1
}

install_postfwd() {
    if [[ $(id -u) != 0 ]]; then
        say "postfwd2 is missing (apt-get install postfwd, as root); skipping the peer"
        return 1
    fi
    say "installing postfwd (Debian package) without starting its service"
    local guard=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q postfwd >"$tmp/apt.log" 2>&1 || rc=$?
    [[ -n $guard ]] && rm -f /usr/sbin/policy-rc.d
    # Debian's /etc/default/postfwd has STARTUP=0, and policy-rc.d denied
    # the start: make sure nothing runs anyway.
    if [[ -f /var/run/postfwd2.pid ]] || pgrep -x postfwd2 >/dev/null 2>&1; then
        service postfwd stop >/dev/null 2>&1 || true
    fi
    if [[ $rc != 0 ]]; then
        say "apt-get install postfwd failed (see below); skipping the peer"
        tail -5 "$tmp/apt.log" >&2
        return 1
    fi
}

results="$tmp/results"
: >"$results"
# run_load LABEL SOCKET CONNS: best of $runs runs, appended to $results.
run_load() {
    local label=$1 sock=$2 c=$3 best="" best_rps=-1 line rps
    for ((r = 0; r < runs; r++)); do
        if ! line=$("$build/bench/policy_load" --socket "$sock" -c "$c" -n 100000000 --duration "$duration" \
            --timeout "$load_timeout" --tenants "$tenants" --seed "$seed" --label "$label" 2>"$tmp/load.err"); then
            say "policy_load $label c=$c failed:"
            sed 's/^/  /' "$tmp/load.err" >&2
            [[ -n $line ]] && say "  $line"
            return 1
        fi
        grep -v '^policy_load: sample' "$tmp/load.err" >&2 || true
        rps=$(sed -n 's/.* rps=\([0-9]*\).*/\1/p' <<<"$line")
        if ((rps > best_rps)); then best=$line best_rps=$rps; fi
    done
    # one sample of each reply kind but DUNNO, so that a wrong peer shows
    sed -n 's/^policy_load: sample /  sample /p' "$tmp/load.err" >&2
    say "$best"
    echo "$best" >>"$results"
}
# A short unmeasured run: connections, children and caches warmed up.
warm_up() {
    "$build/bench/policy_load" --socket "$1" -c 8 -n 200 --timeout 60 --tenants "$tenants" --seed 99 \
        >/dev/null 2>&1 || true
}

say "building in $build"
make -C "$build" -s bench/policy_load policyd/postern-policyd >"$tmp/make.log" 2>&1 ||
    { cat "$tmp/make.log" >&2; exit 1; }
"$top/bench/gen-tenants.sh" "$tmp/rules.d" "$tenants" 10
say "generated $tenants tenants ($(du -sh "$tmp/rules.d" | cut -f1)) in $tmp"

# ---- postern-policyd
pport=$(free_port)
mkdir -p "$tmp/state"
cat >"$tmp/postern.yaml" <<EOF
rules: $tmp/rules.d
state_dir: $tmp/state
timezone: UTC
user: root
policyd:
  listen: [unix:$tmp/policy.sock, inet:127.0.0.1:$pport]
  pid_file: $tmp/policyd.pid
EOF
rss_hwm="" rss_loaded=""
t_start=$(date +%s.%N)
"$build/policyd/postern-policyd" -f -c "$tmp/postern.yaml" 2>"$tmp/policyd.log" &
policyd_pid=$!
if wait_for "[[ -S $tmp/policy.sock ]] && listening_tcp $pport || ! kill -0 $policyd_pid 2>/dev/null" 60 &&
    kill -0 "$policyd_pid" 2>/dev/null && [[ -S $tmp/policy.sock ]]; then
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
    say "postern-policyd: $(grep -c 'event=audit' "$tmp/policyd.log") audit lines in its log; the last one:"
    grep 'event=audit' "$tmp/policyd.log" | tail -n 1 | cut -c1-400 >&2
else
    say "postern-policyd did not start; its log:"
    tail -n 20 "$tmp/policyd.log" >&2
fi
if [[ -n $policyd_pid ]]; then
    kill -TERM "$policyd_pid" 2>/dev/null || true
    wait "$policyd_pid" 2>/dev/null || true
    policyd_pid=""
fi

# ---- postfwd2
start_postfwd() { # CONFIG PORT
    rm -rf "$tmp/postfwd"
    mkdir -p "$tmp/postfwd"
    # --perfmon: no logging at all (there may be no syslog here, and a
    # missing /dev/log makes every log call slow): the peer's best case.
    (cd "$tmp/postfwd" && postfwd2 -f "$1" --interface 127.0.0.1 --port "$2" --proto tcp \
        --pidfile "$tmp/postfwd/master.pid" --cache_proto unix --cache_port "$tmp/postfwd/cache.sock" \
        --user root --group root --nodns --perfmon >"$tmp/postfwd/out.log" 2>&1) || return 1
    wait_for "[[ -s $tmp/postfwd/master.pid ]]" 20 || return 1
    postfwd_master=$(cat "$tmp/postfwd/master.pid")
    wait_for "listening_tcp $2" 30
}
if [[ $use_postfwd == 1 ]] && { command -v postfwd2 >/dev/null || install_postfwd; }; then
    fport=$(free_port)
    if start_postfwd "$top/bench/postfwd/postfwd.cf" "$fport"; then
        say "postfwd2 $(postfwd2 -V 2>/dev/null | awk '{print $2; exit}') on 127.0.0.1:$fport (bench/postfwd/postfwd.cf)"
        warm_up "inet:127.0.0.1:$fport"
        for c in $conns_list; do run_load postfwd2-inet "inet:127.0.0.1:$fport" "$c" || true; done
        stop_postfwd
    else
        say "postfwd2 did not start:"; cat "$tmp/postfwd/out.log" >&2; stop_postfwd
    fi
    if start_postfwd "$top/bench/postfwd/postfwd-minimal.cf" "$fport"; then
        warm_up "inet:127.0.0.1:$fport"
        run_load postfwd2-minimal "inet:127.0.0.1:$fport" 8 || true
        stop_postfwd
    fi
fi

# ---- report
echo
echo "policy load: $tenants tenants, best of $runs runs of ${duration}s, seed $seed, $(date -u +%Y-%m-%d) on $(nproc) cores"
awk '
function kv(s, k,   a, n, i, p) { n = split(s, a, " "); for (i = 1; i <= n; i++) { p = index(a[i], "="); if (substr(a[i], 1, p - 1) == k) return substr(a[i], p + 1) } return "" }
BEGIN { printf "| %-16s | %5s | %9s | %7s | %7s | %7s | %8s | %-45s |\n", "server", "conns", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "replies (dunno/filter/4xx/5xx/other, errors)"
        print "|------------------|-------|-----------|---------|---------|---------|----------|-----------------------------------------------|" }
{ printf "| %-16s | %5s | %9s | %7s | %7s | %7s | %8s | %-45s |\n", kv($0, "label"), kv($0, "conns"), kv($0, "requests"), kv($0, "rps"), kv($0, "p50_ms"), kv($0, "p99_ms"), kv($0, "max_ms"),
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
        printf "postern/postfwd2 at 8 connections (inet): requests/s x%.1f, p99 x%.3f (postfwd2 p99 / postern p99: %.0f)\n", a / b, x / y, y / x
        if (m != "") printf "postern vs postfwd2 with the minimal rule set: requests/s x%.1f\n", a / m }'
fi
[[ -n $rss_hwm ]] && echo "postern-policyd VmHWM: $((rss_loaded / 1024)) MB with $tenants tenants loaded, $((rss_hwm / 1024)) MB after the runs"
echo "targets: requests/s >= 25 x postfwd2 at 8 connections; p99 < 1 ms; RSS < 100 MB with 10,000 tenants"
target() { # NAME AWK-CONDITION
    if awk "BEGIN { exit !($2) }"; then echo "  $1: met"; else echo "  $1: NOT met"; status=1; fi
}
[[ -n $p_rps && -n $f_rps ]] && target "requests/s at 8 connections ($p_rps vs 25 x $f_rps)" "$p_rps >= 25 * $f_rps"
if [[ -n $p_p99 ]]; then
    target "p99 at 8 connections ($p_p99 ms)" "$p_p99 < 1.0"
else
    echo "  postern-policyd: not measured"; status=1
fi
[[ -n $rss_hwm ]] && target "RSS ($((rss_hwm / 1024)) MB)" "$rss_hwm < 100 * 1024"
exit "$status"
