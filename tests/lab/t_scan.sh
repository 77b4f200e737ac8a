#!/usr/bin/env bash
# t_scan.sh: postern-milter's anti-virus (clamd) and anti-spam (spamd)
# scanning in front of the lab's real Postfix, with a real clamd (one
# signature: EICAR) and a real spamd (shipped rules, offline) running in
# the lab's namespace (lab.sh, "scanners"):
#  - the scanners alone first (a python client): clamd finds EICAR in a
#    MIME attachment, spamd scores GTUBE as spam;
#  - the tenants' scan rules (tests/fixtures/scan/rules.d, one tenant per
#    behaviour, each submitting from its own client address): a virus is
#    refused (550 5.7.1 naming the signature), answered 451 4.7.1, or held
#    in Postfix's hold queue; a clean message carries X-Virus-Scanned,
#    X-Virus-Status: Clean, X-Spam-Score and X-Spam-Status: No (no
#    X-Spam-Flag); GTUBE is refused (550 5.7.1 with the score), held, or
#    marked (X-Spam-Flag: YES, X-Spam-Status: Yes, score= required= tests=
#    GTUBE,...); reject_above refuses it even with action header; spamd's
#    User: is the tenant;
#  - forged scan headers (X-Spam-Flag: NO on GTUBE mail, X-Virus-*,
#    X-Postern-Not-Scanned, any case) are removed: only ours remain;
#  - a message over the tenant's scan.max_size is delivered with
#    X-Postern-Not-Scanned, and neither scanner saw it (their logs);
#  - milter.scan_memory: 4K: a ~200 KB message whose EICAR attachment comes
#    last is spilled to milter.spool_dir and still refused;
#  - inbound mail (client 127.0.0.6, no tenant's) is scanned under the
#    recipients' tenants' rules (the strictest of several), and mail to a
#    recipient of no tenant is not scanned;
#  - clamd's StreamMaxLength: a larger message is passed as not scanned
#    (X-Postern-Not-Scanned), and the next larger one is not streamed again;
#  - clamd restarted under a running milter: the kept session is replaced;
#  - scanner failures: clamd stopped under a running milter (default
#    on_failure tempfail: 451 4.3.0); clamd.on_failure: accept (delivered
#    with X-Postern-Not-Scanned naming clamd); a clamd that accepts and
#    never answers, clamd.timeout 2s (451 4.3.0, logged and audited as a
#    time-out, the recorded time below 12 s, one connection); a spamd
#    answering garbage (spamd.on_failure accept: X-Postern-Not-Scanned
#    naming spamd, each message sent to it once, the next one served);
#  - every scanned message has its audit record (posternctl audit --json)
#    with the verdicts and the time taken in its reason.
# Three milter runs (scanner settings take a restart).  Condition waits
# only; no wall-clock assertion.  A failed check prints FAIL and the test
# goes on; exit 1 at the end.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${POSTERN_BUILD:-$top/build/werror}
# shellcheck source=lab.sh
. "$top/tests/lab/lab.sh"

milter=${MILTER:-$build/milter/postern-milter}   # MILTER: e.g. a valgrind wrapper
ctl=$build/ctl/posternctl
py=/usr/bin/python3
[ -x "$milter" ] || lab_fail "no $milter (build first)"
[ -x "$ctl" ] || lab_fail "no $ctl (build first)"
for tool in clamd spamd; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
        lab_fail "$tool is missing (contrib/install-deps.sh)"
done
lab_up

m=$LAB_DIR/milter
rules=$m/rules.d
conf=$m/postern.yaml
mlog=$m/milter.log
msock=$LAB_PF_QUEUE/private/postern-milter
spool=$m/spool
inbound_client=127.0.0.6      # no tenant's client network, no SASL: inbound mail
mkdir -p "$rules" "$spool"
chmod 0755 "$m" "$rules"
chown nobody "$spool"
chmod 0700 "$spool"
cp "$top"/tests/fixtures/scan/rules.d/*.yaml "$rules/"
"$ctl" -r "$rules" check >/dev/null || lab_fail "posternctl check refuses the test's rules"

failures=0
say_fail() { # say_fail DESCRIPTION [DETAIL...]
    printf 'FAIL: %s\n' "$1"
    shift
    [ $# -gt 0 ] && printf '    %s\n' "$@"
    failures=$((failures + 1))
}
check() { # check DESCRIPTION CMD...: PASS or FAIL, and go on
    local what=$1; shift
    if "$@"; then lab_ok "$what"; else say_fail "$what"; fi
}
log_count() { grep -cE -- "$1" "$mlog" 2>/dev/null || true; }
log_has_n() { (($(log_count "$1") >= $2)); }

# --- teardown: the milter, the fake scanners, the scanners, then the lab ---------
fake_pids=()
cleanup() {
    local rc=$? p
    trap '' INT TERM HUP
    [ -n "$LAB_MILTER_PID" ] && kill -TERM "$LAB_MILTER_PID" 2>/dev/null && wait "$LAB_MILTER_PID" 2>/dev/null
    for p in "${fake_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    lab_clamd_stop
    lab_spamd_stop
    lab_down || rc=1
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- the scanners (spamd takes a few seconds: it starts first) ----------------------
lab_spamd_start --no-wait || lab_fail "spamd did not start"
lab_clamd_start 'LogClean yes' || lab_fail "clamd did not start"

# --- messages ------------------------------------------------------------------------
# Written by python: the EICAR string comes from lab_eicar and never sits
# in a file of the tree.  CRLF line ends; every file its own Message-ID.
msg=$m/msg
"$py" - "$msg" "$(lab_eicar)" "$(lab_gtube)" "$$" <<'PY'
import base64, sys
prefix, eicar, gtube, pid = sys.argv[1:5]
text = ("Hello,\r\n\r\nthe minutes of Tuesday's meeting are below; the next meeting is on\r\n"
        "Thursday at ten, in the usual room.  Please bring the figures.\r\n\r\nRegards,\r\nSam\r\n")
def head(name, extra=()):
    return "".join(h + "\r\n" for h in list(extra) + [
        "From: Sam Sender <sam@remote.example>", "To: Reader <reader@lab.test>",
        "Subject: scan test %s" % name, "Date: Sat, 28 Nov 2026 12:00:00 +0000",
        "Message-ID: <scan-%s.%s@remote.example>" % (name, pid), "MIME-Version: 1.0"])
def plain(name, body, extra=()):
    return head(name, extra) + "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body
def with_attachment(name, body):
    b64 = base64.encodebytes(eicar.encode()).decode().replace("\n", "\r\n")
    return (head(name) + 'Content-Type: multipart/mixed; boundary="b-%s"\r\n\r\n' % name
            + "--b-%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n" % (name, body)
            + "--b-%s\r\nContent-Type: application/octet-stream; name=\"test.com\"\r\n" % name
            + "Content-Transfer-Encoding: base64\r\n"
            + "Content-Disposition: attachment; filename=\"test.com\"\r\n\r\n" + b64
            + "--b-%s--\r\n" % name)
filler = "".join("line %06d of a long report, nothing in it but words and numbers\r\n" % i
                 for i in range(4000))        # ~270 KB
out = {
    "clean": plain("clean", text),
    "virus": with_attachment("virus", text),
    "gtube": plain("gtube", text + "\r\n" + gtube + "\r\n"),
    "forged": plain("forged", text + "\r\n" + gtube + "\r\n", [
        "X-Spam-Flag: NO", "x-spam-score: -5.0 forged", "X-Spam-Status: No, score=-5.0 forged",
        "X-Virus-Scanned: forged", "X-VIRUS-STATUS: Clean forged", "X-Postern-Not-Scanned: forged"]),
    "big": plain("big", text + filler[:300 * 1024]),
    "spill": with_attachment("spill", text + filler[:200 * 1024]),
    "huge": plain("huge", text + filler * 6),       # ~1.6 MB: over clamd's StreamMaxLength 1M
    "huge2": plain("huge2", text + filler * 7),
}
for k, v in out.items():
    open("%s.%s" % (prefix, k), "w", newline="").write(v)
PY
[ -s "$msg.spill" ] || lab_fail "the test messages were not written"
mid_of() { sed -n 's/^Message-ID: <\(.*\)>\r$/\1/p' "$1"; }

# --- the scanners alone ----------------------------------------------------------------
got=$(lab_clamd_scan "$msg.virus" 2>&1)
check "the lab's clamd finds EICAR in a MIME attachment ($got)" \
    test "$got" = "stream: Eicar-Test-Signature.UNOFFICIAL FOUND"
got=$(lab_clamd_scan "$msg.clean" 2>&1)
check "the lab's clamd finds nothing in a plain message ($got)" test "$got" = "stream: OK"
lab_spamd_wait || lab_fail "spamd did not come up"
got=$(lab_spamd_check "$msg.gtube" 2>&1 | grep '^Spam:')
check "the lab's spamd scores GTUBE as spam ($got)" grep -qE '^Spam: True ; [0-9]{4}' <<<"$got"
got=$(lab_spamd_check "$msg.clean" 2>&1 | grep '^Spam:')
check "the lab's spamd scores a plain message below 5 ($got)" grep -qE '^Spam: False ; ' <<<"$got"

# --- the daemon ------------------------------------------------------------------------
write_conf() { # write_conf FILE CLAMD_YAML SPAMD_YAML: postern.yaml with these scanner sections
    cat >"$1" <<YAML
rules: $rules
state_dir: $m/state
timezone: UTC
user: nobody
log_level: info
milter:
  listen: unix:$msock
  on_error: tempfail
  pid_file: $m/milter.pid
  authserv_id: mx.lab.test
  scan_memory: 4K
  spool_dir: $spool
clamd: $2
spamd: $3
YAML
}
write_conf "$conf" "unix:$LAB_CLAMD_SOCK" "inet:127.0.0.1:$LAB_SPAMD_PORT"

start_milter() { lab_milter_start "$milter" "$1" "$mlog"; } # start_milter CONF
use_milter() { lab_use_milter "$1"; }
stop_milter() { lab_milter_stop; }

# --- sending and looking -------------------------------------------------------------------
reply=
send() { # send CLIENT_IP RCPT[,RCPT...] FILE: $reply = the answer to the message
    local rc=0
    lab_send --local-interface "$1" --from "sender@remote.example" --to "$2" --data "@$3" || rc=$?
    reply=$(lab_reply)
    return "$rc"
}
held_id() { # held_id RCPT: the queue id of a message to RCPT in the hold queue
    lab_exec postqueue -c "$LAB_PF_CONF" -j 2>/dev/null | "$py" -c '
import json, sys
for line in sys.stdin:
    q = json.loads(line)
    if q.get("queue_name") == "hold" and any(r.get("address") == sys.argv[1] for r in q.get("recipients", [])):
        print(q["queue_id"])
        sys.exit(0)
sys.exit(1)' "$1"
}
held() { held_id "$1" >/dev/null; }
hdr() { lab_sink_header "$@" 2>/dev/null || true; }  # hdr FILE NAME: the values, one per line ("" if none)
hdr_n() { hdr "$@" | grep -c . || true; }            # hdr_n FILE NAME: how many
one_match() { [ "$(grep -c . <<<"$1")" = 1 ] && [[ $1 =~ $2 ]]; }  # one_match VALUES ERE: one line, matching
lacks() { ! grep -qF -- "$1" "$2"; }                 # lacks STRING FILE
# names VALUE WORD [!WORD]: VALUE (one line) holds WORD and not the other
names() { [ "$(grep -c . <<<"$1")" = 1 ] && grep -q "$2" <<<"$1" && { [ -z "${3:-}" ] || ! grep -q "${3#!}" <<<"$1"; }; }

# expect WHAT CLIENT RCPT FILE REPLY_RE [AUDIT_ACTION AUDIT_RULE_RE AUDIT_REASON_RE [TENANT]]:
# send, check the reply (an ERE over the whole line), remember what the
# audit record of RCPT (the first recipient) must say (TENANT: whose rule
# decided, default the one of RCPT's domain); for an accepted and
# not held message, wait for it at the sink ($f: its dump file, "" if none).
audit_cases=()
US=$'\x1f'   # separates the fields of an audit case (the regexes hold "|")
f=
expect() {
    local what=$1 client=$2 rcpts=$3 file=$4 want=$5
    local rcpt=${rcpts%%,*}
    f=
    send "$client" "$rcpts" "$file"
    if [[ $reply =~ $want ]]; then
        lab_ok "$what: $reply"
    else
        say_fail "$what: the answer" "want: /$want/" "got:  $reply"
    fi
    local tenant=${9:-${rcpt#*@}}
    [ $# -ge 8 ] && audit_cases+=("$what$US$rcpt$US$6$US$7$US$8$US${tenant%.example}")
    if [ "${reply%% *}" = 250 ] && [ "${6:-accept}" != quarantine ]; then
        if lab_wait_for 60 lab_sink_has_rcpt "$rcpt"; then
            f=$(lab_sink_file_of "$rcpt")
        else
            say_fail "$what: the message reached the sink"
        fi
    fi
}
# held_ok WHAT RCPT: in the hold queue (not at the sink), the hold logged by Postfix; $held_hdr: its headers
held_hdr=$m/held.hdr
held_ok() {
    local qid
    : >"$held_hdr"
    if ! lab_wait_for 60 held "$2"; then
        say_fail "$1: the message waits in Postfix's hold queue"
        return
    fi
    lab_ok "$1: the message waits in Postfix's hold queue"
    check "$1: the message did not reach the sink" test -z "$(grep -rlF "<$2>" "$LAB_SINK_DIR")"
    qid=$(held_id "$2")
    lab_exec postcat -c "$LAB_PF_CONF" -h -q "$qid" >"$held_hdr" 2>/dev/null
    check "$1: Postfix logged the milter's hold of $qid" \
        grep -qE "$qid: milter-hold: END-OF-MESSAGE from .*: milter triggers HOLD action" "$LAB_MAILLOG"
}
# X-Spam-Status folds its tests list after a comma: the unfolded value has
# white space there, taken out here
unfold_tests() { sed -E ':a; s/(tests=[^ ]*,)[[:space:]]+/\1/; ta'; }
# the spam headers of a message at or above the threshold, checked together
spam_yes_ok() { # spam_yes_ok WHAT FILE THRESHOLD_RE
    local score status
    score=$(hdr "$2" X-Spam-Score)
    status=$(hdr "$2" X-Spam-Status | unfold_tests)
    check "$1: one X-Spam-Flag: YES ($(hdr "$2" X-Spam-Flag | tr '\n' '|'))" test "$(hdr "$2" X-Spam-Flag | tr '\n' '|')" = "YES|"
    check "$1: one X-Spam-Score, GTUBE's ($score)" \
        one_match "$score" '^[0-9]{4}(\.[0-9]+)?$'
    check "$1: X-Spam-Status: Yes, score=$score required=$3 tests=GTUBE,... ($status)" \
        grep -qE "^Yes, score=${score//./\\.} required=$3 tests=([A-Z0-9_]+,)*GTUBE(,[A-Z0-9_]+)*\$" <<<"$status"
}
virus_clean_ok() { # virus_clean_ok WHAT FILE
    check "$1: X-Virus-Scanned: clamd at mx.lab.test ($(hdr "$2" X-Virus-Scanned | tr '\n' '|'))" \
        test "$(hdr "$2" X-Virus-Scanned | tr '\n' '|')" = "clamd at mx.lab.test|"
    check "$1: X-Virus-Status: Clean ($(hdr "$2" X-Virus-Status | tr '\n' '|'))" \
        test "$(hdr "$2" X-Virus-Status | tr '\n' '|')" = "Clean|"
}
spam_no_ok() { # spam_no_ok WHAT FILE THRESHOLD_RE
    local score status
    score=$(hdr "$2" X-Spam-Score)
    status=$(hdr "$2" X-Spam-Status | unfold_tests)
    check "$1: no X-Spam-Flag" test "$(hdr_n "$2" X-Spam-Flag)" = 0
    check "$1: one X-Spam-Score below 5 ($score)" \
        one_match "$score" '^-?[0-4](\.[0-9]+)?$'
    check "$1: X-Spam-Status: No, score=$score required=$3 tests=... ($status)" \
        grep -qE "^No, score=${score//./\\.} required=$3 tests=([A-Z0-9_]+(,[A-Z0-9_]+)*|none)\$" <<<"$status"
}
spamd_user_of() { # spamd_user_of MESSAGE_FILE: the User: spamd saw for its last check of that message
    grep -F "checking message <$(mid_of "$1")> for " "$LAB_SPAMD_LOG" | tail -1 | sed -E 's/.* for ([^:]*):.*/\1/'
}

# Audit reasons (scan_summarize() in milter/scan.c): each scanner's verdict
# and its time in ms.
ms='[0-9]+ ms(, [0-9]+ of them waiting for a connection)?'
A_CLEAN="clamd=clean \\($ms\\)"
A_VIRUS="clamd=virus Eicar-Test-Signature\\.UNOFFICIAL \\($ms\\)"
A_SPAM="spamd=spam score=[0-9]{4}\\.[0-9] threshold=5\\.0 tests=([A-Z0-9_]+,)*GTUBE[A-Z0-9_,]* \\($ms\\)"
A_HAM="spamd=ham score=-?[0-9.]+ threshold=5\\.0 tests=[^ ]+ \\($ms\\)"

start_milter "$conf"
use_milter "unix:$msock"
check "at start, the milter logged clamd there (its version)" \
    grep -qE 'level=info event=scanner scanner=clamd socket=unix:.* status=ok answer="ClamAV [0-9]' "$mlog"
check "at start, the milter logged spamd there" \
    grep -qE 'level=info event=scanner scanner=spamd socket=inet:127\.0\.0\.1:[0-9]+ status=ok answer="SPAMD/[0-9.]+ 0 PONG"' "$mlog"
got=$(lab_exec "$ctl" -c "$conf" scanners 2>&1) && rc=0 || rc=$?
check "posternctl scanners: both answer, exit 0 ($got)" \
    test "$rc" = 0 -a "$(grep -cE '^(clamd|spamd)  .*  ok  [0-9]+ ms  ' <<<"$got")" = 2

# --- viruses ----------------------------------------------------------------------------------
t=127.0.0.2   # dflt: antivirus reject, spam header at 5.0
expect "virus, antivirus reject (defaults)" $t virus@dflt.example "$msg.virus" \
    '^550 5\.7\.1 .*virus.*Eicar-Test-Signature\.UNOFFICIAL' reject '^scan' "$A_VIRUS"
check "virus, antivirus reject: the reply names the signature exactly" \
    test "$reply" = "550 5.7.1 virus found: Eicar-Test-Signature.UNOFFICIAL"
expect "virus, antivirus tempfail" 127.0.0.3 virus@avtemp.example "$msg.virus" '^451 4\.7\.1 ' \
    tempfail '^scan' "$A_VIRUS"
expect "virus, antivirus quarantine" 127.0.0.4 virus@avquar.example "$msg.virus" '^250 ' \
    quarantine '^scan' "$A_VIRUS"
held_ok "virus, antivirus quarantine" virus@avquar.example
got=$(hdr "$held_hdr" X-Virus-Status)
check "virus, antivirus quarantine: the held message says X-Virus-Status: Infected ... ($got)" \
    grep -qE '^Infected.*Eicar-Test-Signature\.UNOFFICIAL' <<<"$got"

# --- clean mail ---------------------------------------------------------------------------------
expect "clean message, defaults" $t clean@dflt.example "$msg.clean" '^250 ' accept '^scan' "$A_CLEAN.*$A_HAM"
if [ -n "$f" ]; then
    virus_clean_ok "clean message" "$f"
    spam_no_ok "clean message" "$f" '5(\.0+)?'
    check "clean message: no X-Postern-Not-Scanned" test "$(hdr_n "$f" X-Postern-Not-Scanned)" = 0
fi
check "clean message: spamd's User: is the tenant ($(spamd_user_of "$msg.clean"))" \
    test "$(spamd_user_of "$msg.clean")" = dflt

# --- spam ---------------------------------------------------------------------------------------
expect "GTUBE, spam action header (defaults)" $t gtube@dflt.example "$msg.gtube" '^250 ' accept '^scan' "$A_SPAM"
if [ -n "$f" ]; then
    spam_yes_ok "GTUBE, action header" "$f" '5(\.0+)?'
    virus_clean_ok "GTUBE, action header" "$f"
fi
expect "GTUBE, spam action reject" 127.0.0.5 gtube@spamrej.example "$msg.gtube" \
    '^550 5\.7\.1 .*[Ss]pam.*[0-9]{4}' reject '^scan' "$A_SPAM"
expect "GTUBE, spam action quarantine" 127.0.0.7 gtube@spamquar.example "$msg.gtube" '^250 ' \
    quarantine '^scan' "$A_SPAM"
held_ok "GTUBE, spam action quarantine" gtube@spamquar.example
check "GTUBE, spam action quarantine: the held message has X-Spam-Flag: YES" \
    test "$(hdr "$held_hdr" X-Spam-Flag)" = YES
expect "GTUBE, action header but reject_above 15" 127.0.0.8 gtube@rejabove.example "$msg.gtube" \
    '^550 5\.7\.1 .*[Ss]pam.*[0-9]{4}' reject '^scan' "$A_SPAM"
expect "clean message, action header, reject_above 15" 127.0.0.8 clean@rejabove.example "$msg.clean" '^250 ' \
    accept '^scan' "$A_CLEAN.*$A_HAM"
[ -n "$f" ] && spam_no_ok "clean message, reject_above 15" "$f" '5(\.0+)?'

# --- forged scan headers --------------------------------------------------------------------------
expect "GTUBE with forged X-Spam-*/X-Virus-*/X-Postern-Not-Scanned headers" $t forged@dflt.example \
    "$msg.forged" '^250 ' accept '^scan' "$A_SPAM"
if [ -n "$f" ]; then
    spam_yes_ok "forged headers" "$f" '5(\.0+)?'
    virus_clean_ok "forged headers" "$f"
    check "forged headers: none of the forged values is left" \
        test -z "$(sed '/^\r\?$/q' "$f" | grep -iE '^X-(Spam|Virus|Postern)-.*(forged|: NO)')"
    check "forged headers: no X-Postern-Not-Scanned" test "$(hdr_n "$f" X-Postern-Not-Scanned)" = 0
fi

# --- max_size ---------------------------------------------------------------------------------------
clamd_scans() { grep -c 'instream(' "$LAB_CLAMD_LOG" 2>/dev/null || true; }
n_clamd=$(clamd_scans)
expect "a 300 KB message over scan.max_size 100K" 127.0.0.9 big@small.example "$msg.big" '^250 ' \
    accept '^scan' 'max_size|too large|over'
if [ -n "$f" ]; then
    got=$(hdr "$f" X-Postern-Not-Scanned)
    check "over max_size: X-Postern-Not-Scanned names clamd and spamd ($got)" \
        test -n "$(grep clamd <<<"$got")" -a -n "$(grep spamd <<<"$got")"
    check "over max_size: no X-Virus-Scanned, no X-Spam-Score" \
        test "$(hdr_n "$f" X-Virus-Scanned)$(hdr_n "$f" X-Spam-Score)" = 00
fi
check "over max_size: clamd scanned nothing meanwhile ($n_clamd -> $(clamd_scans) scans in its log)" \
    test "$(clamd_scans)" = "$n_clamd"
check "over max_size: spamd never saw the message" lacks "<$(mid_of "$msg.big")>" "$LAB_SPAMD_LOG"
expect "the same 300 KB message to a tenant with max_size 10M: scanned (and spilled)" $t big@dflt.example "$msg.big" \
    '^250 ' accept '^scan' "$A_CLEAN"
[ -n "$f" ] && virus_clean_ok "300 KB message, max_size 10M" "$f"

# --- spill to disk (milter.scan_memory: 4K) ------------------------------------------------------------
expect "a ~200 KB message, EICAR attached last, scan_memory 4K (spilled to the spool)" $t spill@dflt.example \
    "$msg.spill" '^550 5\.7\.1 .*Eicar-Test-Signature\.UNOFFICIAL' reject '^scan' "$A_VIRUS"
check "the spool directory is left empty (its files are never linked)" \
    test -z "$(find "$spool" -mindepth 1 -print -quit)"

# --- clamd's StreamMaxLength (1M in the lab) ---------------------------------------------------------------
clamd_lines() { grep -ciE 'instream|size limit' "$LAB_CLAMD_LOG" 2>/dev/null || true; }
expect "a 1.6 MB message, over clamd's StreamMaxLength (max_size 10M, spam off)" 127.0.0.3 huge@avtemp.example \
    "$msg.huge" '^250 ' accept '^scan' 'clamd=not-scanned .*StreamMaxLength'
if [ -n "$f" ]; then
    got=$(hdr "$f" X-Postern-Not-Scanned)
    check "over StreamMaxLength: X-Postern-Not-Scanned names clamd and its limit ($got)" \
        one_match "$got" "^clamd: .*StreamMaxLength"
    check "over StreamMaxLength: no X-Virus-Scanned" test "$(hdr_n "$f" X-Virus-Scanned)" = 0
fi
n_clamd=$(clamd_lines)
expect "a larger message right after: not streamed to clamd again (the limit is remembered)" 127.0.0.3 \
    huge2@avtemp.example "$msg.huge2" '^250 ' accept '^scan' 'clamd=not-scanned .*StreamMaxLength'
[ -n "$f" ] && check "after StreamMaxLength: X-Postern-Not-Scanned names clamd" \
    one_match "$(hdr "$f" X-Postern-Not-Scanned)" "^clamd: .*StreamMaxLength"
check "after StreamMaxLength: clamd's log shows no new stream ($n_clamd -> $(clamd_lines) lines)" \
    test "$(clamd_lines)" = "$n_clamd"
expect "a clean message after the refused ones: scanned by clamd" 127.0.0.3 afterhuge@avtemp.example \
    "$msg.clean" '^250 ' accept '^scan' "$A_CLEAN"
[ -n "$f" ] && virus_clean_ok "after StreamMaxLength, a small message" "$f"

# --- inbound mail: the recipients' tenants' rules ----------------------------------------------------------
i=$inbound_client
expect "inbound virus to a tenant's domain (dflt: antivirus reject)" $i in-virus@dflt.example,x@remote.example \
    "$msg.virus" '^550 5\.7\.1 .*Eicar-Test-Signature\.UNOFFICIAL' reject '^scan' "$A_VIRUS"
expect "inbound GTUBE to a tenant with spam action reject" $i in-gtube@spamrej.example "$msg.gtube" \
    '^550 5\.7\.1 .*[Ss]pam.*[0-9]{4}' reject '^scan' "$A_SPAM"
expect "inbound GTUBE to dflt (header) and spamrej (reject): the strictest, reject" $i \
    in-gtube2@dflt.example,in-gtube2@spamrej.example "$msg.gtube" '^550 5\.7\.1 .*[Ss]pam.*[0-9]{4}' \
    reject '^scan' "$A_SPAM" spamrej
expect "inbound clean message to a tenant's domain" $i in-clean@dflt.example "$msg.clean" '^250 ' \
    accept '^scan' "$A_CLEAN"
[ -n "$f" ] && virus_clean_ok "inbound clean message" "$f"
check "inbound clean message: spamd's User: is the recipient's tenant ($(spamd_user_of "$msg.clean"))" \
    test "$(spamd_user_of "$msg.clean")" = dflt
expect "inbound GTUBE to a recipient of no tenant: not scanned" $i nobody@remote.example "$msg.gtube" '^250 '
if [ -n "$f" ]; then
    check "no tenant: no scan header at all" test "$(hdr_n "$f" X-Virus-Scanned)$(hdr_n "$f" X-Spam-Flag)$(hdr_n "$f" X-Spam-Status)$(hdr_n "$f" X-Postern-Not-Scanned)" = 0000
fi

# --- clamd restarts, then goes away, under the running milter ------------------------------------------
# The milter keeps its clamd sessions (IDSESSION) between messages: after a
# restart the kept one is closed, and the message goes on a new connection.
lab_clamd_stop
lab_clamd_start 'LogClean yes' || lab_fail "clamd did not start again"
expect "clamd restarted: the kept session is stale, a new connection scans" $t restarted@dflt.example "$msg.clean" \
    '^250 ' accept '^scan' "$A_CLEAN"
[ -n "$f" ] && virus_clean_ok "clamd restarted" "$f"
lab_clamd_stop
got=$(lab_exec "$ctl" -c "$conf" scanners --json 2>&1) && rc=0 || rc=$?
check "posternctl scanners --json: clamd down, spamd ok, exit 1" \
    "$py" -c 'import json, sys; a = {o["scanner"]: o for o in json.loads(sys.argv[1])}
sys.exit(0 if sys.argv[2] == "1" and a["clamd"]["status"] == "down" and a["clamd"]["error"]
         and a["spamd"]["status"] == "ok" else 1)' "$got" "$rc"
expect "clamd stopped, clamd.on_failure tempfail (default)" $t down@dflt.example "$msg.clean" '^451 4\.3\.0 ' \
    tempfail '^clamd\.|^scan' 'clamd'
check "postern-milter is still running" kill -0 "$LAB_MILTER_PID"
stop_milter

# --- run 2: clamd.on_failure: accept ---------------------------------------------------------------------------
write_conf "$m/postern-accept.yaml" "{socket: 'unix:$LAB_CLAMD_SOCK', on_failure: accept}" \
    "inet:127.0.0.1:$LAB_SPAMD_PORT"
start_milter "$m/postern-accept.yaml"
use_milter "unix:$msock"
expect "clamd stopped, clamd.on_failure accept" $t down-accept@dflt.example "$msg.clean" '^250 ' \
    accept '^clamd\.|^scan' "clamd.*$A_HAM"
if [ -n "$f" ]; then
    got=$(hdr "$f" X-Postern-Not-Scanned)
    check "clamd down, on_failure accept: X-Postern-Not-Scanned names clamd ($got)" \
        names "$got" clamd '!spamd'
    check "clamd down, on_failure accept: no X-Virus-Scanned / X-Virus-Status" \
        test "$(hdr_n "$f" X-Virus-Scanned)$(hdr_n "$f" X-Virus-Status)" = 00
    spam_no_ok "clamd down, spamd up" "$f" '5(\.0+)?'
fi
stop_milter
lab_spamd_stop

# --- run 3: a clamd that never answers, a spamd that answers garbage -------------------------------------------
silent=$m/silent.sock
garbage_port=7831
fake_log=$m/fake.log
# silent: accepts, reads everything, never answers; garbage: reads one
# SPAMC request, answers nonsense, closes.  Both log "connection N".
ip netns exec "$LAB_NS" "$py" -c '
import os, socket, sys, threading
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o666)
s.listen(16)
n = 0
def drain(c):
    while c.recv(65536):
        pass
while True:
    c, _ = s.accept()
    n += 1
    print("silent connection %d" % n, flush=True)
    threading.Thread(target=drain, args=(c,), daemon=True).start()
' "$silent" </dev/null >>"$fake_log" 2>&1 &
fake_pids+=($!)
ip netns exec "$LAB_NS" "$py" -c '
import socket, sys
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
n = 0
while True:
    c, _ = s.accept()
    n += 1
    print("garbage connection %d" % n, flush=True)
    c.settimeout(30)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            data += c.recv(65536) or b"\r\n\r\n"
        head, _, body = data.partition(b"\r\n\r\n")
        want = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                want = int(line.split(b":")[1])
        while len(body) < want:
            chunk = c.recv(65536)
            if not chunk:
                break
            body += chunk
        c.sendall(b"HELLO THERE 42\r\nWhat: is this\r\n\r\n\x01\x02garbage\r\n")
    except OSError:
        pass
    c.close()
' "$garbage_port" </dev/null >>"$fake_log" 2>&1 &
fake_pids+=($!)
lab_wait_for 60 test -S "$silent" || lab_fail "the silent clamd did not start"
lab_wait_for 60 lab_exec bash -c "exec 3<>/dev/tcp/127.0.0.1/$garbage_port" 2>/dev/null ||
    lab_fail "the garbage spamd did not start"
write_conf "$m/postern-broken.yaml" "{socket: 'unix:$silent', timeout: 2s}" \
    "{socket: 'inet:127.0.0.1:$garbage_port'}"
start_milter "$m/postern-broken.yaml"
use_milter "unix:$msock"
# the probe's connections and the milter's check at start (event=scanner)
n_garbage0=$(grep -c 'garbage connection' "$fake_log")
n_silent0=$(grep -c 'silent connection' "$fake_log")
check "at start, the milter logged the silent clamd down (timed out)" \
    grep -qE 'level=warning event=scanner scanner=clamd .*status=down error="timeout after 2000 ms"' "$mlog"
check "at start, the milter logged the garbage spamd down" \
    grep -qE 'level=warning event=scanner scanner=spamd .*status=down error="spamd answered ' "$mlog"

n_log=$(log_count 'clamd')
expect "clamd never answers, clamd.timeout 2s, on_failure tempfail" 127.0.0.3 slow@avtemp.example "$msg.clean" \
    '^451 4\.3\.0 ' tempfail '^clamd\.|^scan' 'clamd.*(timed out|timeout)'
check "clamd time-out: the milter logged it" \
    grep -qiE 'timed out|timeout' <<<"$(grep -E clamd "$mlog" | tail -n +$((n_log + 1)))"
check "clamd time-out: the silent clamd got one connection (a time-out is not retried)" \
    test "$(($(grep -c 'silent connection' "$fake_log") - n_silent0))" = 1

expect "spamd answers garbage, spamd.on_failure accept (default)" 127.0.0.5 garbage@spamrej.example "$msg.clean" \
    '^250 ' accept '^spamd\.|^scan' 'spamd'
if [ -n "$f" ]; then
    got=$(hdr "$f" X-Postern-Not-Scanned)
    check "spamd garbage: X-Postern-Not-Scanned names spamd ($got)" \
        names "$got" spamd '!clamd'
    check "spamd garbage: no X-Spam-* header" test "$(hdr_n "$f" X-Spam-Score)$(hdr_n "$f" X-Spam-Flag)" = 00
fi
expect "spamd answers garbage: the next message is served too" 127.0.0.5 garbage2@spamrej.example "$msg.gtube" \
    '^250 ' accept '^spamd\.|^scan' 'spamd'
check "spamd garbage: each message was sent to it once" \
    test "$(($(grep -c 'garbage connection' "$fake_log") - n_garbage0))" = 2
check "postern-milter is still running" kill -0 "$LAB_MILTER_PID"
stop_milter
check "SIGTERM: the daemon stopped cleanly" log_has_n 'event=stop .*status=0' 3

# --- the audit records ---------------------------------------------------------------------------------------
audit_of() { # audit_of RCPT: "action|rule|tenant|reason" of each scan record of RCPT
    "$ctl" -c "$conf" audit --json --recipient "$1" 2>/dev/null | "$py" -c '
import json, sys
for r in json.load(sys.stdin):
    rule = r.get("rule") or ""
    if r.get("component") == "milter" and (rule.startswith("scan") or rule.startswith("clamd.") or rule.startswith("spamd.")):
        print("%s|%s|%s|%s" % (r.get("action"), rule, r.get("tenant"), r.get("reason")))'
}
for c in "${audit_cases[@]}"; do
    IFS=$US read -r what rcpt action rule_re reason_re tenant <<<"$c"
    got=$(audit_of "$rcpt")
    IFS='|' read -r g_action g_rule g_tenant g_reason <<<"$got"
    if [ "$(grep -c . <<<"$got")" = 1 ] && [ "$g_action" = "$action" ] && [[ $g_rule =~ $rule_re ]] &&
        [ "$g_tenant" = "$tenant" ] && [[ $g_reason =~ $reason_re ]]; then
        lab_ok "$what: audit record $got"
    else
        say_fail "$what: audit record of $rcpt (action|rule|tenant|reason)" \
            "want: $action|/$rule_re/|$tenant|/$reason_re/" "got:  ${got:-(none)}"
    fi
done
# the recorded time of the clamd time-out: within timeout + 10 s
slow=$(audit_of slow@avtemp.example)
t_ms=$(grep -oE 'clamd=[^;]*' <<<"$slow" | grep -oE '\([0-9]+ ms\)' | head -1 | tr -dc 0-9)
in_range() { [ -n "$1" ] && (($1 >= $2 && $1 < $3)); }
check "clamd time-out: the recorded time (${t_ms:-?} ms) is between 1 s and 12 s" in_range "$t_ms" 1000 12000

if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$mlog"; then
    grep -E 'Sanitizer|runtime error' "$mlog" | head -5
    say_fail "sanitizer reports in $mlog"
fi
((failures == 0)) || lab_fail "$failures check(s) failed"
lab_ok "postern-milter scanning: all done"
