#!/usr/bin/env bash
# ctl_ingest.sh: posternctl ingest MAILLOG... and --follow (Postfix's log
# into STATE_DIR/maillog.sqlite), without a network namespace or a real
# Postfix: a generated log in the traditional syslog format (three
# messages: client, message-id, queued, deliveries sent, deferred and
# bounced with remote replies holding parentheses and commas, a
# notification, removed), foreign programs' lines (sshd, CRON), a line of
# Postfix that is no event, a duplicated line, a line cut by syslog and a
# last line still being written (no newline).  Checks: the counts of the
# first run and the stored fields; a second run adds nothing; after lines
# appended to the old file and a rotation (log -> log.1, a new log), the
# rest of log.1 and the new log are read, nothing twice, nothing lost (the
# set of events compared with the expected one); a missing file (exit 1,
# the other files still read); without arguments, the journal ingestion as
# before; --follow: appended lines and a rotation while it runs reach the
# store, SIGTERM ends it with exit 0.
# Usage: tests/ctl_ingest.sh [BUILD_DIR]  (default: $POSTERN_BUILD, else
# the directory of $POSTERNCTL, else build/werror).
set -uo pipefail
# shellcheck source=ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"
ctl_lib_binary ctl_ingest "$@"

tmp=$(mktemp -d)
follower=
cleanup() {
    [ -n "$follower" ] && kill "$follower" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
state=$tmp/state
mkdir -p "$state" "$tmp/rules.d"
conf=$tmp/postern.yaml
cat >"$conf" <<YAML
rules: $tmp/rules.d
state_dir: $state
timezone: UTC
YAML
db=$state/maillog.sqlite log=$tmp/mail.log

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
expect() {
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}
has() { grep -qE -- "$2" "$1"; }
sql() { sqlite3 -batch -cmd ".timeout 5000" "$db" "$1"; }
# the events as (queue_id, kind, rcpt, status), sorted
events() { sql "SELECT queue_id || ' ' || kind || ' ' || rcpt || ' ' || status FROM maillog_event" | sort; }
# year of the traditional time stamps: the file's mtime
stamp() { touch -d "2026-03-10 13:00:00Z" "$1"; }

# --- the log -----------------------------------------------------------------------
A=4F2A1B3C4D B=5A0B1C2D3E C=6B1C2D3E4F D=7C2D3E4F50 E=8D3E4F5061
bounced_line="Mar 10 12:00:06 mx postfix/smtp[2002]: $B: to=<dave@example.com>, relay=mx.example.com[203.0.113.9]:25, delay=1.5, delays=0.1/0/0.4/1, dsn=5.1.1, status=bounced (host mx.example.com[203.0.113.9] said: 550 5.1.1 <dave@example.com>: Recipient address rejected: User unknown (in reply to RCPT TO command))"
cat >"$log" <<EOF
Mar 10 12:00:00 mx sshd[501]: Accepted publickey for admin from 192.0.2.50 port 50022 ssh2
Mar 10 12:00:01 mx postfix/smtpd[1001]: connect from mail.example.org[192.0.2.7]
Mar 10 12:00:01 mx postfix/smtpd[1001]: $A: client=mail.example.org[192.0.2.7]
Mar 10 12:00:01 mx postfix/cleanup[1100]: $A: message-id=<20260310120001.A1@example.org>
Mar 10 12:00:02 mx postfix/qmgr[900]: $A: from=<alice@example.org>, size=2048, nrcpt=1 (queue active)
Mar 10 12:00:03 mx postfix/smtp[2001]: $A: to=<bob@example.net>, relay=mx.example.net[198.51.100.5]:25, delay=2.25, delays=0.1/0.05/0.5/1.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9E4F506172 (id 1234, size 2048))
Mar 10 12:00:03 mx postfix/qmgr[900]: $A: removed
Mar 10 12:00:04 mx CRON[3001]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)
Mar 10 12:00:04 mx postfix/smtpd[1001]: $B: client=relay.example.org[192.0.2.8], sasl_method=PLAIN, sasl_username=carol
Mar 10 12:00:04 mx postfix/cleanup[1100]: $B: message-id=<b2@example.org>
Mar 10 12:00:05 mx postfix/qmgr[900]: $B: from=<carol@example.org>, size=4096, nrcpt=2 (queue active)
Mar 10 12:00:06 mx postfix/smtp[2002]: $B: to=<erin@example.com>, relay=mx.example.com[203.0.113.9]:25, delay=1.4, delays=0.1/0/0.3/1, dsn=4.2.0, status=deferred (host mx.example.com[203.0.113.9] said: 450 4.2.0 <erin@example.com>: Recipient address rejected: Greylisted, see (http://grey.example.com/), try again later (in reply to RCPT TO command))
$bounced_line
$bounced_line
Mar 10 12:00:06 mx postfix/smtp[2003]: $B: to=<frank@example.com>, relay=mx.exa
Mar 10 12:00:07 mx postfix/bounce[2100]: $B: sender non-delivery notification: $C
Mar 10 12:00:07 mx postfix/qmgr[900]: $C: from=<>, size=3000, nrcpt=1 (queue active)
Mar 10 12:00:08 mx postfix/smtp[2004]: $C: to=<carol@example.org>, relay=mail.example.org[192.0.2.7]:25, delay=0.3, delays=0/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Mar 10 12:00:08 mx postfix/qmgr[900]: $C: removed
EOF
partial="Mar 10 12:00:09 mx postfix/qmgr[900]: $D: from=<news@corp.example>, si"
printf '%s' "$partial" >>"$log"
stamp "$log"
lines1=19   # whole lines; the last one is still being written

# --- without arguments: the journal, as before -------------------------------------
run 1 "ingest without a policyd store" ingest
expect "ingest without arguments: the policyd store is missing" has "$err" "no policyd state at"
expect "ingest without arguments: no mail log store" test ! -e "$db"

# --- the first run -----------------------------------------------------------------
run 0 "first ingest" ingest "$log"
expect "first ingest: the counts" has "$out" \
    "^$log: $lines1 lines, 14 events stored \(1 already known\), 2 not Postfix's, 1 truncated$"
expect "first ingest: one line of output" test "$(wc -l <"$out")" -eq 1
expect "first ingest: 14 events" test "$(sql "SELECT count(*) FROM maillog_event")" -eq 14
expect "the bounce: its fields" test "$(sql "SELECT service, relay, delay_us, dsn, status FROM maillog_event
    WHERE queue_id = '$B' AND rcpt = 'dave@example.com'")" = "smtp|mx.example.com[203.0.113.9]:25|1500000|5.1.1|bounced"
expect "the deferral: the whole reply, with its parentheses and commas" test \
    "$(sql "SELECT reply FROM maillog_event WHERE queue_id = '$B' AND status = 'deferred'")" = \
    "host mx.example.com[203.0.113.9] said: 450 4.2.0 <erin@example.com>: Recipient address rejected: Greylisted, see (http://grey.example.com/), try again later (in reply to RCPT TO command)"
expect "the time of an event (year from the file's mtime, UTC)" test \
    "$(sql "SELECT time_us FROM maillog_event WHERE queue_id = '$A' AND kind = 'delivery'")" = \
    "$(($(date -d "2026-03-10 12:00:03Z" +%s) * 1000000))"
expect "queued: the sender and size=N nrcpt=N" test \
    "$(sql "SELECT sender, detail FROM maillog_event WHERE queue_id = '$B' AND kind = 'queued'")" = \
    "carol@example.org|size=4096 nrcpt=2"
expect "queued: the null sender" test "$(sql "SELECT quote(sender) FROM maillog_event WHERE queue_id = '$C' AND kind = 'queued'")" = "''"
expect "message-id" test "$(sql "SELECT detail FROM maillog_event WHERE queue_id = '$A' AND kind = 'message-id'")" = \
    "20260310120001.A1@example.org"
expect "client" test "$(sql "SELECT detail FROM maillog_event WHERE queue_id = '$A' AND kind = 'client'")" = \
    "mail.example.org[192.0.2.7]"
expect "notify: the notification's queue ID" test \
    "$(sql "SELECT detail FROM maillog_event WHERE queue_id = '$B' AND kind = 'notify'")" = "$C"
expect "the file's row: offset before the unfinished line" test \
    "$(sql "SELECT offset, lines FROM maillog_file WHERE path = '$log'")" = \
    "$(($(stat -c %s "$log") - ${#partial}))|$lines1"

run 0 "second ingest" ingest "$log"
expect "second ingest: nothing new" has "$out" "^$log: 0 lines, 0 events stored \(0 already known\), 0 not Postfix's, 0 truncated$"
expect "second ingest: still 14 events" test "$(sql "SELECT count(*) FROM maillog_event")" -eq 14
run 0 "--json" ingest --json "$log"
expect "--json: one object per file, the counts" python3 -c '
import json, sys
v = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if v == [{"path": sys.argv[2], "lines": 0, "stored": 0, "known": 0, "foreign": 0, "truncated": 0}] else 1)
' "$out" "$log"

# --- appended to, then rotated ------------------------------------------------------
cat >>"$log" <<EOF
ze=900, nrcpt=1 (queue active)
Mar 10 12:00:10 mx postfix/smtp[2005]: $D: to=<list@example.net>, relay=mx.example.net[198.51.100.5]:25, delay=0.5, delays=0/0/0.2/0.3, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Mar 10 12:00:10 mx postfix/qmgr[900]: $D: removed
EOF
stamp "$log"
mv "$log" "$log.1"
cat >"$log" <<EOF
Mar 10 12:00:10 mx postfix/qmgr[900]: $D: removed
Mar 10 12:30:06 mx postfix/smtp[2006]: $B: to=<erin@example.com>, relay=mx.example.com[203.0.113.9]:25, delay=1806, delays=1800/0/0.3/5.7, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1A2B3C4D5E)
Mar 10 12:30:06 mx postfix/qmgr[900]: $B: removed
Mar 10 12:31:00 mx postfix/pickup[950]: $E: uid=0 from=<root>
Mar 10 12:31:00 mx postfix/postsuper[960]: $E: placed on hold
Mar 10 12:31:30 mx postfix/postsuper[961]: $E: released from hold
Mar 10 12:31:31 mx postfix/qmgr[900]: $E: from=<root@mx.example>, status=expired, returned to sender
EOF
stamp "$log"
run 0 "ingest after the rotation" ingest "$log"
expect "after the rotation: the rest of log.1 first" has "$out" \
    "^$log.1: 3 lines, 3 events stored \(0 already known\), 0 not Postfix's, 0 truncated$"
expect "after the rotation: the new log" has "$out" \
    "^$log: 7 lines, 6 events stored \(1 already known\), 0 not Postfix's, 0 truncated$"
expect "after the rotation: log.1 reported before the log" test "$(head -n 1 "$out" | cut -d: -f1)" = "$log.1"
cat >"$tmp/expected" <<EOF
$A client  
$A delivery bob@example.net sent
$A message-id  
$A queued  
$A removed  
$B client  
$B delivery dave@example.com bounced
$B delivery erin@example.com deferred
$B delivery erin@example.com sent
$B message-id  
$B notify  
$B queued  
$B removed  
$C delivery carol@example.org sent
$C queued  
$C removed  
$D delivery list@example.net sent
$D queued  
$D removed  
$E expired  expired
$E hold  
$E pickup  
$E release  
EOF
events >"$tmp/got"
sort -o "$tmp/expected" "$tmp/expected"
expect "the events: nothing twice, nothing lost" diff "$tmp/expected" "$tmp/got"
expect "pickup: uid" test "$(sql "SELECT sender, detail FROM maillog_event WHERE kind = 'pickup'")" = "root|uid=0"
run 0 "ingest after the rotation, again" ingest "$log"
expect "again: nothing from log.1, nothing new" test "$(cat "$out")" = \
    "$log: 0 lines, 0 events stored (0 already known), 0 not Postfix's, 0 truncated"
expect "again: the same events" test "$(events)" = "$(cat "$tmp/got")"

# --- a file that cannot be read -------------------------------------------------
run 1 "a missing file" ingest "$tmp/nosuch.log" "$log"
expect "a missing file: the reason" has "$err" "cannot read the mail log $tmp/nosuch.log: No such file or directory"
expect "a missing file: the other one still read" has "$out" "^$log: 0 lines"
run 2 "an unknown option" ingest --nosuch "$log"
# with policyd's store: its journal first, then the mail log
: >"$state/policyd.sqlite"
run 0 "with a policyd store" ingest "$log"
expect "with a policyd store: the journal, then the mail log" test "$(cat "$out")" = \
    "ingested 0 decisions; the store holds the journal through id 0
$log: 0 lines, 0 events stored (0 already known), 0 not Postfix's, 0 truncated"

# --- --follow ----------------------------------------------------------------------
# wait_for DESCRIPTION SQL WANT: poll (deadline 30 s) until SQL answers WANT
wait_for() {
    local what=$1 q=$2 want=$3 i
    for ((i = 0; i < 300; i++)); do
        [ "$(sql "$q" 2>/dev/null)" = "$want" ] && { ok; return 0; }
        sleep 0.1
    done
    bad "$what (got $(sql "$q"), wanted $want)"
}
F=9A4B5C6D7E
"$ctl" -c "$conf" ingest --follow "$log" >"$tmp/follow.out" 2>"$tmp/follow.err" &
follower=$!
for ((i = 0; i < 300; i++)); do has "$tmp/follow.out" "^$log: 0 lines" && break; sleep 0.1; done
expect "follow: the first pass reported" has "$tmp/follow.out" "^$log: 0 lines"
cat >>"$log" <<EOF
Mar 10 12:40:00 mx postfix/qmgr[900]: $F: from=<bob@example.org>, size=100, nrcpt=1 (queue active)
Mar 10 12:40:01 mx postfix/smtp[2007]: $F: to=<zed@example.com>, relay=none, delay=0.1, delays=0/0/0.1/0, dsn=4.4.1, status=deferred (connect to mx.example.com[203.0.113.9]:25: Connection refused)
EOF
wait_for "follow: the appended lines are stored" "SELECT count(*) FROM maillog_event WHERE queue_id = '$F'" 2
# rotation while following: the old file gets a last line, then a new file
printf '%s\n' "Mar 10 12:41:00 mx postfix/qmgr[900]: $F: removed" >>"$log"
mv "$log" "$log.2"
printf '%s\n' "Mar 10 12:42:00 mx postfix/smtp[2008]: $F: to=<yves@example.com>, relay=mx.example.com[203.0.113.9]:25, delay=60, delays=0/0/0.1/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)" >"$log"
wait_for "follow: the old file's last line and the new file" \
    "SELECT count(*) FROM maillog_event WHERE queue_id = '$F'" 4
wait_for "follow: the row names the new file" "SELECT ino FROM maillog_file WHERE path = '$log'" "$(stat -c %i "$log")"
kill -TERM "$follower"
wait "$follower"
rc=$?
follower=
expect "follow: SIGTERM ends it with exit 0 (got $rc)" test "$rc" -eq 0
expect "follow: the final report" has "$tmp/follow.out" "^$log: 4 lines, 4 events stored \(0 already known\), 0 not Postfix's, 0 truncated$"
expect "follow: nothing on stderr" test ! -s "$tmp/follow.err"
run 0 "after follow: nothing left to read" ingest "$log"
expect "after follow: 0 lines" has "$out" "^$log: 0 lines"

echo "ctl_ingest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
