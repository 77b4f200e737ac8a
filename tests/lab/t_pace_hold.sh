#!/usr/bin/env bash
# t_pace_hold.sh: pacing mode hold (issue 6/7) in front of the lab's real
# Postfix, with its real hold queue:
#  - newsletter@acme.example, paced at 600/minute with burst 10 in mode
#    hold, submits 200 messages in one session: all are accepted at once
#    (250); the burst (10, a few more on a slow machine) goes at once,
#    the rest are held and released by postern-milter at 10 per second,
#    through postsuper -H and postqueue -i
#    (queue_run_delay is 300 s here: only postqueue -i makes them leave);
#  - halfway through, postern-milter is killed (-9) and restarted; later
#    Postfix is stopped and started again;
#  - every message arrives at the sink exactly once (Message-IDs
#    compared), in submission order, and between the interruptions the
#    arrivals keep the pace within 5% (mean interval 95..105 ms);
#  - each hold and release is an audit record with the queue ID;
#  - reconciliation: of billing@bill.example's held messages (1/hour: all
#    but the first held), one released by hand (postsuper -H) and one
#    deleted by hand (postsuper -d) are dropped from the schedule and
#    audited; a message held outside postern (header_checks HOLD) is
#    reported (event=pace_unknown_held), not released.
# Outcomes only: the intervals are computed from the sink's files (their
# completion times), never from sleeps.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${POSTERN_BUILD:-$top/build/werror}
# shellcheck source=lab.sh
. "$top/tests/lab/lab.sh"

milter=${MILTER:-$build/milter/postern-milter}
ctl=$build/ctl/posternctl
py=/usr/bin/python3
[ -x "$milter" ] || lab_fail "no $milter (build first)"
lab_up

m=$LAB_DIR/milter
rules=$m/rules.d
conf=$m/postern.yaml
mlog=$m/milter.log
msock=$LAB_PF_QUEUE/private/postern-milter
mkdir -p "$rules" "$m/state"
chmod 0755 "$m" "$rules"
chown nobody "$m/state"
cat >"$rules/acme.yaml" <<'YAML'
tenant: acme
domains: [acme.example]
accounts:
  newsletter@acme.example: {pace: {rate: 600/minute, burst: 10, mode: hold}}
YAML
cat >"$rules/bill.yaml" <<'YAML'
tenant: bill
domains: [bill.example]
accounts:
  billing@bill.example: {pace: {rate: 1/hour, mode: hold}}
YAML
cat >"$conf" <<YAML
rules: $rules
state_dir: $m/state
timezone: UTC
user: nobody
milter:
  listen: unix:$msock
  pid_file: $m/milter.pid
  authserv_id: mx.lab.test
  postfix_config_dir: $LAB_PF_CONF
  hold_reconcile: 2s
YAML
"$ctl" -r "$rules" check >/dev/null || lab_fail "posternctl check refuses the test's rules"

failures=0
check() { # check DESCRIPTION CMD...: PASS or FAIL, and go on
    local what=$1
    shift
    if "$@"; then lab_ok "$what"; else printf 'FAIL: %s\n' "$what"; failures=$((failures + 1)); fi
}
log_count() { grep -cE -- "$1" "$mlog" 2>/dev/null || true; }
log_has_n() { (($(log_count "$1") >= $2)); }
start_milter() { lab_milter_start "$milter" "$conf" "$mlog"; }
stop_milter() { lab_milter_stop "$@"; } # stop_milter [SIGNAL]
cleanup() {
    local rc=$?
    [ -n "$LAB_MILTER_PID" ] && kill -KILL "$LAB_MILTER_PID" 2>/dev/null
    lab_down
    exit "$rc"
}
trap cleanup EXIT

# Released mail must leave because of postqueue -i, not a queue scan; one
# delivery at a time to the sink keeps the release order visible there.
# A message with "Subject: stray" is held by Postfix itself (header_checks),
# outside postern's schedule.
printf '/^Subject: stray/ HOLD held outside postern\n' >"$LAB_PF_CONF/header_checks"
lab_postconf 'queue_run_delay = 300s' 'minimal_backoff_time = 300s' 'maximal_backoff_time = 600s' \
    'default_destination_concurrency_limit = 1' "header_checks = regexp:$LAB_PF_CONF/header_checks" ||
    lab_fail "postconf failed"
start_milter
lab_use_milter "unix:$msock"
check "no warning that hold is not enforced" test "$(log_count 'not enforced')" = 0

# sink_ids: the Message-IDs of the test's messages in the sink, in arrival order, with arrival times
sink_ids() {
    local f
    for f in $(lab_sink_files); do
        printf '%s %s\n' "$(stat -c %.Y "$f")" "$(lab_sink_header "$f" Message-ID | tr -d '<>')"
    done | grep ' hold-'
}
sink_n() { (($(sink_ids | wc -l) >= $1)); }

# --- 200 messages in one session ------------------------------------------------------
N=200
ip netns exec "$LAB_NS" "$py" - "$N" "$m/submit.times" >"$m/submit.out" 2>&1 <<'PY'
import smtplib, sys, time
n = int(sys.argv[1])
times = open(sys.argv[2], "w")
s = smtplib.SMTP("127.0.0.1", 587, timeout=120)
s.login("newsletter@acme.example", "secret")
ok = 0
for i in range(1, n + 1):
    msg = ("From: newsletter@acme.example\r\nTo: reader%d@remote.example\r\nSubject: issue %d\r\n"
           "Message-ID: <hold-%03d@acme.example>\r\n\r\nnumber %d\r\n" % (i, i, i, i))
    try:
        s.sendmail("newsletter@acme.example", ["reader%d@remote.example" % i], msg)
        ok += 1
        times.write("%.6f\n" % time.time())
    except smtplib.SMTPException as e:
        print("refused %d: %s" % (i, e))
s.quit()
print("accepted %d" % ok)
PY
check "all $N submissions accepted at once ($(tail -1 "$m/submit.out"))" grep -qx "accepted $N" "$m/submit.out"
nheld=$(log_count 'event=audit .*action=hold ')
went=$((N - nheld))
# the burst (10) goes at once; the bucket refills at 10 a second while the
# submissions go on, so a slow machine may let a few more go before the
# first is held (and every one after it is held: they keep their order)
went_ok() {
    "$py" - "$m/submit.times" "$went" <<'PY'
import sys
t = [float(x) for x in open(sys.argv[1])]
went = int(sys.argv[2])
sys.exit(0 if 10 <= went <= 10 + int((t[went - 1] - t[0]) * 10) + 1 else 1)
PY
}
check "the burst went at once, the rest were held ($went went, $nheld held)" went_ok

# --- kill -9 halfway, restart ---------------------------------------------------------
lab_wait_for 120 sink_n 90 || lab_fail "the releases did not reach 90 messages"
stop_milter KILL
t_kill=$(date +%s.%N)
start_milter
# --- Postfix stopped and started again later ----------------------------------------------
lab_wait_for 120 sink_n 140 || lab_fail "the releases did not go on after the restart"
lab_postfix stop >/dev/null 2>&1
lab_wait_for 30 log_has_n 'event=pace_warning .*Postfix does not answer' 1
t_pf=$(date +%s.%N)
lab_postfix start >/dev/null 2>&1 || lab_fail "postfix start failed"
lab_wait_for 180 sink_n "$N" || { sink_ids | tail -3; lab_fail "not every message arrived"; }

sink_ids >"$m/arrivals"
check "every message arrived exactly once ($(wc -l <"$m/arrivals") files, $(cut -d' ' -f2 "$m/arrivals" | sort -u | wc -l) Message-IDs)" \
    test "$(cut -d' ' -f2 "$m/arrivals" | sort -u | wc -l)" = "$N" -a "$(wc -l <"$m/arrivals")" = "$N"
in_order() {
    "$py" - "$m/arrivals" "$went" <<'PY'
import sys
ids = [l.split()[1] for l in open(sys.argv[1])]
went = int(sys.argv[2])
# those that went were not held: Postfix sends messages queued together in
# no set order; they come before every held one, which leave in order
first = sorted(ids[:went]) == ["hold-%03d@acme.example" % (i + 1) for i in range(went)]
if not first:
    print("  the first %d arrivals are not the messages that were not held: %s" % (went, ids[:went]))
bad = [(i, x) for i, x in enumerate(ids) if i >= went and x != "hold-%03d@acme.example" % (i + 1)]
bad = bad if first else bad + [(0, "")]
for i, x in bad[:10]:
    print("  position %d: %s" % (i + 1, x))
sys.exit(1 if bad else 0)
PY
}
check "in submission order (the $went not held before the rest)" in_order
[ -n "${LAB_KEEP_ARRIVALS:-}" ] && cp "$m/arrivals" "$LAB_KEEP_ARRIVALS" && grep -E 'event=(audit .*action=release|pace_)' "$mlog" >"$LAB_KEEP_ARRIVALS.log"
pace=$("$py" - "$m/arrivals" "$went" "$t_kill" "$t_pf" <<'PY'
import sys
t = [float(l.split()[0]) for l in open(sys.argv[1])]
went = int(sys.argv[2])
cuts = sorted(float(x) for x in sys.argv[3:])
# the held messages (after those that went at once), split at the interruptions;
# after each, the account's burst may go at once: skip 10 there too
segs, cur = [], []
edges = iter(cuts + [float("inf")])
edge = next(edges)
skip = 0
for x in t[went:]:
    if x > edge:
        segs.append(cur); cur = []; skip = 5
        while x > edge:
            edge = next(edges)
    if skip:
        skip -= 1
        continue
    cur.append(x)
segs.append(cur)
out, ok = [], True
for s in segs:
    if len(s) < 20:
        continue
    mean = (s[-1] - s[0]) / (len(s) - 1) * 1000
    out.append("%d msgs %.1f ms" % (len(s), mean))
    ok = ok and 95 <= mean <= 105
print(("ok " if ok and out else "bad ") + "; ".join(out))
PY
)
check "released at the pace, 100 ms a message within 5%, between the interruptions ($pace)" grep -q '^ok ' <<<"$pace"
nrel=$(log_count 'event=audit .*queue_id=[0-9A-Za-z]+ .*action=release ')
check "each release audited with its queue ID ($nrel of $nheld)" test "$nrel" = "$nheld"
check "the restart found nothing lost (the schedule is empty: $("$ctl" -c "$conf" pacing 2>&1 | tail -1))" \
    test "$(sqlite3 "$m/state/pace.sqlite" 'SELECT COUNT(*) FROM pace_held')" = 0

# --- reconciliation ----------------------------------------------------------------------
for i in 1 2 3 4; do
    lab_send_auth billing@bill.example secret --to "payer$i@remote.example" --header "Subject: bill $i" >/dev/null 2>&1
done
held_ids() { sqlite3 "$m/state/pace.sqlite" 'SELECT queue_id FROM pace_held ORDER BY seq'; }
mapfile -t hq < <(held_ids)
check "billing: 1 went, 3 held (${#hq[@]} in the schedule)" test "${#hq[@]}" = 3
lab_exec postsuper -c "$LAB_PF_CONF" -H "${hq[0]}" >/dev/null 2>&1
lab_exec postsuper -c "$LAB_PF_CONF" -d "${hq[1]}" >/dev/null 2>&1
# a message held outside postern (header_checks): reported, left alone
lab_send --to stray@remote.example --header "Subject: stray" >/dev/null 2>&1
stray_id() {
    lab_exec postqueue -c "$LAB_PF_CONF" -j | "$py" -c 'import json, sys
for l in sys.stdin:
    o = json.loads(l)
    if o["queue_name"] == "hold" and any(r["address"] == "stray@remote.example" for r in o["recipients"]):
        print(o["queue_id"])'
}
stray_held() { [ -n "$(stray_id)" ]; }
lab_wait_for 30 stray_held
stray=$(stray_id)
dropped() { (($(log_count "event=audit .*action=drop ") >= 2)); }
lab_wait_for 90 dropped
check "released and deleted by hand: both dropped from the schedule, audited" dropped
check "only the third billing message is left in the schedule ($(held_ids | tr '\n' ' '))" test "$(held_ids)" = "${hq[2]}"
if [ -n "$stray" ]; then
    lab_wait_for 30 log_has_n "event=pace_unknown_held .*$stray" 1
    check "a message held outside postern is reported ($stray)" log_has_n "event=pace_unknown_held .*$stray" 1
else
    check "the stray message was held by header_checks" false
fi
stop_milter
check "postern-milter stopped cleanly after it all" grep -q 'event=stop .*status=0' "$mlog"

[ "$failures" = 0 ] || exit 1
lab_ok "pacing, mode hold: all done"
