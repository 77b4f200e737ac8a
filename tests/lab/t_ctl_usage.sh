#!/usr/bin/env bash
# t_ctl_usage.sh: posternctl usage, audit, ingest and counters reset.
#  - Against a policyd state file prepared by hand: the schema is that of
#    lib/store.c (its migrations, read from the source), the rows are
#    written with the sqlite3 CLI exactly as lib/counters_sqlite.c and
#    lib/audit.c write them; no daemon.
#  - With postern-policyd running (foreground, a unix socket in the temp
#    dir, no namespace): usage and audit show its decisions at once (they
#    ingest its journal first), counters reset goes through the daemon
#    (its memory counters too), a reset it does not take in time stays
#    queued and is applied when it starts.
#  - On copies of the daemon's journal next to a fresh store: ingest,
#    ingest-first for usage and for a direct reset, the read-only warning
#    of a user who cannot write the state (as nobody, when run as root),
#    a locked store.
# Uses the build of tests/run (POSTERN_BUILD; POLICYD overrides the
# daemon); prints one PASS:/FAIL: line per check.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${POSTERN_BUILD:-$top/build/werror}
ctl=$build/ctl/posternctl
policyd=${POLICYD:-$build/policyd/postern-policyd}
DEADLINE=${DEADLINE:-60}
tmp=$(mktemp -d /tmp/postern-t-ctl.XXXXXX)
pids=()   # processes this test started, killed at exit
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { # check NAME CMD...: CMD exits 0
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
# wait_until CMD...: until CMD exits 0, at most $DEADLINE s
wait_until() {
    local end=$((SECONDS + DEADLINE))
    until "$@"; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.05
    done
}

for tool in sqlite3 python3; do
    command -v "$tool" >/dev/null || { fail "$tool is not installed"; exit 1; }
done
[ -x "$ctl" ] || { fail "no $ctl (build first)"; exit 1; }

# --- the state file ------------------------------------------------------------
state=$tmp/state
db=$state/policyd.sqlite
mkdir -p "$state"
# a pid file no daemon holds: counters reset works on the store itself
cat >"$tmp/postern.yaml" <<EOF
rules: $top/rules/examples
state_dir: $state
timezone: UTC
policyd:
  pid_file: $tmp/run/none.pid
EOF
conf=$tmp/postern.yaml

# make_store DB: a store with every migration of lib/store.c, in order (C
# string literals of store_migrations[], one entry per comma).
make_store() {
    python3 - "$top/lib/store.c" "$1" <<'EOF'
import re, sqlite3, sys
src = open(sys.argv[1]).read()
body = src[src.index("store_migrations[] = {"):]
body = body[body.index("{") + 1:body.index("};")]
body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
migrations, cur = [], ""
for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(,)', body):
    if m.group(2):
        migrations.append(cur)
        cur = ""
    else:
        cur += m.group(1).encode().decode("unicode_escape")
if cur.strip():
    migrations.append(cur)
db = sqlite3.connect(sys.argv[2])
for sql in migrations:
    db.executescript(sql)
db.execute("PRAGMA journal_mode = WAL")
db.commit()
EOF
}
make_store "$db" || { fail "cannot create the store schema"; exit 1; }

# Windows at the test's clock, 2026-03-10T12:00:00Z (UTC).
at=2026-03-10T12:00:00Z
day=1773100800                      # 2026-03-10T00:00:00Z
next=$((day + 86400))
hour=$((day + 12 * 3600))
now=$(date +%s)
nl="char(10)"
sqlite3 "$db" <<EOF || { fail "cannot write the rows"; exit 1; }
-- counters_sqlite.c: INSERT INTO counters (key, unit, window_start, window_end, value)
INSERT INTO counters (key, unit, window_start, window_end, value) VALUES
 ('t:acme:bytes', 'day', $day, $next, 1234567),
 ('a:acme:newsletter@news.acme.example:messages', 'day', $day, $next, 1200),
 ('a:acme:alice@acme.example:messages', 'day', $day, $next, 12),
 ('a:acme:alice@acme.example:recipients', 'day', $day, $next, 40),
 ('a:acme:bob@news.acme.example:messages', 'day', $day, $next, 3),
 ('a:acme:bob@news.acme.example:messages', 'day', $((day - 86400)), $day, 99),
 ('t:globex:messages', 'hour', $hour, $((hour + 3600)), 7),
 ('a:globex:ceo@globex.example:messages', 'day', $day, $next, 17),
 ('t:acme2:bytes', 'day', $day, $next, 5);
-- audit.c: empty strings as NULL, recipients one per line
INSERT INTO audit (time_us, component, tenant, account, client_ip, sasl_login, sender,
                   recipients, queue_id, instance, stage, action, reason, rule, counters, latency_us)
VALUES
 ((${day} + 36000) * 1000000, 'policyd', 'acme', 'alice@acme.example', '192.0.2.1',
  'alice@acme.example', 'Alice@Acme.example', 'bob@example.org' || $nl || 'Carol@Example.net',
  NULL, 'i1', 'rcpt', 'DUNNO', 'tenant submission', 'permit', NULL, 120),
 ((${day} + 37000) * 1000000, 'policyd', 'acme', 'alice@acme.example', '192.0.2.1',
  'alice@acme.example', 'alice@acme.example', 'dave@example.org', '4ZXk9f2PqJz1', 'i1', 'eom',
  '451 4.7.1 quota of account alice@acme.example: messages 500/day, 500 used', 'quota',
  'quota.account.messages.day', 'a:acme:alice@acme.example:messages/day=500+1/500', 300),
 ((${day} + 38000) * 1000000, 'policyd', NULL, NULL, '198.51.100.9', NULL, 'x@other.example',
  'xcarol@example.net', NULL, 'i2', 'rcpt', 'DUNNO', 'not a tenant submission', 'identify.none',
  NULL, 50),
 ((${day} + 39000) * 1000000, 'policyd', 'globex', 'ceo@globex.example', '192.0.2.7',
  'ceo@globex.example', 'ceo@globex.example', 'carol@example.net', NULL, 'i3', 'rcpt', 'DUNNO',
  'tenant submission', 'permit', NULL, 70),
 (($now - 3600) * 1000000, 'policyd', 'initech', 'billing@billing.initech.example', '192.0.2.66',
  NULL, 'billing@billing.initech.example', 'payer@example.com', NULL, 'i4', 'rcpt', 'DUNNO',
  'tenant submission', 'permit', NULL, 80),
 (($now - 3 * 3600) * 1000000, 'policyd', 'initech', 'billing@billing.initech.example',
  '192.0.2.66', NULL, 'billing@billing.initech.example', 'old@example.com', NULL, 'i5', 'rcpt',
  'DUNNO', 'tenant submission', 'permit', NULL, 80);
EOF

out=$tmp/out
err=$tmp/err
run() { "$ctl" -c "$conf" "$@" >"$out" 2>"$err"; }
# has REGEX: a line of the last output matches
has() { grep -Eq "$1" "$out"; }
lines() { grep -c . "$out"; }
json() { python3 -c "import json, sys; d = json.load(open('$out')); sys.exit(0 if ($1) else 1)"; }

# --- usage ------------------------------------------------------------------------
W='2026-03-10T00:00:00\+00:00 +2026-03-11T00:00:00\+00:00$'
run usage --at "$at"
check "usage exits 0" test $? -eq 0
check "usage: header and time zone" has '^usage at 2026-03-10T12:00:00\+00:00 \(time zone UTC\)$'
check "usage: tenant byte quota with its count, window and reset" \
    has "^acme +\(tenant\) +bytes +day +1234567 +53687091200 +0% +$W"
check "usage: unlimited account counted per day" \
    has "^acme +newsletter@news.acme.example +messages +day +1200 +unlimited +- +$W"
check "usage: each \"*\" login with counters" has "^acme +alice@acme.example \[\*\] +messages +day +12 +500 +2% +$W"
check "usage: \"*\" quota without a count shows 0" has "^acme +alice@acme.example \[\*\] +recipients +day +40 +2000 +2% "
check "usage: an earlier window is not counted" has "^acme +bob@news.acme.example \[\*\] +messages +day +3 +500 "
check "usage: hour window of a tenant" \
    has '^globex +\(tenant\) +messages +hour +7 +2000 +0% +2026-03-10T12:00:00\+00:00 +2026-03-10T13:00:00\+00:00$'
check "usage: declared account" has "^globex +ceo@globex.example +messages +day +17 +1000 +1% "
check "usage: tenants sorted by name" test "$(awk 'NR > 2 { print $1 }' "$out" | uniq | tr '\n' ' ')" = "acme globex initech "
check "usage: counters of unknown tenants are not shown" test "$(grep -c acme2 "$out")" -eq 0

run usage acme --json --at "$at"
check "usage acme --json exits 0" test $? -eq 0
check "usage acme --json is JSON with only acme" json '[t["tenant"] for t in d["tenants"]] == ["acme"]'
check "usage --json: tenant limits" json 'd["tenants"][0]["limits"] == [{"counter": "t:acme:bytes", "metric": "bytes", "window": "day", "used": 1234567, "limit": 53687091200, "unlimited": False, "window_start": "2026-03-10T00:00:00+00:00", "window_end": "2026-03-11T00:00:00+00:00", "resets_at": "2026-03-11T00:00:00+00:00"}]'
check "usage --json: accounts, declared first, then \"*\" logins by name" \
    json '[(a["account"], a["wildcard"]) for a in d["tenants"][0]["accounts"]] == [("newsletter@news.acme.example", False), ("alice@acme.example", True), ("bob@news.acme.example", True)]'
check "usage --json: unlimited" json 'd["tenants"][0]["accounts"][0]["limits"][0]["limit"] is None and d["tenants"][0]["accounts"][0]["limits"][0]["used"] == 1200'
check "usage --json: \"*\" login counts" \
    json '[(l["metric"], l["used"], l["limit"]) for l in d["tenants"][0]["accounts"][1]["limits"]] == [("messages", 12, 500), ("recipients", 40, 2000)]'

run usage --at "$at"
check "usage without a journal says nothing on stderr" test ! -s "$err"

run usage ACME --at "$at"
check "usage: tenant name is case-insensitive" has '^acme +\(tenant\)'
run usage nobody
check "usage of an unknown tenant exits 1" test $? -eq 1
check "usage of an unknown tenant says so" grep -q 'no tenant named "nobody"' "$err"
run usage --at yesterday
check "usage --at with a bad time exits 1" test $? -eq 1

# in another zone: windows at local midnight, times with the local offset
sed 's/^timezone: UTC/timezone: Europe\/Paris/' "$conf" >"$tmp/paris.yaml"
"$ctl" -c "$tmp/paris.yaml" usage initech --at 2026-03-10T12:00:00+01:00 >"$out" 2>"$err"
check "usage in the configured zone" \
    has '^initech +\(tenant\) +messages +day +0 +5000 +0% +2026-03-10T00:00:00\+01:00 +2026-03-11T00:00:00\+01:00$'

# --- audit ------------------------------------------------------------------------
run audit
check "audit exits 0" test $? -eq 0
check "audit: every record, newest first" test "$(awk '{ print $3 }' "$out" | tr '\n' ' ')" = "192.0.2.66 192.0.2.66 192.0.2.7 198.51.100.9 192.0.2.1 192.0.2.1 "
check "audit: one line per record with its fields" grep -qxF '2026-03-10T10:16:40+00:00 acme/alice@acme.example 192.0.2.1 alice@acme.example alice@acme.example dave@example.org eom "451 4.7.1 quota of account alice@acme.example: messages 500/day, 500 used" quota.account.messages.day' "$out"
run audit --tenant acme
check "audit --tenant" test "$(lines)" -eq 2
check "audit --tenant: newest first" test "$(awk '{ print $7 }' "$out" | tr '\n' ' ')" = "eom rcpt "
run audit --sender ALICE@acme.EXAMPLE
check "audit --sender (case-insensitive)" test "$(lines)" -eq 2
run audit --recipient CAROL@example.net
check "audit --recipient matches whole recipients, any case" test "$(awk '{ print $2 }' "$out" | tr '\n' ' ')" = "globex/ceo@globex.example acme/alice@acme.example "
run audit --recipient carol
check "audit --recipient: no partial match" test ! -s "$out"
run audit --account ALICE@acme.example --recipient dave@example.org
check "audit --account and --recipient" test "$(lines)" -eq 1
run audit --since 2026-03-10T10:10 --until '2026-03-10 10:40:00Z'
check "audit --since/--until ISO" test "$(awk '{ print $1 }' "$out" | tr '\n' ' ')" = "2026-03-10T10:33:20+00:00 2026-03-10T10:16:40+00:00 "
run audit --since 2h
check "audit --since 2h" test "$(lines)" -eq 1
run audit --limit 2
check "audit --limit" test "$(lines)" -eq 2
run audit --queue-id 4ZXk9f2PqJz1 --json
check "audit --queue-id --json: every field" json 'len(d) == 1 and d[0]["queue_id"] == "4ZXk9f2PqJz1" and d[0]["recipients"] == ["dave@example.org"] and d[0]["counters"] == "a:acme:alice@acme.example:messages/day=500+1/500" and d[0]["latency_us"] == 300 and d[0]["time"] == "2026-03-10T10:16:40+00:00" and d[0]["reason"] == "quota"'
run audit --recipient nobody@example.org --json
check "audit --json without records is []" json 'd == []'
run audit --since tomorrow
check "audit with a bad time exits 1" test $? -eq 1
run audit stray
check "audit with an argument is a usage error (2)" test $? -eq 2

# --- counters reset ---------------------------------------------------------------
run counters reset acme --at "$at" </dev/null
check "counters reset without --yes (no terminal) exits 1" test $? -eq 1
check "... and resets nothing" test "$(sqlite3 "$db" "SELECT count(*) FROM counters WHERE key LIKE '%:acme:%'")" -eq 6

run counters reset alice@acme.example --yes --at "$at"
check "counters reset of a \"*\" login exits 0" test $? -eq 0
check "counters reset prints what it reset" has '^reset 2 counters of alice@acme.example \("\*" account of tenant acme\) \(current windows\):$'
check "counters reset prints the values before" has '^a:acme:alice@acme.example:recipients +day +40 '
run counters reset bob@news.acme.example --window day --yes --at "$at"
check "counters reset --window day: every day window" has '^reset 2 counters'
check "... including earlier windows" test "$(sqlite3 "$db" "SELECT count(*) FROM counters WHERE key LIKE 'a:acme:bob@%'")" -eq 0

run counters reset acme --yes --json --at "$at"
check "counters reset TENANT --json" json 'd["tenant"] == "acme" and d["account"] is None and d["count"] == 2 and sorted(r["counter"] for r in d["reset"]) == ["a:acme:newsletter@news.acme.example:messages", "t:acme:bytes"]'
run usage acme --json --at "$at"
check "after the reset usage shows 0" json 'all(l["used"] == 0 for t in d["tenants"] for l in t["limits"] + [l for a in t["accounts"] for l in a["limits"]])'
check "after the reset no \"*\" login is left" json '[a["account"] for a in d["tenants"][0]["accounts"]] == ["newsletter@news.acme.example"]'
check "another tenant is untouched" test "$(sqlite3 "$db" "SELECT value FROM counters WHERE key = 't:globex:messages'")" -eq 7
check "a tenant whose name starts alike is untouched" test "$(sqlite3 "$db" "SELECT value FROM counters WHERE key = 't:acme2:bytes'")" -eq 5

run audit --tenant acme --limit 1 --json
check "the reset is audited" json 'd[0]["component"] == "ctl" and d[0]["stage"] == "admin" and d[0]["action"] == "counters reset" and d[0]["rule"] == "ctl.counters_reset" and d[0]["account"] is None and "reset by " in d[0]["reason"] and "tenant acme" in d[0]["reason"]'
check "the audit record holds the values before" json 'sorted(d[0]["counters"].split()) == ["a:acme:newsletter@news.acme.example:messages/day=1200", "t:acme:bytes/day=1234567"]'
run audit --tenant acme
check "the reset shows in the audit lines" has '^[-0-9T:+]+ acme - - - - admin "counters reset" ctl.counters_reset$'

run counters reset ceo@globex.example --yes --at "$at"
check "counters reset of a declared account" has '^reset 1 counter of account ceo@globex.example of tenant globex'
check "... leaves the tenant's counters" test "$(sqlite3 "$db" "SELECT value FROM counters WHERE key = 't:globex:messages'")" -eq 7
run counters reset acme --yes --at "$at"
check "nothing left to reset" has '^nothing to reset'
run counters reset nobody@nowhere.example --yes
check "counters reset of an unknown account exits 1" test $? -eq 1
check "... and says so" grep -q 'no tenant or account "nobody@nowhere.example"' "$err"
run counters reset acme --window fortnight --yes
check "counters reset --window with a bad unit is a usage error (2)" test $? -eq 2

run ingest
check "ingest without a journal" has '^ingested 0 decisions; the store holds the journal through id 0$'
run ingest "$tmp/no-such-log"
check "ingest of a mail log that does not exist: exit 1" test $? -eq 1

# --- with postern-policyd running -------------------------------------------------
dstate=$tmp/dstate
ddb=$dstate/policyd.sqlite
sock=$tmp/policy.sock
dlog=$tmp/policyd.log
cat >"$tmp/daemon.yaml" <<EOF
rules: $top/rules/examples
state_dir: $dstate
timezone: UTC
user: $(id -un)
log_level: info
policyd:
  listen: [unix:$sock]
  pid_file: $tmp/run/policyd.pid
EOF
dconf=$tmp/daemon.yaml
drun() { "$ctl" -c "$dconf" "$@" >"$out" 2>"$err"; }
dsql() { sqlite3 "$ddb" "$1"; }
none_queued() { [ "$(dsql "SELECT count(*) FROM reset_request WHERE done_jid IS NULL")" -eq 0 ]; }

# send.py LOGIN N RCPTS SIZE: N END-OF-MESSAGE requests of LOGIN on one
# connection (the protocol: attribute lines, an empty line; the reply
# "action=...", an empty line); prints each action
cat >"$tmp/send.py" <<'EOF'
import socket, sys
path, login, n, rcpts, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)
s.connect(path)
f = s.makefile("rb")
for i in range(n):
    a = {"request": "smtpd_access_policy", "protocol_state": "END-OF-MESSAGE", "protocol_name": "ESMTP",
         "client_address": "192.0.2.10", "sasl_method": "PLAIN", "sasl_username": login, "sender": login,
         "recipient": "", "recipient_count": rcpts, "size": size, "queue_id": "Q%s%d" % (login[:3], i),
         "instance": "i.%s.%d" % (login, i)}
    s.sendall("".join("%s=%s\n" % kv for kv in a.items()).encode() + b"\n")
    reply = []
    while True:
        line = f.readline()
        if not line:
            sys.exit("the daemon closed the connection")
        if line == b"\n":
            break
        reply.append(line.decode().rstrip("\n"))
    print(" ".join(reply))
EOF
send() { python3 "$tmp/send.py" "$sock" "$@" >"$out" 2>"$err"; }

# daemon_start: in the foreground (-f), in the background of this shell
daemon_start() {
    : >"$dlog"
    "$policyd" -f -c "$dconf" >>"$dlog" 2>&1 &
    dpid=$!
    pids+=("$dpid")
    wait_until grep -q 'event=start ' "$dlog" && [ -S "$sock" ]
}
daemon_stop() {
    kill -TERM "$dpid" && wait "$dpid"
}

if ! daemon_start; then
    fail "postern-policyd did not start: $(tail -5 "$dlog")"
else
    pass "postern-policyd started"
    send bob@acme.example 3 2 1000
    check "three messages of bob@acme.example permitted" test "$(grep -c '^action=FILTER acme-out:$' "$out")" -eq 3
    send ceo@globex.example 2 1 500
    check "two messages of ceo@globex.example answered" test "$(grep -c '^action=' "$out")" -eq 2

    # no wait: usage and audit ingest the journal themselves
    drun usage acme --json
    check "usage shows the daemon's counts at once" json '[(l["metric"], l["used"]) for a in d["tenants"][0]["accounts"] if a["account"] == "bob@acme.example" for l in a["limits"]] == [("messages", 3), ("recipients", 6)] and d["tenants"][0]["limits"][0]["used"] == 3000'
    drun audit --tenant acme --json
    check "audit shows the daemon's decisions at once" json 'len(d) == 3 and all(r["stage"] == "eom" and r["sasl_login"] == "bob@acme.example" for r in d)'
    check "... and the store holds them" test "$(dsql "SELECT count(*) FROM audit WHERE tenant = 'acme'")" -eq 3

    n_req=$(dsql "SELECT count(*) FROM reset_request")
    drun counters reset bob@acme.example --yes
    check "counters reset through the daemon exits 0" test $? -eq 0
    check "... prints what the daemon reset" has '^reset 2 counters of bob@acme.example \("\*" account of tenant acme\) \(current windows\):$'
    check "... with the values before" has '^a:acme:bob@acme.example:messages +day +3 +[-0-9T:+]+ +[-0-9T:+]+$'
    check "... both of them" has '^a:acme:bob@acme.example:recipients +day +6 '
    check "... as a request the daemon did" test "$(dsql "SELECT count(*) FROM reset_request WHERE done_jid IS NOT NULL")" -eq $((n_req + 1))
    drun usage acme --json
    check "after the reset usage shows 0 (no counter of bob left)" json '[a["account"] for a in d["tenants"][0]["accounts"]] == ["newsletter@news.acme.example"] and d["tenants"][0]["limits"][0]["used"] == 3000'
    send bob@acme.example 1 2 1000
    drun usage acme --json
    check "the daemon's next decision counts from 0" json '[(l["metric"], l["used"]) for a in d["tenants"][0]["accounts"] if a["account"] == "bob@acme.example" for l in a["limits"]] == [("messages", 1), ("recipients", 2)]'
    drun audit --tenant acme --limit 2 --json
    check "... and its audit record says so" json 'd[0]["stage"] == "eom" and "a:acme:bob@acme.example:messages/day=0+1/500" in d[0]["counters"].split()'
    check "audit shows the daemon's reset record" json 'd[1]["component"] == "ctl" and d[1]["stage"] == "admin" and d[1]["action"] == "counters reset" and d[1]["rule"] == "ctl.counters_reset" and d[1]["account"] == "bob@acme.example" and "reset by " in d[1]["reason"] and sorted(d[1]["counters"].split()) == ["a:acme:bob@acme.example:messages/day=3", "a:acme:bob@acme.example:recipients/day=6"]'
    drun audit --tenant acme --limit 2
    check "... in the audit lines" has '^[-0-9T:+]+ acme/bob@acme.example - - - - admin "counters reset" ctl.counters_reset$'

    drun counters reset acme --yes --json
    check "counters reset TENANT --json through the daemon" json 'd["tenant"] == "acme" and d["account"] is None and d["scope"] == "current windows" and d["by"] and d["count"] == 3 and [(r["counter"], r["value"]) for r in d["reset"]] == [("a:acme:bob@acme.example:messages", 1), ("a:acme:bob@acme.example:recipients", 2), ("t:acme:bytes", 4000)]'

    n_req=$(dsql "SELECT count(*) FROM reset_request")
    drun counters reset acme --yes --at now
    check "counters reset --at while the daemon runs exits 1" test $? -eq 1
    check "... says why" grep -q -- '--at cannot be used while postern-policyd is running' "$err"
    check "... and queues nothing" test "$(dsql "SELECT count(*) FROM reset_request")" -eq "$n_req"

    daemon_stop
    check "postern-policyd stopped (SIGTERM, exit 0)" test $? -eq 0

    # a pid file locked by a stand-in: posternctl takes it for a running
    # daemon that does not take the request
    python3 -c 'import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
signal.pause()' "$tmp/run/policyd.pid" "$tmp/locked" &
    holder=$!
    pids+=("$holder")
    wait_until test -e "$tmp/locked"
    drun counters reset ceo@globex.example --yes --timeout 1
    check "a reset the daemon does not take: exit 1" test $? -eq 1
    check "... says so" grep -qF 'posternctl: postern-policyd did not take the reset within 1 s (is it serving? see its log); the request stays queued and will be applied when it does' "$err"
    check "... and the request stays queued" test "$(dsql "SELECT count(*) FROM reset_request WHERE done_jid IS NULL")" -eq 1
    kill "$holder"
    wait "$holder" 2>/dev/null
    rm -f "$tmp/run/policyd.pid"
    if ! daemon_start; then
        fail "postern-policyd did not start again: $(tail -5 "$dlog")"
    else
        check "the queued reset is applied when the daemon starts" wait_until none_queued
        drun usage globex --json
        check "... its counters are 0" json '[l["used"] for a in d["tenants"][0]["accounts"] if a["account"] == "ceo@globex.example" for l in a["limits"]] == [0] and [l["used"] for l in d["tenants"][0]["limits"] if l["window"] == "day"] == [2, 2]'
        daemon_stop
    fi
fi

# --- copies of the daemon's journal next to a fresh store ----------------------------
# jstate NAME: $tmp/NAME, a state with a fresh store and a copy of the
# daemon's journal (no daemon: its pid file is missing), and $tmp/NAME.yaml
jstate() {
    local d=$tmp/$1
    mkdir -p "$d" && cp -r "$dstate/journal" "$d/" && make_store "$d/policyd.sqlite" &&
        sed "s|^state_dir: .*|state_dir: $d|" "$conf" >"$tmp/$1.yaml"
}
jrun() { # jrun NAME ARGS...: posternctl on that copy
    local name=$1
    shift
    "$ctl" -c "$tmp/$name.yaml" "$@" >"$out" 2>"$err"
}
counters_of() { sqlite3 "$1" "SELECT key, unit, window_start, value FROM counters ORDER BY 1, 2, 3"; }

if [ ! -d "$dstate/journal" ]; then
    fail "no journal of the daemon to copy"
else
    jn=$(dsql "SELECT count(*) FROM audit")        # every record is one audit row
    jid=$(dsql "SELECT journal_id FROM ingest_state")

    jstate j2
    jrun j2 ingest
    check "ingest of a journal exits 0" test $? -eq 0
    check "ingest says how many records, and the id" has "^ingested $jn decisions; the store holds the journal through id $jid\$"
    check "... the audit records are those of the daemon's store" \
        test "$(sqlite3 "$tmp/j2/policyd.sqlite" "SELECT count(*) FROM audit")" -eq "$jn"
    check "... and so are the counters" test "$(counters_of "$tmp/j2/policyd.sqlite")" = "$(counters_of "$ddb")"
    jrun j2 ingest
    check "ingest again: nothing more" has "^ingested 0 decisions; the store holds the journal through id $jid\$"

    # a writer that keeps the store locked beyond the busy timeout
    python3 -c 'import signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
signal.pause()' "$tmp/j2/policyd.sqlite" "$tmp/j2-locked" &
    holder=$!
    pids+=("$holder")
    if wait_until test -e "$tmp/j2-locked"; then
        jrun j2 usage
        check "usage with the store locked: exit 1" test $? -eq 1
        check "... naming the cause" grep -Eq '^posternctl: cannot ingest the journal .*/j2/journal into the store: .*locked' "$err"
    else
        fail "the store of j2 could not be locked"
    fi
    kill "$holder"
    wait "$holder" 2>/dev/null

    # a direct reset (no daemon) ingests first: the counters it resets are
    # the journal's, its audit record comes after the journal's
    jstate j3
    jrun j3 counters reset globex --yes
    check "direct counters reset on a journal not ingested exits 0" test $? -eq 0
    check "... resets the journal's counts" has '^t:globex:messages +day +2 '
    check "... all of them" has '^t:globex:recipients +day +2 '
    jrun j3 ingest
    check "... after ingesting the whole journal" has "^ingested 0 decisions; the store holds the journal through id $jid\$"
    jrun j3 audit --limit 1 --json
    check "... and its audit record comes last" json "d[0]['id'] == $jn + 1 and d[0]['component'] == 'ctl' and d[0]['tenant'] == 'globex'"

    # a user who cannot write the state: read-only, with a warning
    if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1 && command -v runuser >/dev/null; then
        jstate j
        chmod 0755 "$tmp"
        chmod -R a+rX "$tmp/j"
        chmod 0777 "$tmp/j"   # SQLite makes the -shm file of a read-only reader there
        asnobody() { runuser -u nobody -- "$ctl" -c "$tmp/j.yaml" "$@" >"$out" 2>"$err"; }
        asnobody usage globex --json
        check "usage by a user who cannot write the state exits 0" test $? -eq 0
        check "... warns of the journal's records not in the store" grep -qxF "posternctl: warning: $jn decisions in the journal are not in the store yet (run posternctl as root or as the daemon's user to include them)" "$err"
        check "... and shows the store as it is" json '[l["used"] for l in d["tenants"][0]["limits"] if l["window"] == "day"] == [0, 0]'
        asnobody ingest
        check "ingest by that user exits 1" test $? -eq 1
        check "... and says why" grep -q 'cannot write the state in .*: run posternctl as root or as the daemon.s user' "$err"
        asnobody counters reset globex --yes
        check "counters reset by that user exits 1" test $? -eq 1
        jrun j usage globex --json
        check "usage by root ingests the journal" json '[l["used"] for l in d["tenants"][0]["limits"] if l["window"] == "day"] == [2, 2]'
        asnobody usage globex
        check "then no warning" test ! -s "$err"
    else
        echo "SKIP: the read-only user checks (need root, user nobody and runuser)"
    fi
fi

# --- no state yet -------------------------------------------------------------------
sed "s|^state_dir: .*|state_dir: $tmp/none|" "$conf" >"$tmp/none.yaml"
for cmd in "usage" "audit" "ingest" "counters reset acme --yes"; do
    # shellcheck disable=SC2086
    "$ctl" -c "$tmp/none.yaml" $cmd >"$out" 2>"$err"
    rc=$?
    if [ "$rc" -eq 1 ] && grep -qF "no policyd state at $tmp/none/policyd.sqlite (has postern-policyd run?)" "$err"; then
        pass "$cmd without a store: exit 1 and says so"
    else
        fail "$cmd without a store: exit $rc: $(cat "$err")"
    fi
done
check "no store was created" test ! -e "$tmp/none"

[ "$failures" -eq 0 ]
