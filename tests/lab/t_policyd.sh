#!/usr/bin/env bash
# t_policyd.sh: postern-policyd in front of the lab's real Postfix (SASL
# logins through swaks, smtp-sink as the Internet): quotas counted exactly
# (messages, recipients; refused mail counts nothing), IP binding on the
# way in (5.7.1) and out (X-Client-Addr of each tenant's transport), a
# reload with a broken rule file keeping the old rules, and kill -9 under
# load: counters, audit trail and what Postfix accepted agree.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${POSTERN_BUILD:-$top/build/werror}
# shellcheck source=lab.sh
. "$top/tests/lab/lab.sh"

policyd=$build/policyd/postern-policyd
ctl=$build/ctl/posternctl
[ -x "$policyd" ] || lab_fail "no $policyd (build first)"
lab_up

state=$LAB_DIR/state
rules=$LAB_DIR/rules.d
conf=$LAB_DIR/postern.yaml
db=$state/policyd.sqlite
plog=$LAB_DIR/policyd.log
mkdir -p "$rules"
cp "$top"/tests/fixtures/lab/rules.d/*.yaml "$rules/"
cat >"$conf" <<YAML
rules: $rules
state_dir: $state
timezone: UTC
user: nobody
log_level: info
policyd:
  listen: [inet:127.0.0.1:10040]
  on_error: defer
  pid_file: $LAB_DIR/policyd.pid
YAML

log_has() { grep -qE -- "$1" "$plog"; }
ppid_=
start_policyd() {
    : >>"$plog"
    ip netns exec "$LAB_NS" "$policyd" -f -c "$conf" >>"$plog" 2>&1 &
    ppid_=$!
    lab_wait_for 60 log_has "event=start" || { tail -20 "$plog"; lab_fail "postern-policyd did not start"; }
}
stop_policyd() { [ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null && wait "$ppid_" 2>/dev/null; ppid_=; }
trap 'stop_policyd' RETURN
# The store is read after `posternctl ingest` has moved the daemon's
# journal into it (the daemon's own ingestion runs every 200 ms).
sq() {
    "$ctl" -c "$conf" ingest >/dev/null || echo "t_policyd: posternctl ingest failed" >&2
    sqlite3 -cmd ".timeout 5000" "$db" "$1"
}
counter() { # counter KEY UNIT: the value in the newest window
    local v
    v=$(sq "SELECT value FROM counters WHERE key='$1' AND unit='$2' ORDER BY window_start DESC LIMIT 1;")
    echo "${v:-0}"
}
check() { # check DESCRIPTION CMD...
    local what=$1; shift
    if "$@"; then lab_ok "$what"; else lab_fail "$what"; fi
}

start_policyd
lab_master_add \
    'corp-out unix - - n - - smtp -o smtp_bind_address=127.0.0.2 -o smtp_helo_name=out2.lab.test' \
    'acme-out unix - - n - - smtp -o smtp_bind_address=127.0.0.3 -o smtp_helo_name=out3.lab.test'
lab_postconf \
    'smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:10040, permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination' \
    'smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:10040' \
    'smtpd_policy_service_default_action = 451 4.3.5 policy service unavailable' \
    'smtpd_policy_service_timeout = 30s' \
    'smtpd_policy_service_max_idle = 30s'
lab_postfix_reload

send_as() { # send_as LOGIN FROM TO... : authenticated submission, rc of swaks
    local login=$1 from=$2; shift 2
    local to; to=$(IFS=,; echo "$*")
    lab_send_auth "$login" secret --from "$from" --to "$to"
}
expect_refused() { # expect_refused PATTERN: last swaks failed with PATTERN
    grep -qE -- "$1" "$LAB_SWAKS_LOG" || { cat "$LAB_SWAKS_LOG"; return 1; }
}

# 1. alice: messages 3/day. Three pass, the 4th gets the 4xx; the sink has 3.
for i in 1 2 3; do
    send_as alice@corp.example alice@corp.example "r$i@remote.example" || { cat "$LAB_SWAKS_LOG"; lab_fail "alice message $i refused"; }
done
lab_wait_sink 3
if send_as alice@corp.example alice@corp.example r4@remote.example; then lab_fail "alice's 4th message was accepted"; fi
check "alice's 4th message over messages 3/day gets 451 4.7.1 naming the quota and its reset" \
    expect_refused '451 4.7.1 .*quota of account alice@corp.example: messages 3/day, 3 used.*resets at'
check "the first 3 reached the sink, and only them" test "$(lab_sink_count)" -eq 3
check "alice's counter is 3 (the deferred 4th counts nothing)" test "$(counter a:corp:alice@corp.example:messages day)" -eq 3
for f in $(lab_sink_files); do
    [ "$(lab_sink_header "$f" X-Client-Addr)" = 127.0.0.2 ] || lab_fail "corp mail left from $(lab_sink_header "$f" X-Client-Addr), not 127.0.0.2"
done
lab_ok "corp's mail left from 127.0.0.2 (transport corp-out)"

# 2. a 3-recipient message counts 3 recipients and 1 message
send_as bob@corp.example bob@corp.example a@remote.example b@remote.example c@remote.example ||
    { cat "$LAB_SWAKS_LOG"; lab_fail "bob's 3-recipient message refused"; }
lab_wait_sink 4
check "a 3-recipient message counts 1 message" test "$(counter a:corp:bob@corp.example:messages day)" -eq 1
check "a 3-recipient message counts 3 recipients" test "$(counter a:corp:bob@corp.example:recipients day)" -eq 3

# 3. IP binding, inbound side
if lab_send --from ceo@corp.example --to x@remote.example; then lab_fail "a foreign host sent as corp.example"; fi
check "a host that is not corp's, sending as corp.example, gets 554 5.7.1" \
    expect_refused '554 5.7.1 .*<ceo@corp.example>: sender domain of ceo@corp.example belongs to tenant corp'
if send_as alice@corp.example alice@acme.example x@remote.example; then lab_fail "alice sent as acme.example"; fi
check "a corp login sending as acme.example gets 554 5.7.1" \
    expect_refused '554 5.7.1 .*<alice@acme.example>: login alice@corp.example of tenant corp may only send as'
check "refused messages count nothing" test "$(counter a:corp:alice@corp.example:messages day)" -eq 3

# 4. IP binding, outbound side: acme leaves from 127.0.0.3
send_as newsletter@acme.example newsletter@acme.example n1@remote.example || { cat "$LAB_SWAKS_LOG"; lab_fail "newsletter refused"; }
lab_wait_sink 5
last=$(lab_sink_files | tail -1)
check "acme's mail left from 127.0.0.3 (transport acme-out), HELO out3.lab.test" \
    test "$(lab_sink_header "$last" X-Client-Addr)" = 127.0.0.3 -a -n "$(lab_sink_header "$last" X-Helo-Args | grep out3.lab.test)"

# 5. a reload with a broken rule file keeps the old rules
sed -i 's|messages: 3/day|messages: 300/day|' "$rules/corp.yaml"
printf 'tenant: broken\ndomains: [broken..example]\n' >"$rules/zz-broken.yaml"
kill -HUP "$ppid_"
lab_wait_for 60 log_has 'event=reload .*status=failed' || lab_fail "no reload failure logged"
check "the failed reload names file:line:column" log_has 'zz-broken.yaml:2:11'
if send_as alice@corp.example alice@corp.example r5@remote.example; then lab_fail "alice accepted after a broken reload"; fi
check "after the broken reload, the old quota (3/day) is still enforced" expect_refused 'messages 3/day'
rm -f "$rules/zz-broken.yaml"
kill -HUP "$ppid_"
lab_wait_for 60 log_has 'event=reload .*status=ok' || lab_fail "no successful reload logged"
check "after a good reload, the new quota (300/day) lets alice send" send_as alice@corp.example alice@corp.example r6@remote.example
lab_wait_sink 6

# 6. kill -9 under load, restart: counters = permitted messages in the audit
#    = messages Postfix accepted (sink); none the audit lacks.
before=$(lab_sink_count)
: >"$LAB_DIR/load.rc"
load() {
    local i
    for i in $(seq 1 15); do
        if lab_send_auth "$1" secret --from "$1" --to "load$i@remote.example" >/dev/null 2>&1; then
            echo ok >>"$LAB_DIR/load.rc"
        else
            echo refused >>"$LAB_DIR/load.rc"
        fi
    done
}
load bob@corp.example & l1=$!
load carol@corp.example & l2=$!
load_started() { [ "$(grep -c . "$LAB_DIR/load.rc")" -ge 8 ]; }
lab_wait_for 120 load_started || lab_fail "load did not start"
kill -9 "$ppid_"; wait "$ppid_" 2>/dev/null; ppid_=
lab_ok "postern-policyd killed with SIGKILL under load"
start_policyd
wait "$l1" "$l2"
accepted=$(grep -c '^ok' "$LAB_DIR/load.rc")
lab_wait_sink $((before + accepted)) || true
sunk=$(( $(lab_sink_count) - before ))
permitted=$(sq "SELECT count(*) FROM audit WHERE stage='eom' AND rule='permit' AND sasl_login IN ('bob@corp.example','carol@corp.example') AND sender LIKE '%@corp.example' AND instance IS NOT NULL;")
counted=$(( $(counter a:corp:bob@corp.example:messages day) + $(counter a:corp:carol@corp.example:messages day) ))
echo "load: $accepted accepted by Postfix, $sunk at the sink, $permitted permitted in the audit (incl. bob's first), $counted counted"
check "after kill -9: counters equal the permitted messages in the audit" test "$counted" -eq "$permitted"
# A decision committed just before the kill may never have reached Postfix
# (the client then got 451 and retries): the audit may hold more permits
# than Postfix accepted, never fewer.
check "after kill -9: every message Postfix accepted has its permit in the audit" test "$accepted" -le "$((permitted - 1))"
check "after kill -9: the sink has exactly the accepted messages" test "$sunk" -eq "$accepted"
stop_policyd
