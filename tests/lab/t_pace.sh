#!/usr/bin/env bash
# t_pace.sh: postern-milter's pacing, modes delay and defer (issue 6/7, in
# progress: mode hold and its release come later), in front of the lab's
# real Postfix, with SASL submissions of two accounts of one tenant (corp):
#  - alice (10/minute, burst 2, mode delay, max_delay 15s) submits 5
#    messages at once: two go at once, the next wait about 6 s and 12 s
#    (the wait grows as the bucket empties, never past max_delay), the
#    fifth would wait 18 s: 451 4.7.1 with the time to retry (an interval
#    of 6 s: the test holds even if the 5 submissions start seconds apart);
#  - bob (1/hour, mode defer): his first message goes while alice's bucket
#    is empty (accounts are paced apart), the second gets 451 4.7.1 naming
#    the rate and the time to retry;
#  - the milter restarted: bob is still deferred (the pace is in SQLite);
#  - every delay and deferral is an audit record (posternctl audit);
#  - max_delay is checked against Postfix's milter_content_timeout at start
#    (carol's 60 s is named, alice's 15 s is under 30 s less 10 s).
# Outcomes only (replies, audit records); the waits are read from the
# audit trail, not timed here.
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
cat >"$rules/corp.yaml" <<'YAML'
tenant: corp
domains: [corp.example]
accounts:
  alice@corp.example: {pace: {rate: 10/minute, burst: 2, mode: delay, max_delay: 15s}}
  bob@corp.example: {pace: {rate: 1/hour, mode: defer}}
  carol@corp.example: {pace: {rate: 10/minute, mode: delay, max_delay: 60s}}
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
stop_milter() { lab_milter_stop; }
cleanup() {
    local rc=$?
    [ -n "$LAB_MILTER_PID" ] && kill -KILL "$LAB_MILTER_PID" 2>/dev/null
    lab_down
    exit "$rc"
}
trap cleanup EXIT

# max_delay is checked against Postfix's milter_content_timeout (less 10 s):
# carol's 60 s is over 30 s - 10 s, alice's 15 s is not
lab_postconf 'milter_content_timeout = 30s' || lab_fail "postconf failed"
start_milter
lab_use_milter "unix:$msock"
check "at start, carol's max_delay over Postfix's milter timeout is named, alice's is not" \
    grep -qE 'event=pace_warning rules=1 names="corp/carol@corp.example" milter_content_timeout=30000ms max_delay_used=20000ms' "$mlog"

# send LOGIN TAG: one submission; prints the reply to the message
send() {
    lab_send_auth "$1" secret --to "$2@remote.example" --header "Subject: $2" >/dev/null 2>&1
    lab_reply
}
audit_json() { "$ctl" -c "$conf" audit --json 2>/dev/null; }

# --- alice: 5 at once, mode delay ---------------------------------------------------
pids=()
for i in 1 2 3 4 5; do
    (send alice@corp.example "alice$i" >"$m/reply.alice$i") &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
n250=$(cat "$m"/reply.alice* | grep -c '^250 ')
n451=$(cat "$m"/reply.alice* | grep -cE '^451 4\.7\.1 account corp/alice@corp\.example is paced at 10/minute, burst 2: try again in [0-9]+ s')
check "alice, 5 at once: 4 accepted, 1 deferred past max_delay (got $n250 x 250, $n451 x 451)" \
    test "$n250" = 4 -a "$n451" = 1
delays=$(audit_json | "$py" -c '
import json, re, sys
ms = sorted(int(re.match(r"delayed (\d+) ms", r["reason"]).group(1))
            for r in json.load(sys.stdin) if r.get("action") == "delay" and r.get("account") == "alice@corp.example")
print(" ".join(map(str, ms)))')
check "alice: two waited, about 6 s and 12 s, neither past max_delay 15 s (audited: $delays ms)" \
    "$py" -c 'import sys; v = [int(x) for x in sys.argv[1:]]
sys.exit(0 if len(v) == 2 and 1000 <= v[0] <= 6000 < v[1] <= 12000 else 1)' $delays
check "alice's deferral is audited" \
    "$py" -c 'import json, sys; sys.exit(0 if any(r.get("action") == "defer" and r.get("rule") == "pace"
        and r.get("account") == "alice@corp.example" for r in json.load(sys.stdin)) else 1)' < <(audit_json)

# --- bob: his own bucket, mode defer ------------------------------------------------
r=$(send bob@corp.example bob1)
check "bob's first message goes while alice's bucket is empty ($r)" grep -q '^250 ' <<<"$r"
r=$(send bob@corp.example bob2)
check "bob's second: 451 4.7.1 with his rate and the time to retry ($r)" \
    grep -qE '^451 4\.7\.1 account corp/bob@corp\.example is paced at 1/hour, burst 1: try again in 3[0-9]{3} s' <<<"$r"

# --- a restart keeps the pace -------------------------------------------------------
stop_milter
start_milter
lab_use_milter "unix:$msock"
r=$(send bob@corp.example bob3)
check "after a restart of the milter bob is still deferred ($r)" grep -qE '^451 4\.7\.1 .*try again in 3[0-9]{3} s' <<<"$r"
n=$(audit_json | "$py" -c 'import json, sys; print(sum(1 for r in json.load(sys.stdin) if r.get("action") == "defer"))')
check "three deferrals audited (alice once, bob twice: $n)" test "$n" = 3
stop_milter

[ "$failures" = 0 ] || exit 1
lab_ok "pacing, modes delay and defer: all done"
