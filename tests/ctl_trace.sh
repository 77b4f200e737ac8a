#!/usr/bin/env bash
# ctl_trace.sh: posternctl trace (the story of a message, or of the mail
# to an address), without a network namespace: a mail log written here
# (RFC 3339 timestamps of the last hour) is read with "posternctl ingest
# LOG", and postern-milter's audit records are added to its store with
# sqlite3 (the store created by "posternctl pacing pause", so that its
# schema is the code's; postern-policyd's store a copy of it).  Checks: by
# queue ID, policyd's decision at the end of the data, the milter's signature and
# hold, qmgr's queueing, a deferral with the receiver's reply, then the
# delivery with its 250, in time order, final "delivered"; by address, the
# messages to it (a bounce: final "bounced" with the 550 reply); a
# deferred-only recipient: "deferred, still queued"; --json; an unknown
# queue ID: exit 1; neither an address nor a queue ID, bad usage: exit 2.
# Usage: tests/ctl_trace.sh [BUILD_DIR]  (default: $POSTERN_BUILD, else
# the directory of $POSTERNCTL, else build/werror).
set -uo pipefail
# shellcheck source=ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"
ctl_lib_init ctl_trace "$@"
state=$tmp/state rules=$tmp/rules.d log=$tmp/mail.log
mkdir -p "$state" "$rules"
cat >"$rules/acme.yaml" <<'YAML'
tenant: acme
domains: [acme.example]
accounts:
  news@acme.example: {pace: {rate: 60/hour, mode: hold}}
YAML
conf=$tmp/postern.yaml
cat >"$conf" <<YAML
rules: $rules
state_dir: $state
timezone: UTC
YAML

order() { # order REGEX...: the lines matching each REGEX come in this order
    local n=0 m r
    for r in "$@"; do
        m=$(grep -nE -- "$r" "$tmp/out" | head -1 | cut -d: -f1)
        [ -n "$m" ] && [ "$m" -gt "$n" ] || return 1
        n=$m
    done
}

now=$(date -u +%s) # every time of the test from this one (a slow run crosses seconds)
t() { date -u -d "@$((now - $1 * 60))" +%Y-%m-%dT%H:%M:%S.000000+00:00; }
line() { printf '%s mx postfix/%s\n' "$(t "$1")" "$2"; }
{
    line 50 'qmgr[100]: 1A2B3C4D5E: from=<news@acme.example>, size=1200, nrcpt=1 (queue active)'
    line 49 'smtp[101]: 1A2B3C4D5E: to=<reader@mail.example>, relay=mx.mail.example[192.0.2.10]:25, delay=1.1, delays=0.1/0/0.5/0.5, dsn=4.2.0, status=deferred (host mx.mail.example[192.0.2.10] said: 450 4.2.0 Greylisted, try again (in reply to RCPT TO command))'
    line 40 'smtp[102]: 1A2B3C4D5E: to=<reader@mail.example>, relay=mx.mail.example[192.0.2.10]:25, delay=600, delays=599/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 77AA88)'
    line 40 'qmgr[100]: 1A2B3C4D5E: removed'
    line 30 'qmgr[100]: 2B3C4D5E6F: from=<news@acme.example>, size=1200, nrcpt=1 (queue active)'
    line 30 'smtp[103]: 2B3C4D5E6F: to=<reader@mail.example>, relay=mx.mail.example[192.0.2.10]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.1.1, status=bounced (host mx.mail.example[192.0.2.10] said: 550 5.1.1 <reader@mail.example>: mailbox gone (in reply to RCPT TO command))'
    line 30 'qmgr[100]: 2B3C4D5E6F: removed'
    line 20 'qmgr[100]: 3C4D5E6F70: from=<news@acme.example>, size=1200, nrcpt=1 (queue active)'
    line 20 'smtp[104]: 3C4D5E6F70: to=<slow@slow.example>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to mx.slow.example[192.0.2.20]:25: Connection timed out)'
} >"$log"
check "the log is ingested" run 0 ingest "$log"
check "the milter's store is created (pacing pause)" run 0 pacing pause acme/news@acme.example
milter=$state/milter.sqlite
audit() { # audit QUEUE-ID MINUTES-AGO ACTION REASON
    sqlite3 -batch "$milter" "INSERT INTO audit (time_us, component, tenant, account, sender, queue_id, stage,
        action, reason) VALUES ($((now - $2 * 60)) * 1000000 - 1, 'milter', 'acme', 'news@acme.example',
        'news@acme.example', '$1', 'eom', '$3', '$4')"
}
audit 1A2B3C4D5E 50 sign 'd=acme.example s=s1'
audit 1A2B3C4D5E 50 hold 'held: account acme/news@acme.example is paced'
# postern-policyd's decision at the end of the data: its store has the
# same schema (lib/store.c), taken from the milter's before its rows
rm -f "$state/policyd.sqlite"
sqlite3 -batch "$milter" "VACUUM INTO '$state/policyd.sqlite'"
sqlite3 -batch "$state/policyd.sqlite" "DELETE FROM audit; INSERT INTO audit (time_us, component, tenant, account,
    sender, queue_id, stage, action, reason, rule) VALUES ($((now - 51 * 60)) * 1000000, 'policyd', 'acme',
    'news@acme.example', 'news@acme.example', '1A2B3C4D5E', 'eom', 'DUNNO', 'within the quotas', 'limits.messages')"

check "trace by queue ID: exit 0" run 0 trace 1A2B3C4D5E
check "... the message" has '^message 1A2B3C4D5E$'
check "... policyd's decision, the milter's signature and hold, queued, the deferral with its reply, the delivery, removed, in order" \
    order ' policyd +DUNNO .*rule=limits.messages' ' milter +sign ' ' milter +hold ' \
    'postfix/qmgr +queued +from=<news@acme.example>' \
    'postfix/smtp +delivery .*status=deferred .*reply="host mx.mail.example\[192.0.2.10\] said: 450 4.2.0 Greylisted' \
    'postfix/smtp +delivery .*status=sent .*reply="250 2.0.0 Ok: queued as 77AA88"' 'postfix/qmgr +removed'
check "... final: delivered" has '^  final: <reader@mail.example> delivered$'

check "trace by address: exit 0" run 0 trace Reader@Mail.Example
check "... both messages to it, in time order" order '^message 1A2B3C4D5E$' '^message 2B3C4D5E6F$'
check "... the bounce with the receiver's words" has 'status=bounced .*550 5.1.1 <reader@mail.example>: mailbox gone'
check "... final: bounced" has '^  final: <reader@mail.example> bounced$'
check "a deferred recipient: exit 0" run 0 trace slow@slow.example
check "... final: deferred, still queued" has '^  final: <slow@slow.example> deferred, still queued$'
check "... with why" has 'Connection timed out'

check "--json: exit 0" run 0 trace 1A2B3C4D5E --json
check "--json: the events in time order, the delivery's status and recipient" python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
ev = v[0]["events"]
t = [e["time_us"] for e in ev]
ok = len(v) == 1 and v[0]["queue_id"] == "1A2B3C4D5E" and t == sorted(t) and \
     [e["what"] for e in ev][:3] == ["DUNNO", "sign", "hold"] and \
     any(e["what"] == "delivery" and e["status"] == "sent" and e["rcpt"] == "reader@mail.example" for e in ev)
sys.exit(0 if ok else 1)' "$tmp/out"

check "an unknown queue ID: exit 1" run 1 trace 9F9F9F9F9F
check "... said" has 'no record of 9F9F9F9F9F'
check "neither an address nor a queue ID: exit 2" run 2 trace nobody
check "bad option: exit 2" run 2 trace --nope 1A2B3C4D5E
check "two operands: exit 2" run 2 trace 1A2B3C4D5E 2B3C4D5E6F

ctl_lib_done
