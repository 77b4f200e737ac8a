#!/usr/bin/env bash
# run-scan.sh: what postern-milter's scanners cost, in the test lab
# (tests/lab/lab.sh: a private Postfix in a network namespace of its own,
# dnsmasq as its only DNS, and the lab's clamd and spamd; nothing leaves the
# machine): smtp-source -> Postfix -> smtp-sink, SESSIONS sessions x
# MESSAGES messages, in one lab, for
#   bare   Postfix without a milter
#   off    postern-milter without scanners (postern.yaml has no clamd, no spamd)
#   clamd  postern-milter with clamd only
#   spamd  postern-milter with spamd only
#   both   postern-milter with both (run at once on each message: the
#          slower one sets the time)
# then one session of LAT_MESSAGES messages for each milter run (off,
# clamd, spamd, both; bare for reference): the time a message takes.
#
# The mail is inbound mail to a tenant's domain: a plain-text message of
# about SIZE bytes (realistic headers, prose in the body), MAIL FROM and
# From: at sender.example, to rcpt@bench.example.  Tenant "bench" owns
# bench.example; its clients (192.0.2.0/24) do not hold the sending client
# 127.0.0.1, so the milter sees the message as inbound, which is where a
# mail server scans: mail from outside to its users.  The tenant has no
# scan key (the defaults: antivirus reject, spam header at 5.0, max_size
# 10M) and `inbound: {spf: off, dkim: off, dmarc: off}`: the SPF, DKIM and
# DMARC checks would add DNS work of their own, and what is measured here
# is what the scanners add to the milter (one audit record per message in
# every milter run: "inbound checks off", plus the scan record when a
# scanner runs).  ATTACH=1 runs every case again with a second message:
# the same text and a base64 attachment of ATTACH_SIZE bytes.
#
# The scanners are the lab's (lab_clamd_start, lab_spamd_start):
#   clamd  one signature (EICAR's MD5): with the tiny database this measures
#          the protocol, clamd's parsing of the message (MIME, base64) and
#          its temporary file, not signature matching (a real deployment
#          loads ~8 million signatures; matching takes more there);
#          `MaxThreads 10`, `DisableCache yes` (clamd's cache of clean
#          files, keyed by their hash, would answer repeated copies of the
#          one message without scanning; real mail is never twice the same);
#          postern's clamd.connections 4 (kept sessions, IDSESSION);
#   spamd  the shipped rules, no Bayes, no DNS, no RBL (lab.sh's local.cf),
#          --max-children=2 (the lab's: this machine has 2 cores); postern's
#          spamd.connections 2, timeout 60s.
# Both scanners' connect_timeout is SCAN_WAIT (postern's default, 5s): it
# also bounds the wait of a message for a free connection of the pool, and
# SESSIONS sessions queue for spamd's 2 connections at ~0.3 s of CPU a
# message; a wait past it makes that call fail (spamd: delivered as not
# scanned; clamd: 451), and the run is WRONG.
# Both start once and keep running through all the runs; their CPU is
# counted over each run: clamd is one process (all its threads), spamd a
# parent and its children (the live ones, and those it reaped: cutime).
#
# Throughput is end to end: from smtp-source's first connection until the
# last message is in smtp-sink (Postfix's queue empty).  The machine's busy
# CPU (both cores, other people's work included), the milter's, clamd's and
# spamd's are given per message.  The wall latency of each scanner call
# comes from the milter's audit trail (posternctl audit --json): each scan
# record's reason holds "clamd=clean (N ms)" and "spamd=... (N ms)", timed
# in the milter from the call's start, or "(N ms, W of them waiting for a
# connection)" when the pool was all in use: the call is counted as N - W.  After each run the sink must hold every message,
# and its first five and its last must carry the scanners' headers (clamd:
# X-Virus-Status: Clean; spamd: X-Spam-Score) and no other's, the audit
# trail must hold a scan record per scanned message and no failure; else
# the run is WRONG and the script exits 1.
#
# usage: bench/run-scan.sh [BUILD_DIR=build/werror]
# environment: SESSIONS=10 MESSAGES=20 (per session) SIZE=4096 RUNS=2 (best
#   of) LAT_MESSAGES=40 (0: no single-session runs) ATTACH=0 (1: the
#   attachment workload too, as WORKLOADS="text attach") ATTACH_SIZE=102400
#   WORKLOADS="text" CASES="bare off clamd spamd both" SCAN_WAIT=5s (both
#   scanners' connect_timeout, which also bounds the wait for a free
#   connection of the pool; postern's default)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build/werror}" && pwd)
# small defaults: with spamd, this machine (2 cores) passes ~7 messages/s
sessions=${SESSIONS:-10} messages=${MESSAGES:-20} size=${SIZE:-4096} runs=${RUNS:-2}
scan_wait=${SCAN_WAIT:-5s}
lat_messages=${LAT_MESSAGES:-40} use_attach=${ATTACH:-0} attach_size=${ATTACH_SIZE:-102400}
read -r -a cases <<<"${CASES:-bare off clamd spamd both}"
milter=$build/milter/postern-milter
ctl=$build/ctl/posternctl
py=/usr/bin/python3
say() { printf '%s\n' "$*" >&2; }
calc() { awk "BEGIN { print $1 }"; }   # calc 'EXPR': floating-point arithmetic

"$top/contrib/install-deps.sh" lab || { say "cannot install the lab's packages (contrib/install-deps.sh lab)"; exit 1; }
made=$(make -C "$build" -s milter/postern-milter ctl/posternctl 2>&1) || { say "$made"; say "cannot build postern-milter"; exit 1; }

# shellcheck source=../tests/lab/lab.sh
. "$top/tests/lab/lab.sh"
lab_up >/dev/null

b=$LAB_DIR/bench
mkdir -p "$b/rules"
chmod 755 "$LAB_DIR" "$b"
sender=ann.writer@sender.example
rcpt=rcpt@bench.example
msock=$LAB_PF_QUEUE/private/postern-milter

mpid=""
stop_milter() {
    [[ -n $mpid ]] || return 0
    kill "$mpid" 2>/dev/null || true
    wait "$mpid" 2>/dev/null || true
    mpid=""
}
# ours, then lab.sh's own (which exits with $?); set +e first, or (exit 1) would end the trap before lab_down
# shellcheck disable=SC2154 # rc is assigned in the trap
trap 'rc=$?; set +e; stop_milter; lab_clamd_stop; lab_spamd_stop; (exit $rc); _lab_on_exit' EXIT

# --- the scanners (spamd takes ~10 s to start: first) --------------------------------
lab_spamd_start --no-wait >/dev/null || { say "spamd did not start"; exit 1; }
lab_clamd_start 'MaxThreads 10' 'DisableCache yes' >/dev/null || { say "clamd did not start"; exit 1; }
lab_spamd_wait >/dev/null || { say "spamd did not come up"; exit 1; }

# --- the tenant and the messages -------------------------------------------------------
cat >"$b/rules/bench.yaml" <<EOF
tenant: bench
domains: [bench.example]
clients: [192.0.2.0/24]
inbound: {spf: off, dkim: off, dmarc: off}
EOF
"$ctl" -r "$b/rules" check >/dev/null || { say "posternctl check refuses the benchmark's rules"; exit 1; }

# smtp-source -F sends the file's lines with CRLF appended: bare LF here.
# Deterministic prose (a fixed seed), today's date (SpamAssassin scores
# dates in the future or far past), nothing that looks like spam.
"$py" - "$b/message" "$size" "$attach_size" "$sender" "$rcpt" <<'PY'
import base64, email.utils, random, sys
out, size, attach_size, sender, rcpt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rnd = random.Random(1)
words = ("the meeting report budget figures team project quarter review plan schedule office "
         "week minutes draft agenda customer order delivery invoice update notes question answer "
         "we they it is was will would should can next last first second third on in at by for with "
         "about from and or but not this that these those our your their some many few all").split()
def sentence():
    w = [rnd.choice(words) for _ in range(rnd.randint(6, 16))]
    return " ".join(w).capitalize() + rnd.choice([".", ".", ".", "?"])
def body(n):
    paras, total = [], 0
    paras.append("Hello Robin,")
    while total < n:
        p, line = [], ""
        for _ in range(rnd.randint(2, 5)):
            for word in sentence().split():
                if len(line) + len(word) + 1 > 72:
                    p.append(line)
                    line = word
                else:
                    line = (line + " " + word).strip()
        p.append(line)
        para = "\n".join(p)
        paras.append(para)
        total += len(para) + 2
    paras.append("Best regards,\nAnn Writer\nSender Example Ltd., accounts department")
    return "\n\n".join(paras) + "\n"
head = ("Received: from laptop.sender.example (laptop.sender.example [203.0.113.54])\n"
        "\tby mail.sender.example (Postfix) with ESMTPSA id 4F2A1C0D3E\n"
        "\tfor <%s>; %s\n" % (rcpt, email.utils.formatdate(localtime=False))
        + "From: Ann Writer <%s>\nTo: Robin Reader <%s>\n" % (sender, rcpt)
        + "Subject: Minutes of the quarterly review and next steps\n"
        + "Date: %s\n" % email.utils.formatdate(localtime=False)
        + "Message-ID: <%s.bench@sender.example>\nMIME-Version: 1.0\n" % email.utils.make_msgid().strip("<>").split("@")[0]
        + "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0\n")
text = body(max(size - len(head) - 120, 200))
with open(out + ".text", "w") as f:
    f.write(head + "Content-Type: text/plain; charset=us-ascii; format=flowed\n"
            "Content-Transfer-Encoding: 7bit\n\n" + text)
blob = bytes(rnd.getrandbits(8) for _ in range(attach_size))
b64 = base64.encodebytes(b"%PDF-1.4\n" + blob).decode()
with open(out + ".attach", "w") as f:
    f.write(head + 'Content-Type: multipart/mixed; boundary="------------bench0boundary"\n\n'
            "This is a multi-part message in MIME format.\n"
            "--------------bench0boundary\nContent-Type: text/plain; charset=us-ascii; format=flowed\n"
            "Content-Transfer-Encoding: 7bit\n\n" + text + "\n"
            "--------------bench0boundary\nContent-Type: application/pdf; name=\"report.pdf\"\n"
            "Content-Disposition: attachment; filename=\"report.pdf\"\nContent-Transfer-Encoding: base64\n\n"
            + b64 + "\n--------------bench0boundary--\n")
PY
default_workloads=text
[[ $use_attach != 1 ]] || default_workloads="text attach"
read -r -a workloads <<<"${WORKLOADS:-$default_workloads}"

# --- postern-milter -------------------------------------------------------------------------
conf_postern() { # conf_postern CASE: $b/postern-CASE.yaml (its own state_dir: its own audit trail)
    mkdir -p "$b/state-$1"
    {
        cat <<EOF
rules: $b/rules
state_dir: $b/state-$1
timezone: UTC
user: root
milter:
  listen: unix:$msock
  pid_file: $b/milter.pid
  authserv_id: postern.bench
EOF
        case $1 in *clamd* | *both*)
            echo "clamd: {socket: 'unix:$LAB_CLAMD_SOCK', connections: 4, connect_timeout: $scan_wait}" ;;
        esac
        case $1 in *spamd* | *both*)
            echo "spamd: {socket: 'inet:127.0.0.1:$LAB_SPAMD_PORT', connections: 2, timeout: 60s, connect_timeout: $scan_wait}" ;;
        esac
    } >"$b/postern-$1.yaml"
}
start_milter() { # start_milter CASE
    conf_postern "$1"
    : >"$b/milter-$1.log"
    ip netns exec "$LAB_NS" "$milter" -f -c "$b/postern-$1.yaml" >>"$b/milter-$1.log" 2>&1 &
    mpid=$!
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q 'event=start' "$b/milter-$1.log" && return 0
        kill -0 "$mpid" 2>/dev/null || break
        sleep 0.1
    done
    say "postern-milter did not start:"; tail -5 "$b/milter-$1.log" >&2
    return 1
}
use_milter() { # use_milter SPEC ("" for none)
    lab_postconf "smtpd_milters = $1" 'milter_default_action = tempfail' \
        'smtpd_client_connection_count_limit = 0' 'smtpd_client_connection_rate_limit = 0' \
        'default_process_limit = 250' >/dev/null
    lab_postfix_reload >/dev/null
}
empty_queue() { ip netns exec "$LAB_NS" postsuper -c "$LAB_PF_CONF" -d ALL >/dev/null 2>&1 || true; }

# --- CPU ---------------------------------------------------------------------------------------
hz=$(getconf CLK_TCK)
# busy CPU time of the whole machine (all cores), in seconds, from /proc/stat
cpu_busy() { awk -v hz="$hz" '/^cpu / { print ($2 + $3 + $4 + $7 + $8) / hz; exit }' /proc/stat; }
# CPU time (user + system, all threads, and the children it reaped) of process $1, in seconds
cpu_of() {
    [[ -n $1 && -r /proc/$1/stat ]] &&
        awk -v hz="$hz" '{ sub(/^.*[)] /, ""); print ($12 + $13 + $14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}
cpu_tree() { # the CPU seconds of process $1 and its live children
    local t p kids
    t=$(cpu_of "$1")
    kids=$(cat "/proc/$1/task/$1/children" 2>/dev/null) || true
    for p in $kids; do
        t=$(calc "$t + $(cpu_of "$p")")
    done
    echo "$t"
}
# (their pid files; lab.sh's own record of them when a file is missing)
clamd_pid() { cat "$LAB_CLAMD_DIR/clamd.pid" 2>/dev/null || echo "$_LAB_CLAMD_PID"; }
spamd_pid() { cat "$LAB_SPAMD_DIR/spamd.pid" 2>/dev/null || echo "$_LAB_SPAMD_PID"; }

# queue_files: how many messages are still on their way (held ones are not)
queue_files() { find "$LAB_PF_QUEUE"/{maildrop,incoming,active,deferred} -type f 2>/dev/null | wc -l; }
empty_sink() { find "$LAB_SINK_DIR" -type f -delete 2>/dev/null || true; }

# one_run S M FILE: S sessions of M messages each (smtp-source's -m is the
# total over all sessions: S x M), from the first connection until the
# last message is delivered to smtp-sink (the queue is empty): the wall
# time in seconds.  smtp-source's own time goes to $b/last_submit; the
# CPU seconds of the machine, the milter, clamd and spamd to $b/last_cpu.
one_run() {
    local t0 t1 ts c0 c1 m0 m1 a0 a1 s0 s1 i
    empty_queue
    empty_sink
    c0=$(cpu_busy) m0=$(cpu_of "$mpid") a0=$(cpu_of "$(clamd_pid)") s0=$(cpu_tree "$(spamd_pid)")
    t0=$(date +%s.%N)
    ip netns exec "$LAB_NS" smtp-source -s "$1" -m "$(($1 * $2))" -F "$3" -f "$sender" -t "$rcpt" 127.0.0.1:25 \
        >/dev/null 2>"$b/smtp-source.err" || say "smtp-source: $(head -3 "$b/smtp-source.err")"
    ts=$(date +%s.%N)
    for ((i = 0; i < 3600; i++)); do   # delivery: up to 3 minutes more
        (($(queue_files) == 0)) && break
        sleep 0.05
    done
    t1=$(date +%s.%N)
    c1=$(cpu_busy) m1=$(cpu_of "$mpid") a1=$(cpu_of "$(clamd_pid)") s1=$(cpu_tree "$(spamd_pid)")
    (($(queue_files) == 0)) || say "warning: $(queue_files) messages still queued after 3 minutes"
    printf '%s %s %s %s\n' "$(calc "$c1 - $c0")" "$(calc "$m1 - $m0")" "$(calc "$a1 - $a0")" \
        "$(calc "$s1 - $s0")" >"$b/last_cpu"
    calc "$ts - $t0" >"$b/last_submit"
    calc "$t1 - $t0"
}

# --- checks --------------------------------------------------------------------------------------
# count_with ERE: how many messages in the sink have a line matching ERE
count_with() { find "$LAB_SINK_DIR" -type f -exec grep -l -E -- "$1" {} + 2>/dev/null | wc -l; }
# sink_check CASE WANT: the sink holds WANT messages, each with the header
# of each scanner of CASE and no X-Postern-Not-Scanned, and its first 5 and
# its last carry no header of another scanner
sink_check() {
    local want=$2 have f bad="" i v
    for ((i = 0; i < 40; i++)); do   # smtp-sink may still be closing the last file
        have=$(find "$LAB_SINK_DIR" -type f | wc -l)
        ((have >= want)) && break
        sleep 0.05
    done
    ((have == want)) || bad="$have/$want in the sink"
    # every message: the headers of its scanners, never "not scanned"
    v=$(count_with '^X-Postern-Not-Scanned:')
    [[ -n $bad ]] || ((v == 0)) || bad="$v messages with X-Postern-Not-Scanned"
    case $1 in *clamd* | *both*) v=$(count_with '^X-Virus-Status: Clean') ;; *) v=$want ;; esac
    [[ -n $bad ]] || ((v == want)) || bad="$v/$want messages with X-Virus-Status: Clean"
    case $1 in *spamd* | *both*) v=$(count_with '^X-Spam-Score:') ;; *) v=$want ;; esac
    [[ -n $bad ]] || ((v == want)) || bad="$v/$want messages with X-Spam-Score"
    for f in $(find "$LAB_SINK_DIR" -type f -printf '%T@ %p\n' | sort -n | cut -d' ' -f2- | sed -n '1,5p;$p'); do
        [[ -z $bad ]] || break
        v=$(lab_sink_header "$f" X-Virus-Status || true)
        case $1 in
        *clamd* | *both*) [[ $v == Clean ]] || bad="X-Virus-Status: '${v//$'\n'/|}' (want Clean)" ;;
        *) [[ -z $v ]] || bad="an X-Virus-Status header ($v) without clamd" ;;
        esac
        [[ -z $bad ]] || break
        v=$(lab_sink_header "$f" X-Spam-Score || true)
        case $1 in
        *spamd* | *both*) [[ $v =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || bad="X-Spam-Score: '${v//$'\n'/|}' (want one score)" ;;
        *) [[ -z $v ]] || bad="an X-Spam-Score header ($v) without spamd" ;;
        esac
        [[ -z $bad ]] || break
        v=$(lab_sink_header "$f" X-Postern-Not-Scanned || true)
        [[ -z $v ]] || bad="X-Postern-Not-Scanned: $v"
    done
    if [[ -z $bad ]]; then
        echo ok
    else
        echo "WRONG(${bad// /_})"
        say "$1: WRONG: $bad; a message in the sink:"
        [[ -z ${f:-} ]] || sed -n '/^$/q;p' "$f" >&2
    fi
}

# best_of CASE S M FILE: the best of $runs runs whose sink_check is ok (the
# best of all when none is): its time, its check in $b/best_check, its CPU
# figures in $b/best_cpu (a run cut short by a refused message is fast,
# and wrong)
best_of() {
    local best="" best_ok="" t r c
    for ((r = 0; r < runs; r++)); do
        t=$(one_run "$2" "$3" "$4")
        c=$(sink_check "$1" $(($2 * $3)))
        [[ $c == ok ]] || say "$1: run $((r + 1)) of $runs: $c"
        if [[ -z $best ]] || { [[ $c == ok ]] && [[ -z $best_ok ]]; } ||
            { [[ $c == ok || -z $best_ok ]] && (($(calc "($t < $best)"))); }; then
            best=$t
            [[ $c != ok ]] || best_ok=1
            echo "$c" >"$b/best_check"
            cp "$b/last_cpu" "$b/best_cpu"
            cp "$b/last_submit" "$b/best_submit"
        fi
    done
    echo "$best"
}

# audit_stats CASE: from the audit trail of CASE (all its runs): "N_SCAN
# N_FAILED CLAMD_MEDIAN CLAMD_P95 SPAMD_MEDIAN SPAMD_P95 SPAM_SCORE_MEDIAN"
# (ms; "-" for a scanner that did not run)
audit_stats() {
    "$ctl" -c "$b/postern-$1.yaml" audit --json --limit 0 2>"$b/audit.err" | "$py" -c '
import json, re, statistics, sys
recs = json.load(sys.stdin)
times = {"clamd": [], "spamd": []}
scores, n, failed = [], 0, 0
for r in recs:
    reason = r.get("reason") or ""
    if r.get("component") != "milter" or not re.search(r"\b(clamd|spamd)=", reason):
        continue
    n += 1
    for name in times:
        # "(N ms)" or "(N ms, W of them waiting for a connection)": the
        # call itself is N - W (W: waiting while other messages use the pool)
        m = re.search(name + r"=(\S+)[^;]*?\((\d+) ms(?:, (\d+) of them waiting for a connection)?\)", reason)
        if m:
            if m.group(1) == "failed":
                failed += 1
            times[name].append(int(m.group(2)) - int(m.group(3) or 0))
    m = re.search(r"spamd=\S+ score=(-?[0-9.]+)", reason)
    if m:
        scores.append(float(m.group(1)))
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
out = [str(n), str(failed)]
for name in ("clamd", "spamd"):
    v = times[name]
    out += ["%g" % statistics.median(v), "%g" % pct(v, 95)] if v else ["-", "-"]
out.append("%g" % statistics.median(scores) if scores else "-")
print(" ".join(out))
' || echo "0 0 - - - - -"
}

# milter_errors CASE: the warnings and errors in the milter's log
milter_errors() { grep -cE 'level=(warning|error)' "$b/milter-$1.log" 2>/dev/null || true; }

# --- the runs ----------------------------------------------------------------------------------------
results=$b/results
: >"$results"
status=0
# measure LABEL CASE S M FILE: best of $runs, checked, one line of $results:
# label secs submit check cpu milter clamd spamd n_scan n_failed c_med c_p95 s_med s_p95 score errors
measure() {
    local label=$1 kase=$2 s=$3 msgs=$4 file=$5 t check stats cpu mcpu acpu scpu submit n_before
    n_before=0
    [[ $kase == *bare ]] || n_before=$(audit_stats "$kase" | cut -d' ' -f1)
    t=$(best_of "$kase" "$s" "$msgs" "$file")
    check=$(cat "$b/best_check")
    read -r cpu mcpu acpu scpu <"$b/best_cpu"
    submit=$(cat "$b/best_submit")
    if [[ $kase == *bare ]]; then
        stats="0 0 - - - - -"
    else
        stats=$(audit_stats "$kase")
        # every message of every run of this case has its scan record
        local n_scan=${stats%% *} want=0
        [[ $kase == *off ]] || want=$((n_before + runs * s * msgs))
        if [[ $check == ok ]] && ((n_scan != want)); then
            check="WRONG($((n_scan - n_before))_scan_records_for_$((runs * s * msgs))_messages)"
            say "$label: WRONG: $((n_scan - n_before)) scan records in the audit trail for $((runs * s * msgs)) messages"
        fi
        local failed
        failed=$(cut -d' ' -f2 <<<"$stats")
        if [[ $check == ok ]] && ((failed > 0)); then
            check="WRONG(${failed}_failed_scans)"
            say "$label: WRONG: $failed failed scanner calls in the audit trail"
        fi
    fi
    [[ $check == ok ]] || status=1
    printf '%s %s %s %s %s %s %s %s %s %s\n' "$label" "$t" "$submit" "$check" "$cpu" "$mcpu" "$acpu" "$scpu" \
        "$stats" "$(milter_errors "$kase")" >>"$results"
    say "$label: $t s ($check; smtp-source done at $submit s), CPU s: machine $cpu, milter $mcpu, clamd $acpu," \
        "spamd $scpu; audit: $stats"
}

say "load before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
for w in "${workloads[@]}"; do
    say "throughput ($w): $sessions sessions x $messages messages ($(wc -c <"$b/message.$w") bytes), best of $runs"
    for kase in "${cases[@]}"; do
        if [[ $kase == bare ]]; then
            use_milter ""
        else
            start_milter "$w-$kase"
            use_milter "unix:$msock"
        fi
        measure "$w-$kase" "$w-$kase" "$sessions" "$messages" "$b/message.$w"
        use_milter ""
        stop_milter
    done
done
((lat_messages == 0)) || say "latency: 1 session x $lat_messages messages (text)"
for kase in "${cases[@]}"; do
    ((lat_messages > 0)) || break
    if [[ $kase == bare ]]; then
        use_milter ""
    else
        start_milter "lat-$kase"
        use_milter "unix:$msock"
    fi
    measure "lat-$kase" "lat-$kase" 1 "$lat_messages" "$b/message.text"
    use_milter ""
    stop_milter
done
say "load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
empty_queue

# the warnings and errors of the milter runs, for the reader
for f in "$b"/milter-*.log; do
    [[ -s $f ]] || continue
    if grep -qE 'level=(warning|error)' "$f"; then
        say "$(basename "$f"): $(grep -cE 'level=(warning|error)' "$f") warnings/errors, the first:"
        grep -E 'level=(warning|error)' "$f" | head -3 >&2
    fi
done

# --- the tables -----------------------------------------------------------------------------------------
getcol() { awk -v k="$1" -v c="$2" '$1 == k {print $c}' "$results"; }
per_msg() { # per_msg VALUE N: VALUE seconds per message, in ms ("-" stays)
    [[ $1 == - || -z $1 ]] && { echo -; return; }
    printf '%.2f' "$(calc "1000 * $1 / $2")"
}
n=$((sessions * messages))
printf '\nscanners (clamd with ONE signature: protocol and parsing, not signature matching), %s, %s cores, load %s\n' \
    "$(date +%F)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
for w in "${workloads[@]}"; do
    bare=$(getcol "$w-bare" 2)
    off_cpu=$(getcol "$w-off" 5)
    printf '\n%s: %s sessions x %s messages of %s bytes, best of %s\n' "$w" "$sessions" "$messages" \
        "$(wc -c <"$b/message.$w")" "$runs"
    printf '| run | seconds to the sink | messages/s | share of bare | check | machine CPU ms/msg |'
    printf ' machine CPU over off ms/msg | milter CPU ms/msg | clamd CPU ms/msg | spamd CPU ms/msg |'
    printf ' clamd call ms median / p95 | spamd call ms median / p95 |\n'
    printf '|---|---|---|---|---|---|---|---|---|---|---|---|\n'
    for kase in "${cases[@]}"; do
        l=$w-$kase
        secs=$(getcol "$l" 2)
        [[ -n $secs ]] || continue
        over=-
        [[ -z $off_cpu || $kase == bare || $kase == off ]] || over=$(per_msg "$(calc "$(getcol "$l" 5) - $off_cpu")" "$n")
        share=-
        [[ -z $bare ]] || share=$(printf '%.1f%%' "$(calc "100 * $bare / $secs")")
        mcpu=-
        [[ $kase == bare ]] || mcpu=$(per_msg "$(getcol "$l" 6)" "$n")
        printf '| %s | %.2f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s |\n' "$kase" "$secs" \
            "$(calc "$n / $secs")" "$share" "$(getcol "$l" 4)" "$(per_msg "$(getcol "$l" 5)" "$n")" "$over" "$mcpu" \
            "$(per_msg "$(getcol "$l" 7)" "$n")" "$(per_msg "$(getcol "$l" 8)" "$n")" \
            "$(getcol "$l" 11)" "$(getcol "$l" 12)" "$(getcol "$l" 13)" "$(getcol "$l" 14)"
    done
done
lat_table() {
    local kase l sub added mcpu lat_off
    printf '\nsingle session: 1 x %s messages (text), best of %s\n' "$lat_messages" "$runs"
    printf '| run | ms/message (smtp-source) | added over off (ms) | check | milter CPU ms/msg | clamd CPU ms/msg |'
    printf ' spamd CPU ms/msg | clamd call ms median / p95 | spamd call ms median / p95 |\n'
    printf '|---|---|---|---|---|---|---|---|---|\n'
    lat_off=$(getcol lat-off 3)
    for kase in "${cases[@]}"; do
        l=lat-$kase
        sub=$(getcol "$l" 3)
        [[ -n $sub ]] || continue
        added=-
        [[ -z $lat_off || $kase == bare || $kase == off ]] ||
            added=$(printf '%.2f' "$(calc "1000 * ($sub - $lat_off) / $lat_messages")")
        mcpu=-
        [[ $kase == bare ]] || mcpu=$(per_msg "$(getcol "$l" 6)" "$lat_messages")
        printf '| %s | %.2f | %s | %s | %s | %s | %s | %s / %s | %s / %s |\n' "$kase" \
            "$(calc "1000 * $sub / $lat_messages")" "$added" "$(getcol "$l" 4)" "$mcpu" \
            "$(per_msg "$(getcol "$l" 7)" "$lat_messages")" "$(per_msg "$(getcol "$l" 8)" "$lat_messages")" \
            "$(getcol "$l" 11)" "$(getcol "$l" 12)" "$(getcol "$l" 13)" "$(getcol "$l" 14)"
    done
}
if ((lat_messages > 0)); then
    lat_table
fi
# what each scanner call adds per message (text workload): machine CPU over
# the run without scanners, the scanner's own CPU, the milter's extra CPU,
# and the call's wall time (audit trail) alone in one session and under load
summary() {
    local kase l off_m o
    printf '\nper message, what each scanner call adds (text):\n'
    for kase in clamd spamd both; do
        l=text-$kase
        [[ -n $(getcol "$l" 2) && -n $(getcol text-off 2) ]] || continue
        off_m=$(getcol text-off 6)
        o=$(printf '%s: +%s ms machine CPU over off (own CPU: clamd %s, spamd %s; milter +%s ms)' "$kase" \
            "$(per_msg "$(calc "$(getcol "$l" 5) - $(getcol text-off 5)")" "$n")" "$(per_msg "$(getcol "$l" 7)" "$n")" \
            "$(per_msg "$(getcol "$l" 8)" "$n")" "$(per_msg "$(calc "$(getcol "$l" 6) - $off_m")" "$n")")
        if [[ -n $(getcol "lat-$kase" 3) && -n $(getcol lat-off 3) ]]; then
            o+=$(printf '; %s ms more per message in one session' \
                "$(printf '%.2f' "$(calc "1000 * ($(getcol "lat-$kase" 3) - $(getcol lat-off 3)) / $lat_messages")")")
            o+="; call ms median/p95 in one session: clamd $(getcol "lat-$kase" 11)/$(getcol "lat-$kase" 12)"
            o+=", spamd $(getcol "lat-$kase" 13)/$(getcol "lat-$kase" 14)"
        fi
        o+="; under load ($sessions sessions): clamd $(getcol "$l" 11)/$(getcol "$l" 12), spamd $(getcol "$l" 13)/$(getcol "$l" 14)"
        printf '%s\n' "$o"
    done
}
summary
score=$(getcol text-spamd 15)
[[ -z $score || $score == - ]] || printf '\nspamd score of the text message (median): %s\n' "$score"
errs=$(awk '{ s += $16 } END { print s + 0 }' "$results")
printf 'warnings/errors in the milter logs: %s\n' "$errs"
if grep -q WRONG "$results"; then
    echo "a run was WRONG"
fi
exit "$status"
