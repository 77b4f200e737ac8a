#!/usr/bin/env bash
# t_ctl_maillog.sh: posternctl ingest + bounces + trace against real Postfix
# logs.  A second Postfix in the lab (lab_receiver_up: mx2.lab.test on
# 127.0.0.11, MX of remote2.example) plays the remote receiver and answers
# RCPT TO per recipient from an access map: 550 5.1.1, 552 5.2.2, 554 5.7.1,
# 450 4.2.0, and accepts a fifth recipient.  One message each from
# news@acme.example (tenant acme by its sender's domain) is sent through the
# lab's Postfix; once its log shows each outcome, "posternctl ingest
# $LAB_MAILLOG" reads it and
#  - bounces --json has one row per class under acme and remote2.example,
#    with the receiver's reply text as example: unknown_user (5.1.1),
#    mailbox_full (5.2.2), policy (5.7.1), and the 450 4.2.0 deferral as
#    "other" (rules of lib/bounce.c: no specific-code rule for ?.2.0, ?.7.x
#    and ?.4.x do not apply, and its reply "Try again later" matches no text
#    rule); the accepted recipient is not counted;
#  - trace ADDRESS (text and --json) of each recipient shows qmgr's
#    "queued", the delivery with its dsn, status and the remote reply text,
#    and the final state: bounced / deferred, still queued / delivered.
# The lab's Postfix gets a long backoff here, so that the 450 recipient is
# tried once (no waiting for retries, one deferral to count).
# Prints one PASS:/FAIL: line per check; uses POSTERN_BUILD like tests/run.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=tests/lab/lab.sh
source "$here/lab.sh"
build=${POSTERN_BUILD:-$top/build/werror}
ctl=$build/ctl/posternctl

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { # check NAME CMD...: CMD exits 0
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

[ -x "$ctl" ] || { fail "no $ctl (build first)"; exit 1; }
command -v python3 >/dev/null || { fail "python3 is not installed"; exit 1; }
lab_up || { fail "the lab does not come up"; exit 1; }

# The receiver's answers, by recipient (access(5) lines).
d=remote2.example
lab_receiver_up \
    "gone@$d 550 5.1.1 No such user here" \
    "full@$d 552 5.2.2 Mailbox full, try again much later" \
    "spam@$d 554 5.7.1 Message refused by local policy" \
    "later@$d 450 4.2.0 Try again later" ||
    { fail "the receiver does not come up"; exit 1; }
pass "receiver up on $LAB_RCV_ADDR:25 as MX of $d"
# One try for the 450: retries an hour away (lab default: 1 s).
if ! lab_postconf 'minimal_backoff_time = 3600s' 'maximal_backoff_time = 3600s' || ! lab_postfix_reload; then
    fail "cannot reconfigure the lab's Postfix"
    exit 1
fi

# --- rules and postern.yaml (in $LAB_DIR: lab_down removes them) -----------
w=$LAB_DIR/ml
rules=$w/rules.d
mkdir -p "$rules" "$w/state"
cat >"$rules/acme.yaml" <<'EOF'
tenant: acme
domains: [acme.example]
EOF
cat >"$w/postern.yaml" <<EOF
rules: $rules
state_dir: $w/state
EOF
out=$w/out
err=$w/err
rc=0
ctl_run() { # ctl_run ARGS...: posternctl -c CONF ARGS; exit status in $rc
    rc=0
    "$ctl" -c "$w/postern.yaml" "$@" >"$out" 2>"$err" || rc=$?
}
show() { echo "--- stdout:"; cat "$out"; echo "--- stderr:"; cat "$err"; }

# --- send one message per recipient ------------------------------------------
for u in gone full spam later ok; do
    if ! lab_send --from news@acme.example --to "$u@$d" --header "Subject: to $u"; then
        cat "$LAB_SWAKS_LOG"
        fail "the lab's Postfix refused the message to $u@$d"
        exit 1
    fi
done
# outcome of each, as the lab's Postfix logs it (status, dsn, reply)
declare -A want_status=([gone]=bounced [full]=bounced [spam]=bounced [later]=deferred [ok]=sent)
declare -A want_dsn=([gone]=5.1.1 [full]=5.2.2 [spam]=5.7.1 [later]=4.2.0 [ok]=2.0.0)
declare -A want_reply=(
    [gone]="550 5.1.1 <gone@$d>: Recipient address rejected: No such user here"
    [full]="552 5.2.2 <full@$d>: Recipient address rejected: Mailbox full, try again much later"
    [spam]="554 5.7.1 <spam@$d>: Recipient address rejected: Message refused by local policy"
    [later]="450 4.2.0 <later@$d>: Recipient address rejected: Try again later"
    [ok]="250 2.0.0 Ok: queued as")
for u in gone full spam later ok; do
    re="to=<$u@remote2\\.example>, relay=mx2\\.lab\\.test\\[127\\.0\\.0\\.11\\]:25, .*dsn=${want_dsn[$u]//./\\.}, status=${want_status[$u]} "
    lab_wait_log "$re" 30 || { fail "no ${want_status[$u]} (${want_dsn[$u]}) of $u@$d in the lab's log"; exit 1; }
done
pass "the lab's Postfix logged each outcome (3 bounced, 1 deferred, 1 sent)"

# --- ingest ------------------------------------------------------------------
ctl_run ingest "$LAB_MAILLOG"
check "ingest \$LAB_MAILLOG: exit 0" test "$rc" -eq 0 || show
ctl_run ingest "$LAB_MAILLOG"
check "ingest again: exit 0 (idempotent)" test "$rc" -eq 0 || show

# --- bounces -------------------------------------------------------------------
ctl_run bounces --json
check "bounces --json: exit 0" test "$rc" -eq 0 || show
check_rows() {
    python3 - "$out" "$d" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
d = sys.argv[2]
# class, bounced, deferred, the receiver's words that the example must hold
want = {
    "unknown_user": (1, 0, "550 5.1.1 <gone@%s>: Recipient address rejected: No such user here" % d),
    "mailbox_full": (1, 0, "552 5.2.2 <full@%s>: Recipient address rejected: Mailbox full" % d),
    "policy": (1, 0, "554 5.7.1 <spam@%s>: Recipient address rejected: Message refused by local policy" % d),
    "other": (0, 1, "450 4.2.0 <later@%s>: Recipient address rejected: Try again later" % d),
}
ok = True
rows = [o for o in v if o["domain"] == d]
for o in rows:
    w = want.get(o["class"])
    if w is None or o["tenant"] != "acme" or (o["bounced"], o["deferred"]) != w[:2] or w[2] not in o["example"] \
            or "mx2.lab.test[127.0.0.11]" not in o["example"]:
        print("unexpected row: %s" % json.dumps(o))
        ok = False
if sorted(o["class"] for o in rows) != sorted(want):
    print("classes: %s, want %s" % (sorted(o["class"] for o in rows), sorted(want)))
    ok = False
if any(o["domain"] != d for o in v):
    print("rows of other domains: %s" % [o for o in v if o["domain"] != d])
    ok = False
sys.exit(0 if ok else 1)
EOF
}
check "bounces --json: acme @ $d: unknown_user 1 bounced, mailbox_full 1, policy 1, other 1 deferred, each with the receiver's reply; nothing else" check_rows || show
ctl_run bounces
check "bounces (table): 450 4.2.0 row is acme other $d, 0 bounced, 1 deferred" \
    grep -qE "^acme +other +$d +0 +1 +.*450 4\.2\.0" "$out" || show

# --- trace ADDRESS ------------------------------------------------------------
declare -A want_final=([gone]=bounced [full]=bounced [spam]=bounced [later]="deferred, still queued"
    [ok]=delivered)
for u in gone full spam later ok; do
    a=$u@$d
    ctl_run trace "$a"
    if [ "$rc" -ne 0 ]; then
        fail "trace $a: exit $rc"
        show
        continue
    fi
    # the message's lines: queued (qmgr, from the tenant's sender), the
    # delivery with status, dsn and reply, the final state, in this order
    # (exit 2: all there, but not in the log's order)
    trc=0
    python3 - "$out" "$a" "${want_status[$u]}" "${want_dsn[$u]}" "${want_reply[$u]}" "${want_final[$u]}" <<'EOF' || trc=$?
import re, sys
text = open(sys.argv[1]).read()
a, status, dsn, reply, final = sys.argv[2:]
lines = text.splitlines()
msgs = [l for l in lines if l.startswith("message ")]
def find(pred):
    return next((i for i, l in enumerate(lines) if pred(l)), None)
q = find(lambda l: re.search(r"postfix/qmgr +queued +.*from=<news@acme\.example>", l))
dl = find(lambda l: re.search(r"postfix/smtp +delivery +", l) and "to=<%s>" % a in l and
          "status=%s" % status in l and "dsn=%s" % dsn in l and "relay=mx2.lab.test[127.0.0.11]:25" in l and
          reply in l)
f = find(lambda l: l.strip() == "final: <%s> %s" % (a, final))
if len(msgs) != 1 or q is None or dl is None or f is None:
    print("len(msgs)=%d queued=%s delivery=%s final=%s" % (len(msgs), q, dl, f))
    sys.exit(1)
if not q < dl < f:
    print("line numbers: queued=%s delivery=%s final=%s" % (q, dl, f))
    sys.exit(2)
EOF
    if [ "$trc" -ne 1 ]; then
        pass "trace $a: queued, delivery (${want_status[$u]} ${want_dsn[$u]}, \"${want_reply[$u]}...\"), final ${want_final[$u]}"
    else
        fail "trace $a: not the story wanted"
        show
    fi
    # Postfix's maillog_file has whole seconds: the events of one second
    # must keep the log's order (qmgr's "queued" before smtp's delivery).
    if [ "$trc" -eq 0 ]; then
        pass "trace $a: in the log's order"
    else
        fail "trace $a: events of the same second not in the log's order (queued after the delivery)"
        [ "$trc" -eq 2 ] && show
    fi
done

ctl_run trace --json "later@$d"
check "trace --json later@$d: one message, one deferred delivery with the reply, times in order" python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
ev = v[0]["events"] if len(v) == 1 else []
t = [e["time_us"] for e in ev]
dl = [e for e in ev if e["what"] == "delivery"]
ok = len(v) == 1 and t == sorted(t) and any(e["what"] == "queued" for e in ev) and len(dl) == 1 and \
     dl[0]["status"] == "deferred" and dl[0]["rcpt"] == "later@" + sys.argv[2] and \
     "450 4.2.0" in dl[0]["text"] and "Try again later" in dl[0]["text"]
sys.exit(0 if ok else 1)' "$out" "$d" || show

# the receiver saw the accepted message (and nothing else was accepted)
# shellcheck disable=SC2016 # for the inner bash
check "the receiver accepted ok@$d only" bash -c '
    n=$(grep -cE "/discard\[[0-9]+\]: [0-9A-F]+: to=<[^>]*@remote2\.example>.*status=sent" "$1")
    [ "$n" = 1 ] && grep -qE "to=<ok@remote2\.example>.*status=sent" "$1"' _ "$LAB_RCV_MAILLOG"

# --- lab_down stops the receiver too and leaves nothing behind -----------------
ns=$LAB_NS
dir=$LAB_DIR
rmaster=$(_lab_rcv_master_pid)
declare -A start_of=()
for p in $(ip netns pids "$ns"); do
    start_of[$p]=$(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null) || true
done
check "the receiver's master runs before the teardown" test -n "$rmaster"
check "lab_down: no error" lab_down
left=""
for p in "${!start_of[@]}"; do
    if [[ -e /proc/$p && $(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null) == "${start_of[$p]}" ]]; then
        left+=" $p"
    fi
done
check "lab_down: none of the ${#start_of[@]} processes (receiver's master $rmaster among them) left" test -z "$left"
# shellcheck disable=SC2016 # for the inner bash
check "lab_down: no namespace $ns" bash -c '! ip netns list | grep -q -- "^$1\( \|\$\)"' _ "$ns"
if [[ $LAB_KEEP != 1 ]]; then
    check "lab_down: no $dir" test ! -e "$dir"
fi

if [ "$failures" -ne 0 ]; then
    echo "t_ctl_maillog: $failures check(s) failed"
    exit 1
fi
echo "t_ctl_maillog: all checks passed"
