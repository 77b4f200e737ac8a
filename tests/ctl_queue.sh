#!/usr/bin/env bash
# ctl_queue.sh: posternctl queue (Postfix's queue counted per tenant and
# account), without a network namespace or a real Postfix: a fake
# postqueue (milter.postfix_command_dir) prints canned "postqueue -j"
# lines, and postern-milter's audit records are written into
# STATE_DIR/milter.sqlite with sqlite3 (the store itself created by
# "posternctl pacing pause", so that its schema is the code's).  Checks:
# attribution by the sender's domain and declared account ("*" else) and
# "-" for nobody's (bounces, outside senders); with the milter's audit
# trail, a submission it recorded goes to the tenant and account it names,
# a message it saw as inbound is nobody's, and records of other components
# do not count; the table (sorted, TOTAL line, OLDEST ages), --json,
# --tenant (unknown tenant: exit 1), an empty queue, a malformed line
# (a warning), postqueue failing (exit 1) and bad usage (exit 2).
# Usage: tests/ctl_queue.sh [BUILD_DIR]  (default: $POSTERN_BUILD, else
# the directory of $POSTERNCTL, else build/werror).
set -uo pipefail
# shellcheck source=ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"
ctl_lib_init ctl_queue "$@"
state=$tmp/state bin=$tmp/bin rules=$tmp/rules.d pfconf=$tmp/postfix queue=$tmp/queue.json
mkdir -p "$state" "$bin" "$rules" "$pfconf"
# the fake postqueue: "-c DIR -j" prints $queue; Postfix down when
# $tmp/down exists (the message and status of the real one)
cat >"$bin/postqueue" <<EOF
#!/bin/sh
[ "\$*" = "-c $pfconf -j" ] || { echo "postqueue: fatal: unexpected arguments: \$*" >&2; exit 64; }
if [ -e "$tmp/down" ]; then
    echo "postqueue: fatal: Queue report unavailable - mail system is down" >&2
    exit 69
fi
cat "$queue"
EOF
chmod 0755 "$bin/postqueue"
cat >"$rules/corp.yaml" <<'YAML'
tenant: corp
domains: [corp.example]
accounts:
  news@corp.example: {}
YAML
cat >"$rules/bulk.yaml" <<'YAML'
tenant: bulk
domains: [bulk.example]
pace: {rate: 60/hour, mode: hold}
YAML
conf=$tmp/postern.yaml
cat >"$conf" <<YAML
rules: $rules
state_dir: $state
timezone: UTC
milter:
  postfix_config_dir: $pfconf
  postfix_command_dir: $bin
YAML
milter=$state/milter.sqlite

pass=0 fail=0
out=$tmp/out err=$tmp/err
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; sed 's/^/  stdout: /' "$out"; sed 's/^/  stderr: /' "$err"; }
# run WANT-RC DESCRIPTION ARGS...: posternctl -c CONF ARGS, its exit code
run() {
    local want=$1 what=$2 rc
    shift 2
    "$ctl" -c "$conf" "$@" >"$out" 2>"$err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else bad "$what (exit $rc, wanted $want)"; fi
}
# expect DESCRIPTION CMD...: CMD succeeds
expect() {
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}
has() { grep -qE -- "$2" "$1"; }
sql() { sqlite3 -batch "$1" "$2"; }
now_s=$(date +%s)
# msg QUEUE QID AGE_S SENDER RCPT [DELAY_REASON]: one line of postqueue -j
msg() {
    local reason=""
    [ $# -ge 6 ] && reason=", \"delay_reason\": \"$6\""
    printf '{"queue_name": "%s", "queue_id": "%s", "arrival_time": %d, "message_size": 2481, ' \
        "$1" "$2" $((now_s - $3))
    printf '"forced_expire": false, "sender": "%s", "recipients": [{"address": "%s"%s}]}\n' "$4" "$5" "$reason"
}
{
    msg active 4F2A1B3C4D 60 news@corp.example bob@example.net
    msg deferred 5A0B1C2D3E 3600 News@Corp.Example carol@example.org \
        "connect to mx.example.org[192.0.2.25]:25: Connection timed out"
    msg deferred 6B1C2D3E4F 200 alice@corp.example dave@example.com \
        "host mx.example.com[198.51.100.7] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)"
    msg hold 7C2D3E4F50 30 app@elsewhere.example erin@example.net
    msg incoming 8D3E4F5061 5 "" alice@corp.example
    msg maildrop 9E4F506172 2 root@mail.corp.internal postmaster@corp.example
    msg deferred A1B2C3D4E5 7200 ceo@corp.example alice@corp.example \
        "delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:10025: Connection refused"
    msg deferred B2C3D4E5F6 120 someone@bulk.example frank@example.com "lost connection with mx.example.com"
    echo '{"queue_name": "deferred", "queue_id": "not a queue id", "arrival_time": 1}'
} >"$queue"

# --- without the milter's audit trail: by the sender ----------------------------------
run 0 "queue without a milter store" queue
expect "the header" has "$out" "^TENANT +ACCOUNT +ACTIVE +DEFERRED +HOLD +OTHER +OLDEST$"
expect "nobody's: the bounce, the outside senders" has "$out" "^- +- +0 +0 +1 +2 +3[0-9] s$"
expect "bulk: the tenant's * account" has "$out" "^bulk +\* +0 +1 +0 +0 +2 min( [0-9] s)?$"
expect "corp: a spoofed sender counts by the rules without the trail" has "$out" "^corp +\* +0 +2 +0 +0 +2 h$"
expect "corp: the declared account, any case" has "$out" "^corp +news@corp.example +1 +1 +0 +0 +1 h$"
expect "the TOTAL line" has "$out" "^TOTAL +1 +4 +1 +2 +2 h$"
expect "six lines, in order" test "$(cut -d' ' -f1 "$out" | tr '\n' ' ')" = "TENANT - bulk corp corp TOTAL "
expect "the malformed line: a warning" has "$err" "warning: 1 line of \"postqueue -j\" is not a message"

# --- the milter's audit trail ---------------------------------------------------------
"$ctl" -c "$conf" pacing pause bulk/someone@bulk.example >"$out" 2>"$err" || bad "creating the milter store"
expect "the milter store exists" test -s "$milter"
# audit QID COMPONENT TENANT ACCOUNT ACTION: a record as postern-milter writes it
audit() {
    sql "$milter" "INSERT INTO audit (time_us, component, tenant, account, sender, queue_id, stage, action)
        VALUES ($now_s * 1000000, '$2', NULLIF('$3', ''), NULLIF('$4', ''), 'x@example', '$1', 'eom', '$5')"
}
audit 7C2D3E4F50 milter bulk app1@bulk.example sign         # a submission (SASL login app1@bulk.example)
audit 7C2D3E4F50 milter bulk app1@bulk.example hold
audit A1B2C3D4E5 milter corp "" quarantine                   # inbound to corp, the sender forged
audit B2C3D4E5F6 ctl corp news@corp.example release         # not the milter's
audit 4F2A1B3C4D milter "" "" accept                         # a record without a tenant: the rules decide
run 0 "queue with the milter store" queue
expect "the trail: the submission, to its account" has "$out" "^bulk +app1@bulk.example +0 +0 +1 +0 +3[0-9] s$"
expect "the trail: the inbound message is nobody's" has "$out" "^- +- +0 +1 +0 +2 +2 h$"
expect "the trail: a ctl record does not count" has "$out" "^bulk +\* +0 +1 +0 +0 +2 min( [0-9] s)?$"
expect "corp *: the spoofed message gone" has "$out" "^corp +\* +0 +1 +0 +0 +3 min 2[0-9] s$"
expect "corp news: by the rules still" has "$out" "^corp +news@corp.example +1 +1 +0 +0 +1 h$"
expect "the same TOTAL" has "$out" "^TOTAL +1 +4 +1 +2 +2 h$"
expect "sorted by tenant, then account" test "$(awk 'NR > 1 { print $1 "/" $2 }' "$out" | tr '\n' ' ')" = \
    "-/- bulk/* bulk/app1@bulk.example corp/* corp/news@corp.example TOTAL/1 "

run 0 "--json" queue --json
expect "--json parses, with the values" python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
keys = [(r["tenant"], r["account"]) for r in v]
assert keys == [("-", "-"), ("bulk", "*"), ("bulk", "app1@bulk.example"), ("corp", "*"),
                ("corp", "news@corp.example")], keys
for r in v:
    assert set(r) == {"tenant", "account", "active", "deferred", "hold", "other", "oldest_s"}, r
n = v[0]
assert (n["active"], n["deferred"], n["hold"], n["other"]) == (0, 1, 0, 2), n
assert 7200 <= n["oldest_s"] < 7300, n
a = v[2]
assert (a["active"], a["deferred"], a["hold"], a["other"]) == (0, 0, 1, 0) and 30 <= a["oldest_s"] < 130, a
c = v[4]
assert (c["active"], c["deferred"], c["hold"], c["other"]) == (1, 1, 0, 0) and 3600 <= c["oldest_s"] < 3700, c
' "$out"

run 0 "--tenant corp" queue --tenant corp
expect "--tenant: only corp's lines and their TOTAL" test "$(cut -d' ' -f1 "$out" | tr '\n' ' ')" = \
    "TENANT corp corp TOTAL "
expect "--tenant: the TOTAL of corp" has "$out" "^TOTAL +1 +2 +0 +0 +1 h$"
run 0 "--tenant bulk --json" queue --json --tenant=bulk
expect "--tenant --json: bulk's two" test "$(python3 -c '
import json, sys
print(" ".join(r["tenant"] + "/" + r["account"] for r in json.load(open(sys.argv[1]))))' "$out")" = \
    "bulk/* bulk/app1@bulk.example"
run 1 "--tenant of an unknown tenant" queue --tenant nosuch
expect "unknown tenant: said so" has "$err" "no tenant named nosuch in $rules"
run 1 "--tenant - is no tenant" queue --tenant -

# --- an empty queue, Postfix down -----------------------------------------------------
: >"$queue"
run 0 "an empty queue" queue
expect "an empty queue: said so" test "$(cat "$out")" = "no message in Postfix's queue"
run 0 "an empty queue --json" queue --json
expect "an empty queue --json: []" test "$(cat "$out")" = "[]"
msg deferred 4F2A1B3C4D 60 news@corp.example bob@example.net >"$queue"
run 0 "no message of the tenant" queue --tenant bulk
expect "no message of the tenant: said so" test "$(cat "$out")" = "no message of tenant bulk in Postfix's queue"
touch "$tmp/down"
run 1 "Postfix down" queue
expect "Postfix down: a clear error" has "$err" \
    "^posternctl: cannot list Postfix's queue \(is Postfix running\?\): .*mail system is down"
expect "Postfix down: nothing on stdout" test ! -s "$out"
run 1 "Postfix down --json" queue --json
rm -f "$tmp/down"

# --- bad usage -------------------------------------------------------------------------
for args in "queue extra" "queue --bogus" "queue --tenant" "queue --tenant="; do
    # shellcheck disable=SC2086
    run 2 "bad usage: $args" $args
    expect "bad usage: $args: the usage line" has "$err" "^usage: posternctl queue \[--tenant T\] \[--json\]$"
done
run 0 "-h" queue -h
expect "-h: the usage line" has "$out" "^usage: posternctl queue"

echo "ctl_queue: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
