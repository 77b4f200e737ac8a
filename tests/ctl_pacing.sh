#!/usr/bin/env bash
# ctl_pacing.sh: posternctl pacing (the schedule of pacing mode hold in
# STATE_DIR/pace.sqlite), without a network namespace or a real Postfix:
# fake postsuper and postqueue (milter.postfix_command_dir) log their
# arguments, and the held messages are written into the schedule with
# sqlite3.  Checks: no pace store yet (list: exit 0 and a note; an
# account: exit 1); pause creates the store from the rules (account and
# tenant-wide paces of mode hold; other accounts refused); the list and
# one account's view, as text and JSON; resume; release --count 2 releases
# the first two in order (postsuper -c DIR -H ID, then postqueue -c DIR -i
# ID); release --all stops with exit 1 at a message postsuper refuses,
# which stays in the schedule, unclaimed, in its place; a failing
# postqueue -i only warns; unknown accounts (exit 1), malformed arguments
# (exit 2); and the audit records in STATE_DIR/milter.sqlite.
# Usage: tests/ctl_pacing.sh [BUILD_DIR]  (default: $POSTERN_BUILD, else
# the directory of $POSTERNCTL, else build/werror).
set -uo pipefail
# shellcheck source=ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"
ctl_lib_init ctl_pacing "$@"
state=$tmp/state bin=$tmp/bin rules=$tmp/rules.d pfconf=$tmp/postfix log=$tmp/commands.log
mkdir -p "$state" "$bin" "$rules" "$pfconf"
: >"$log"
# the fakes: log "NAME ARGS"; fail for the queue ID named by a file
# fail-NAME-ID (postsuper exits 1 like Postfix's fatal errors)
for name in postsuper postqueue; do
    cat >"$bin/$name" <<EOF
#!/bin/sh
echo "$name \$*" >>"$log"
for a in "\$@"; do
    if [ -e "$tmp/fail-$name-\$a" ]; then echo "$name: fatal: simulated failure for \$a" >&2; exit 1; fi
done
exit 0
EOF
    chmod 0755 "$bin/$name"
done
cat >"$rules/corp.yaml" <<'YAML'
tenant: corp
domains: [corp.example]
accounts:
  news@corp.example: {pace: {rate: 600/minute, burst: 10, mode: hold}}
  alice@corp.example: {pace: {rate: 10/minute, mode: delay}}
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
pace=$state/pace.sqlite milter=$state/milter.sqlite
news=corp/news@corp.example

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
# hold QID ACCOUNT AGE_S [CLAIMED]: a held message, as postern-milter records it
hold() {
    sql "$pace" "INSERT INTO pace_held (queue_id, account, held_ns, claimed_ns) VALUES ('$1', '$2',
        ($now_s - $3) * 1000000000, ${4:-0})"
}

# --- no pace store yet -------------------------------------------------------
run 0 "list without a store" pacing
expect "list without a store: the note" has "$out" "^no pacing state at $pace \(has postern-milter held any message\?\)$"
run 0 "list --json without a store" pacing --json
expect "list --json without a store: []" test "$(cat "$out")" = "[]"
run 1 "an account without a store" pacing "$news"
expect "an account without a store: the note" has "$err" "no pacing state at $pace"
run 1 "release without a store" pacing release "$news"

# --- pause from the rules ------------------------------------------------------
run 1 "pause of an account paced in mode delay" pacing pause corp/alice@corp.example
expect "pause of a delay account: the reason" has "$err" "corp/alice@corp.example is not paced in mode hold by the rules"
run 1 "pause of an account without pace" pacing pause corp/bob@corp.example
run 1 "pause of an unknown tenant" pacing pause nosuch/x@nosuch.example
expect "refused pauses create no store" test ! -e "$pace"
run 0 "resume of a hold account never paused" pacing resume "$news"
expect "resume of a never paused account: said so" has "$out" "is not paused"
expect "nor does a resume that changes nothing" test ! -e "$pace"
run 0 "pause $news" pacing pause "$news"
expect "pause created the pace store" test -s "$pace"
expect "pause: the account is paused, with its rule" test \
    "$(sql "$pace" "SELECT tenant, rule_account, count, period_s, burst, unit, paused FROM pace_account
                    WHERE account = '$news'")" = "corp|news@corp.example|600|60|10|minute|1"
run 0 "pause again" pacing pause "$news"
expect "pause again: nothing changed" has "$out" "already paused"
run 0 "pause through the tenant's pace" pacing pause BULK/Someone@Bulk.Example
expect "tenant pace: the account is recorded lowercase, rule account *" test \
    "$(sql "$pace" "SELECT rule_account, count, period_s, burst, unit, paused FROM pace_account
                    WHERE account = 'bulk/someone@bulk.example'")" = "*|60|3600|1|hour|1"

# --- the held messages ------------------------------------------------------------
hold 4F2A1B3C4D "$news" 300
hold 4F2A1B3C4E "$news" 290
hold 5A0B1C2D3E "$news" 200
hold 6B1C2D3E4F "$news" 100
hold 7C2D3E4F50 "$news" 50
sql "$pace" "INSERT INTO pace_account (account, tenant, rule_account, count, period_s, burst, unit)
             VALUES ('bulk/other@bulk.example', 'bulk', '*', 60, 3600, 1, 'hour')"
hold 8A1B2C3D4E bulk/other@bulk.example 3700 $(((now_s - 5) * 1000000000))
hold 8A1B2C3D4F bulk/other@bulk.example 3600

run 0 "list" pacing
expect "list: the header" has "$out" "^ACCOUNT +RATE +HELD +PAUSED +OLDEST +DRAIN$"
expect "list: news, 5 held, paused, 5 min, drains in under a second" \
    has "$out" "^$news +600/minute, burst 10 +5 +yes +5 min( [0-9]+ s)? +< 1 s$"
expect "list: bulk/other: 2 held, 1 h 1 min, 2 min to drain" \
    has "$out" "^bulk/other@bulk.example +60/hour, burst 1 +2 +no +1 h 1 min +2 min$"
expect "list: a paused account without messages" has "$out" "^bulk/someone@bulk.example +60/hour, burst 1 +0 +yes +- +-$"
expect "list: three accounts" test "$(grep -c / "$out")" -eq 3

run 0 "list --json" pacing --json
expect "list --json parses, with the values" python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
assert [a["account"] for a in v] == ["bulk/other@bulk.example", "bulk/someone@bulk.example", sys.argv[2]], v
n = v[2]
assert n["held"] == 5 and n["paused"] is True and n["rate"] == "600/minute, burst 10", n
assert n["count"] == 600 and n["period_s"] == 60 and n["burst"] == 10 and n["unit"] == "minute", n
assert 299 <= n["oldest_age_s"] <= 400 and n["drain_s"] == 1 and n["last_release"] is None, n
assert n["tenant"] == "corp" and n["rule_account"] == "news@corp.example", n
o = v[0]
assert o["held"] == 2 and o["paused"] is False and o["drain_s"] == 120, o
assert v[1]["held"] == 0 and v[1]["oldest_held"] is None and v[1]["oldest_age_s"] is None, v[1]
' "$out" "$news"

run 0 "one account" pacing "$news"
expect "one account: paused" has "$out" "^paused +yes"
expect "one account: held 5" has "$out" "^held +5$"
expect "one account: the rule" has "$out" "^rate +600/minute, burst 10"
expect "one account: the queue IDs in release order" test \
    "$(grep -oE '^[0-9A-F]{10} ' "$out" | tr -d '\n')" = "4F2A1B3C4D 4F2A1B3C4E 5A0B1C2D3E 6B1C2D3E4F 7C2D3E4F50 "
expect "one account: their age" has "$out" "^4F2A1B3C4D +5 min( [0-9]+ s)? +waiting$"
run 0 "an account with a message being released" pacing bulk/other@bulk.example
expect "being released: counted" has "$out" "^held +2, 1 being released$"
expect "being released: marked" has "$out" "^8A1B2C3D4E +1 h 1 min +being released$"
run 0 "one account --json" pacing bulk/other@bulk.example --json
expect "one account --json parses, with the messages" python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))
assert a["account"] == "bulk/other@bulk.example" and a["held"] == 2 and a["releasing"] == 1, a
m = a["messages"]
assert [x["queue_id"] for x in m] == ["8A1B2C3D4E", "8A1B2C3D4F"], m
assert m[0]["releasing"] is True and m[0]["claimed_at"] and m[1]["releasing"] is False, m
assert m[1]["claimed_at"] is None and 3599 <= m[1]["age_s"] <= 3700 and m[0]["seq"] < m[1]["seq"], m
' "$out"
run 0 "the text view lists 20, --json all" pacing "$news" --json
expect "--json: all five" test "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["messages"]))' "$out")" = 5

# --- release ------------------------------------------------------------------------
run 0 "resume" pacing resume "$news"
expect "resume: not paused" test "$(sql "$pace" "SELECT paused FROM pace_account WHERE account = '$news'")" = 0
run 0 "release with nothing waiting" pacing release bulk/someone@bulk.example
expect "nothing waiting: said so" has "$out" "^nothing to release"
run 0 "release --count 2" pacing release "$news" --count 2
expect "release --count 2: postsuper -H then postqueue -i, in order" test "$(cat "$log")" = "postsuper -c $pfconf -H 4F2A1B3C4D
postqueue -c $pfconf -i 4F2A1B3C4D
postsuper -c $pfconf -H 4F2A1B3C4E
postqueue -c $pfconf -i 4F2A1B3C4E"
expect "release --count 2: one line each" test "$(grep -c '^released [0-9A-F]* (held for' "$out")" -eq 2
expect "release --count 2: the summary" has "$out" "^released 2 of $news's held messages, 3 still held$"
expect "release --count 2: three left, in order" test \
    "$(sql "$pace" "SELECT group_concat(queue_id, ' ') FROM (SELECT queue_id FROM pace_held WHERE account = '$news' ORDER BY seq)")" \
    = "5A0B1C2D3E 6B1C2D3E4F 7C2D3E4F50"
expect "release --count 2: the count follows" test "$(sql "$pace" "SELECT held FROM pace_account WHERE account = '$news'")" = 3

: >"$log"
touch "$tmp/fail-postsuper-6B1C2D3E4F"
run 1 "release --all stops at postsuper's failure" pacing release "$news" --all
expect "the failure: named, with postsuper's message" has "$err" "6B1C2D3E4F: postsuper -H failed: .*simulated failure"
expect "release --all: 5A0B1C2D3E went, then the failing one, nothing after" test "$(cat "$log")" = "postsuper -c $pfconf -H 5A0B1C2D3E
postqueue -c $pfconf -i 5A0B1C2D3E
postsuper -c $pfconf -H 6B1C2D3E4F"
expect "the failing one stays in the schedule, unclaimed, first" test \
    "$(sql "$pace" "SELECT group_concat(queue_id || ':' || claimed_ns, ' ') FROM (SELECT queue_id, claimed_ns
                    FROM pace_held WHERE account = '$news' ORDER BY seq)")" = "6B1C2D3E4F:0 7C2D3E4F50:0"

: >"$log"
rm "$tmp/fail-postsuper-6B1C2D3E4F"
touch "$tmp/fail-postqueue-7C2D3E4F50"
run 0 "release --all with a failing postqueue -i" pacing release "$news" --all
expect "postqueue -i's failure is a warning" has "$err" "warning: 7C2D3E4F50 is released, but postqueue -i failed"
expect "both released" test "$(grep -c '^postsuper ' "$log")" -eq 2
expect "the schedule is empty for news" test "$(sql "$pace" "SELECT held FROM pace_account WHERE account = '$news'") \
$(sql "$pace" "SELECT count(*) FROM pace_held WHERE account = '$news'")" = "0 0"
run 0 "release of the account with one being released" pacing release bulk/other@bulk.example --all
expect "a message the milter is releasing is not released again" test "$(grep -c 8A1B2C3D4E "$log")" -eq 0

# --- unknown accounts, bad usage ---------------------------------------------------
run 1 "unknown account" pacing corp/nobody@corp.example
expect "unknown account: said so" has "$err" "no account \"corp/nobody@corp.example\" in the pacing schedule"
run 1 "release of an unknown account" pacing release corp/nobody@corp.example
for args in "pacing release" "pacing release $news --count 0" "pacing release $news --count x" \
    "pacing release $news --all --count 2" "pacing release $news $news" "pacing noslash" "pacing /x" \
    "pacing corp/" "pacing a/b c/d" "pacing pause" "pacing resume a/b c/d" "pacing --bogus" \
    "pacing pause $news --all"; do
    # shellcheck disable=SC2086
    run 2 "bad usage: $args" $args
    expect "bad usage: $args: the usage line" has "$err" "^usage: posternctl pacing"
done

# --- the audit trail -----------------------------------------------------------------
expect "audit: the changes, in order" test "$(sql "$milter" "SELECT group_concat(action || ':' || ifnull(queue_id, ''), ' ')
    FROM (SELECT action, queue_id FROM audit WHERE component = 'ctl' ORDER BY id)")" = \
    "pause: pause: resume: release:4F2A1B3C4D release:4F2A1B3C4E release:5A0B1C2D3E release:6B1C2D3E4F release:7C2D3E4F50 release:8A1B2C3D4F"
expect "audit: the fields of a release" test "$(sql "$milter" "SELECT tenant, account, stage, rule FROM audit
    WHERE component = 'ctl' AND queue_id = '4F2A1B3C4E'")" = "corp|news@corp.example|pacing|pace"
expect "audit: the reason of a release" has <(sql "$milter" "SELECT reason FROM audit WHERE queue_id = '4F2A1B3C4E'") \
    "^released by the operator .*, outside the pace \(2 of 2\)$"

# --- a milter store this user cannot write: refused before any change ---------------
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    sql "$pace" "UPDATE pace_account SET paused = 0 WHERE account = '$news'"
    chmod 0755 "$tmp" && chmod 0777 "$state" && chown nobody "$pace" && chmod 0644 "$milter"
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$ctl" -c "$conf" pacing pause "$news" >"$out" 2>"$err"
    rc=$?
    if [ "$rc" -eq 1 ]; then ok; else bad "pause with an unwritable milter store (exit $rc, wanted 1)"; fi
    expect "unwritable milter store: said so" has "$err" "cannot write $milter"
    expect "unwritable milter store: nothing changed" \
        test "$(sql "$pace" "SELECT paused FROM pace_account WHERE account = '$news'")" = 0
fi

echo "ctl_pacing: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
