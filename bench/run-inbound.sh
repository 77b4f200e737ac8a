#!/usr/bin/env bash
# run-inbound.sh: the checks of inbound mail (SPF + DKIM verification +
# DMARC) side by side in one run, in the test lab (tests/lab/lab.sh: a
# private Postfix in a network namespace of its own, dnsmasq as its only
# DNS; nothing leaves the machine): smtp-source -> Postfix -> smtp-sink,
# SESSIONS sessions x MESSAGES messages, for
#   bare     Postfix without a milter
#   postern  postern-milter over a unix socket: SPF, DKIM and DMARC in one
#            milter (the receiving tenant's rules: spf and dkim header,
#            dmarc enforce)
#   peers    Debian's opendkim (Mode v) and opendmarc (SPFSelfValidate: its
#            own SPF check with libspf2) chained as two milters over unix
#            sockets: the classic stack that does the same three checks
#   (INET=1: both again over inet on 127.0.0.1)
# The mail is "inbound": one message (From: and MAIL FROM news@sender.example,
# SIZE bytes of body) signed once by this script with RSA-2048 (python3-dkim,
# relaxed/relaxed), sent with smtp-source -F to rcpt@rcpt.example (a
# relay_domains entry whose MX is the sink) by a client that is no tenant's:
# 198.51.100.25, an address added to the lab's loopback with an smtpd of its
# own (smtp-source cannot choose its source address; it connects to that
# smtpd from that address).  Not 127.0.0.1: libspf2 gives the loopback
# "pass" without a look-up, and opendmarc's SPF check is libspf2's.
# The lab's dnsmasq publishes sender.example's SPF (ip4:198.51.100.25 -all),
# its DKIM key (s1) and its DMARC record (p=reject): every check passes.
# Throughput is end to end: from smtp-source's first connection until the
# last message is in smtp-sink (Postfix's queue empty).  The machine's busy
# CPU, the milters' own CPU, the DNS queries dnsmasq answered and its CPU
# are given per message.  After each run the sink must hold every message,
# and its first five and its last must come from the client and carry the
# Authentication-Results headers expected ("verified", or "WRONG" and what
# was missing).  Prints a table and postern's throughput over the peers'
# (target x2; exit 1 when missed or WRONG), with the best any milter could
# do end to end and the ratio of the milters' CPU.  opendkim and opendmarc come from
# Debian's packages, installed when missing (with a policy-rc.d that keeps
# their services from starting).
#
# usage: bench/run-inbound.sh [BUILD_DIR=build/werror]
# environment: SESSIONS=10 MESSAGES=200 (per session) SIZE=4096 RUNS=2 (best
#   of) INET=0 (1: postern and the peers over inet too) PEERS=1 (0: skip the
#   peers) POSTERN=1 (0: skip postern-milter, e.g. while it does not build)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build/werror}" && pwd)
sessions=${SESSIONS:-10} messages=${MESSAGES:-200} size=${SIZE:-4096} runs=${RUNS:-2}
use_inet=${INET:-0} use_peers=${PEERS:-1} use_postern=${POSTERN:-1}
milter=$build/milter/postern-milter
say() { printf '%s\n' "$*" >&2; }
calc() { awk "BEGIN { print $1 }"; }   # calc 'EXPR': floating-point arithmetic

if [[ $use_postern == 1 ]]; then
    make -C "$build" -s milter/postern-milter >/dev/null || { say "cannot build postern-milter"; exit 1; }
fi
/usr/bin/python3 -c 'import dkim' 2>/dev/null || { say "python3-dkim is missing (apt-get install python3-dkim)"; exit 1; }

install_peer() { # install_peer PACKAGE: the Debian package, its service kept from starting
    command -v "$1" >/dev/null 2>&1 && return 0
    [[ $(id -u) == 0 ]] || { say "$1 is missing (apt-get install $1); skipping the peers"; return 1; }
    say "installing $1 (Debian package) without starting its service"
    local guard=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q "$1" >/dev/null 2>&1 || true
    [[ -z $guard ]] || rm -f /usr/sbin/policy-rc.d
    service "$1" stop >/dev/null 2>&1 || true
    command -v "$1" >/dev/null 2>&1
}
if [[ $use_peers == 1 ]] && ! { install_peer opendkim && install_peer opendmarc; }; then
    use_peers=0
fi

# shellcheck source=../tests/lab/lab.sh
. "$top/tests/lab/lab.sh"
lab_up >/dev/null

b=$LAB_DIR/bench
mkdir -p "$b/rules" "$b/state"
chmod 755 "$LAB_DIR" "$b"

# --- the sender's domain and the message ----------------------------------------
sender=news@sender.example
rcpt=rcpt@rcpt.example
client_ip=198.51.100.25
ip -n "$LAB_NS" addr add "$client_ip/32" dev lo
lab_master_add "$client_ip:25 inet n - n - - smtpd"
lab_postconf 'relay_domains = rcpt.example' >/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$b/sender.pem" 2>/dev/null
dns_txt() { # dns_txt NAME VALUE: a dnsmasq txt-record line, in strings of <= 250 bytes
    local line="txt-record=$1" i
    for ((i = 0; i < ${#2}; i += 250)); do
        line+=",\"${2:i:250}\""
    done
    printf '%s\n' "$line"
}
lab_dns_add 'mx-host=rcpt.example,mx.lab.test,10' \
    "$(dns_txt sender.example "v=spf1 ip4:$client_ip -all")" \
    "$(dns_txt s1._domainkey.sender.example \
        "v=DKIM1; k=rsa; p=$(openssl pkey -in "$b/sender.pem" -pubout -outform DER | base64 -w0)")" \
    "$(dns_txt _dmarc.sender.example 'v=DMARC1; p=reject; adkim=r; aspf=r')"
lab_dns_restart >/dev/null
lab_dig _dmarc.sender.example TXT >/dev/null || { say "the lab's DNS does not serve sender.example's records"; exit 1; }

# The message, signed once: smtp-source -F sends the file's lines with CRLF
# appended, so the file has bare LF line ends and is signed as CRLF.
/usr/bin/python3 - "$b/sender.pem" "$b/message.txt" "$size" "$sender" "$rcpt" <<'PY'
import sys
import dkim
key_file, out, size, sender, rcpt = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
head = (f"From: Sender News <{sender}>\r\nTo: <{rcpt}>\r\nSubject: inbound benchmark\r\n"
        "Date: Sat, 28 Nov 2026 12:00:00 +0000\r\nMessage-ID: <inbound-bench@sender.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n")
line = "The quick brown fox jumps over the lazy dog, 0123456789 times over.\r\n"
body = (line * (size // len(line) + 1))[:size]
body = body[:body.rfind("\r\n") + 2] if "\r\n" in body else line
msg = (head + "\r\n" + body).encode()
sig = dkim.sign(msg, b"s1", b"sender.example", open(key_file, "rb").read(),
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
                                 b"content-type"])
with open(out, "wb") as f:
    f.write((sig + msg).replace(b"\r\n", b"\n"))
PY
ip netns exec "$LAB_NS" dkimverify <<<"$(sed 's/$/\r/' "$b/message.txt")" | grep -q 'signature ok' ||
    { say "the benchmark message does not verify (dkimverify)"; exit 1; }

# The receiving tenant: owns rcpt.example, DMARC enforced; its clients are
# a network the sending client ($client_ip) is not in, so the mail is inbound.
cat >"$b/rules/rcpt.yaml" <<EOF
tenant: rcpt
domains: [rcpt.example]
clients: [192.0.2.0/24]
inbound: {spf: header, dkim: header, dmarc: enforce}
EOF

# --- the milters ------------------------------------------------------------------
pids=()   # the milters of the current run (their CPU is counted)
wait_listen() { # wait_listen PID SOCKET (unix:PATH or inet:PORT) LOG NAME
    local i
    for ((i = 0; i < 300; i++)); do
        if [[ $2 == unix:* ]]; then [[ -S ${2#unix:} ]] && return 0
        else ip netns exec "$LAB_NS" ss -Hltn "sport = :${2#inet:}" | grep -q . && return 0; fi
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    say "$4 did not start:"; tail -5 "$3" >&2
    return 1
}
stop_milters() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=()
}

msock=$LAB_PF_QUEUE/private/postern-milter
mport=10050
start_postern() { # start_postern LISTEN
    cat >"$b/postern.yaml" <<EOF
rules: $b/rules
state_dir: $b/state
timezone: UTC
user: root
milter:
  listen: $1
  pid_file: $b/milter.pid
  authserv_id: postern.bench
  dns_timeout: 5s
EOF
    : >"$b/milter.log"
    ip netns exec "$LAB_NS" "$milter" -f -c "$b/postern.yaml" >>"$b/milter.log" 2>&1 &
    pids+=("$!")
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q 'event=start' "$b/milter.log" && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    say "postern-milter did not start:"; tail -5 "$b/milter.log" >&2
    return 1
}

# The peers, configured to do what postern-milter does: opendkim verifies
# (Mode v) and writes its result into an Authentication-Results header with
# the authserv-id that opendmarc trusts; opendmarc checks SPF itself
# (SPFSelfValidate, ignoring SPF results in the message) and DMARC with
# both results, rejecting failures (RejectFailures: dmarc enforce).
# Their InternalHosts and IgnoreHosts (127.0.0.1 by default: mail from
# there opendkim would not verify and opendmarc would let pass unchecked)
# do not hold the client.  opendkim (Debian's is built with libunbound)
# resolves from the root servers unless given Nameservers: here the lab's
# dnsmasq.  No history file, no reports.  opendkim refuses a configuration
# under a directory others can write (such as /tmp): the peers' files live
# in a private directory under /run.
pdir=""
dkport=10051 dmport=10052
peers_spec=""
start_peers() { # start_peers unix|inet: opendkim, then opendmarc; Postfix's smtpd_milters in $peers_spec
    local dk dm dk_pf dm_pf dk_w dm_w
    [[ -n $pdir ]] || pdir=$(mktemp -d /run/postern-bench-inbound.XXXXXX)
    if [[ $1 == unix ]]; then
        dk=local:$LAB_PF_QUEUE/private/opendkim dm=local:$LAB_PF_QUEUE/private/opendmarc
        dk_pf=unix:${dk#local:} dm_pf=unix:${dm#local:}
        dk_w=$dk_pf dm_w=$dm_pf
    else
        dk=inet:$dkport@127.0.0.1 dm=inet:$dmport@127.0.0.1
        dk_pf=inet:127.0.0.1:$dkport dm_pf=inet:127.0.0.1:$dmport
        dk_w=inet:$dkport dm_w=inet:$dmport
    fi
    cat >"$pdir/opendkim.conf" <<EOF
Syslog no
Mode v
AuthservID peers.bench
Nameservers 127.0.0.1
Socket $dk
UMask 000
PidFile $pdir/opendkim.pid
UserID root
Background no
EOF
    cat >"$pdir/opendmarc.conf" <<EOF
Syslog false
AuthservID peers.bench
TrustedAuthservIDs peers.bench
PublicSuffixList /usr/share/publicsuffix/public_suffix_list.dat
SPFSelfValidate true
SPFIgnoreResults true
RejectFailures true
FailureReports false
Socket $dm
UMask 000
PidFile $pdir/opendmarc.pid
UserID root
Background no
EOF
    : >"$b/opendkim.log"
    : >"$b/opendmarc.log"
    ip netns exec "$LAB_NS" opendkim -f -x "$pdir/opendkim.conf" >>"$b/opendkim.log" 2>&1 &
    pids+=("$!")
    wait_listen "$!" "$dk_w" "$b/opendkim.log" opendkim || return 1
    ip netns exec "$LAB_NS" opendmarc -f -c "$pdir/opendmarc.conf" >>"$b/opendmarc.log" 2>&1 &
    pids+=("$!")
    wait_listen "$!" "$dm_w" "$b/opendmarc.log" opendmarc || return 1
    peers_spec="$dk_pf, $dm_pf"
}

use_milter() { # use_milter SPEC ("" for none)
    lab_postconf "smtpd_milters = $1" 'milter_default_action = tempfail' \
        'smtpd_client_connection_count_limit = 0' 'smtpd_client_connection_rate_limit = 0' \
        'default_process_limit = 250' >/dev/null
    lab_postfix_reload >/dev/null
}
empty_queue() { ip netns exec "$LAB_NS" postsuper -c "$LAB_PF_CONF" -d ALL >/dev/null 2>&1 || true; }

# busy CPU time of the whole machine (all cores), in seconds, from /proc/stat
cpu_busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $7 + $8) / hz; exit }' /proc/stat; }
# CPU time (user + system) of process $1 and its threads, in seconds
cpu_of() { [[ -n $1 && -r /proc/$1/stat ]] && awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*[)] /, ""); print ($12 + $13) / hz }' "/proc/$1/stat" || echo 0; }
cpu_milters() { # the CPU seconds of all the milters of the run
    local p t=0
    for p in "${pids[@]}"; do
        t=$(calc "$t + $(cpu_of "$p")")
    done
    echo "$t"
}
dns_queries() { grep -c 'query\[' "$LAB_DIR/dnsmasq.log" 2>/dev/null || true; }

# queue_files: how many messages are still in Postfix's queue
queue_files() { find "$LAB_PF_QUEUE"/{maildrop,incoming,active,deferred,hold} -type f 2>/dev/null | wc -l; }
empty_sink() { find "$LAB_SINK_DIR" -type f -delete 2>/dev/null || true; }

# one_run S M: S sessions of M messages each (smtp-source's -m is the
# total over all sessions: S x M), from the first connection until the
# last message is delivered to smtp-sink (the queue is empty): the wall
# time in seconds.  smtp-source's own time goes to $b/last_submit; the
# machine's busy CPU seconds, the milters', the DNS queries and dnsmasq's
# CPU seconds to $b/last_cpu.
one_run() {
    local t0 t1 ts c0 c1 m0 m1 q0 q1 d0 d1 i
    empty_queue
    empty_sink
    c0=$(cpu_busy) m0=$(cpu_milters) q0=$(dns_queries) d0=$(cpu_of "$(lab_pid dnsmasq)")
    t0=$(date +%s.%N)
    ip netns exec "$LAB_NS" smtp-source -s "$1" -m "$(($1 * $2))" -F "$b/message.txt" -f "$sender" \
        -t "$rcpt" "$client_ip:25" >/dev/null 2>"$b/smtp-source.err" || say "smtp-source: $(head -3 "$b/smtp-source.err")"
    ts=$(date +%s.%N)
    for ((i = 0; i < 6000; i++)); do   # delivery: up to 10 minutes more
        (($(queue_files) == 0)) && break
        sleep 0.05
    done
    t1=$(date +%s.%N)
    c1=$(cpu_busy) m1=$(cpu_milters) q1=$(dns_queries) d1=$(cpu_of "$(lab_pid dnsmasq)")
    (($(queue_files) == 0)) || say "warning: $(queue_files) messages still queued after 10 minutes"
    printf '%s %s %s %s\n' "$(calc "$c1 - $c0")" "$(calc "$m1 - $m0")" "$((q1 - q0))" "$(calc "$d1 - $d0")" >"$b/last_cpu"
    calc "$ts - $t0" >"$b/last_submit"
    calc "$t1 - $t0"
}

# results_check WHICH: the sink holds every message, and its first 5 and its
# last came from $client_ip and carry the Authentication-Results expected:
# none (bare), postern's one
# header with spf, dkim and dmarc pass, or the peers' (opendkim's dkim=pass,
# opendmarc's spf=pass and dmarc=pass, all authserv-id peers.bench)
results_check() {
    local want=$((sessions * messages)) have f ar bad="" i
    for ((i = 0; i < 40; i++)); do   # smtp-sink may still be closing the last file
        have=$(find "$LAB_SINK_DIR" -type f | wc -l)
        ((have >= want)) && break
        sleep 0.05
    done
    ((have == want)) || bad="$have/$want in the sink"
    for f in $(find "$LAB_SINK_DIR" -type f -printf '%T@ %p\n' | sort -n | cut -d' ' -f2- | sed -n '1,5p;$p'); do
        ar=$(lab_sink_header "$f" Authentication-Results || true)
        lab_sink_header "$f" Received | grep -qF "[$client_ip]" || { bad="not received from $client_ip"; break; }
        case $1 in
        bare) [[ -z $ar ]] || bad="an Authentication-Results header" ;;
        postern)
            ar=$(grep '^postern\.bench;' <<<"$ar" || true)
            if (($(grep -c . <<<"$ar") != 1)); then bad="$(grep -c . <<<"$ar") postern headers"
            elif ! grep -q 'spf=pass' <<<"$ar"; then bad="no spf=pass"
            elif ! grep -qE 'dkim=pass .*header\.d=sender\.example' <<<"$ar"; then bad="no dkim=pass"
            elif ! grep -q 'dmarc=pass' <<<"$ar"; then bad="no dmarc=pass"; fi ;;
        peers)
            ar=$(grep '^peers\.bench;' <<<"$ar" || true)
            if ! grep -qE 'dkim=pass .*header\.d=sender\.example' <<<"$ar"; then bad="no opendkim dkim=pass"
            elif ! grep -q 'spf=pass' <<<"$ar"; then bad="no opendmarc spf=pass"
            elif ! grep -q 'dmarc=pass' <<<"$ar"; then bad="no opendmarc dmarc=pass"; fi ;;
        esac
        [[ -z $bad ]] || break
    done
    if [[ -z $bad ]]; then
        if [[ $1 == bare ]]; then echo unchecked; else echo verified; fi
    else
        echo "WRONG(${bad// /_})"
        say "$1: WRONG: $bad; a message in the sink:"
        [[ -z ${f:-} ]] || sed -n '/^$/q;p' "$f" >&2
    fi
}

best_of() { # best_of S M: the best of $runs runs (its CPU figures in $b/best_cpu)
    local best="" t r
    for ((r = 0; r < runs; r++)); do
        t=$(one_run "$1" "$2")
        if [[ -z $best ]] || (($(calc "($t < $best)"))); then
            best=$t
            cp "$b/last_cpu" "$b/best_cpu"
            cp "$b/last_submit" "$b/best_submit"
        fi
    done
    echo "$best"
}

# ours, then lab.sh's own (which exits with $?); set +e first, or (exit 1) would end the trap before lab_down
trap 'rc=$?; set +e; stop_milters; [[ -z $pdir ]] || rm -rf "$pdir"; (exit $rc); _lab_on_exit' EXIT
results=$b/results
: >"$results"
record() { # record LABEL SECONDS CHECK: with the CPU figures of that best run
    local cpu mcpu dns dcpu submit
    read -r cpu mcpu dns dcpu <"$b/best_cpu"
    submit=$(cat "$b/best_submit")
    printf '%s %s %s %s %s %s %s %s\n' "$1" "$2" "$3" "$cpu" "$mcpu" "$submit" "$dns" "$dcpu" >>"$results"
    say "$1: $2 s ($3; smtp-source done at $submit s), machine CPU $cpu s, milters' CPU $mcpu s," \
        "$dns DNS queries (dnsmasq CPU $dcpu s)"
}
measure() { # measure LABEL CHECK: best of $runs with the milters running now
    local t
    t=$(best_of "$sessions" "$messages")
    record "$1" "$t" "$(results_check "$2")"
}

n=$((sessions * messages))
say "inbound: $sessions sessions x $messages messages (signed, $size bytes of body), best of $runs"
socks=(unix)
[[ $use_inet != 1 ]] || socks+=(inet)
use_milter ""
measure bare bare
if [[ $use_postern == 1 ]]; then
    for sock in "${socks[@]}"; do
        if [[ $sock == unix ]]; then start_postern "unix:$msock"; use_milter "unix:$msock"
        else start_postern "inet:127.0.0.1:$mport"; use_milter "inet:127.0.0.1:$mport"; fi
        measure "postern-$sock" postern
        stop_milters
    done
fi
if [[ $use_peers == 1 ]]; then
    for sock in "${socks[@]}"; do
        start_peers "$sock"
        use_milter "$peers_spec"
        measure "peers-$sock" peers
        stop_milters
    done
fi
use_milter ""
empty_queue

# --- the table -----------------------------------------------------------------------
get() { awk -v k="$1" '$1 == k {print $2}' "$results"; }
getcol() { awk -v k="$1" -v c="$2" '$1 == k {print $c}' "$results"; }
printf '\ninbound checks (SPF + DKIM + DMARC): %s sessions x %s messages of %s bytes, best of %s, %s on %s cores\n' \
    "$sessions" "$messages" "$size" "$runs" "$(date +%F)" "$(nproc)"
printf '| run | seconds to the sink | messages/s | smtp-source done (s) | results | machine CPU ms/message |'
printf ' milter(s) CPU ms/message | DNS queries/message | dnsmasq CPU ms/message |\n|---|---|---|---|---|---|---|---|---|\n'
while read -r label secs check cpu mcpu submit dns dcpu; do
    printf '| %s | %.2f | %.0f | %.2f | %s | %.2f | %.2f | %.1f | %.2f |\n' "$label" "$secs" "$(calc "$n / $secs")" \
        "$submit" "$check" "$(calc "1000 * $cpu / $n")" "$(calc "1000 * $mcpu / $n")" "$(calc "$dns / $n")" \
        "$(calc "1000 * $dcpu / $n")"
done <"$results"
status=0
grep -q WRONG "$results" && { echo "a run's results were WRONG"; status=1; }
bare=$(get bare)
for sock in "${socks[@]}"; do
    p=$(get "postern-$sock") q=$(get "peers-$sock")
    [[ -z $p ]] || printf 'postern-%s: %.1f%% of bare Postfix throughput\n' "$sock" "$(calc "100 * $bare / $p")"
    [[ -z $q ]] || printf 'peers-%s: %.1f%% of bare Postfix throughput\n' "$sock" "$(calc "100 * $bare / $q")"
    if [[ -n $p && -n $q ]]; then
        # end to end, Postfix's own time is in both: a milter that cost
        # nothing would be x(peers / bare) the peers, no more
        printf 'a milter that costs nothing would be x%.2f the peers over %s here (their time / bare Postfix'"'"'s)\n' \
            "$(calc "$q / $bare")" "$sock"
        pm=$(getcol "postern-$sock" 5) qm=$(getcol "peers-$sock" 5)
        if (($(calc "($pm > 0)"))); then
            printf 'milter CPU per message: the peers use x%.2f what postern-milter uses over %s\n' "$(calc "$qm / $pm")" "$sock"
        fi
        x=$(calc "$q / $p")
        printf 'postern-%s: x%.2f the peers (opendkim + opendmarc) over %s (target x2)' "$sock" "$x" "$sock"
        if (($(calc "($x >= 2)"))); then echo ": met"; else echo ": NOT met"; status=1; fi
    fi
done
exit "$status"
