#!/usr/bin/env bash
# ctl_bounces.sh: posternctl bounces (the bounces and deferrals of the
# ingested mail log by tenant, class and receiving domain), without a
# network namespace: a mail log written here (RFC 3339 timestamps of the
# last minutes) is read with "posternctl ingest LOG", then "bounces" must
# class each outcome (unknown user 5.1.1, mailbox full 4.2.2 deferred,
# too big 5.3.4, policy 5.7.1, DNS or route 4.4.3 / "Host or domain name
# not found", TLS, and a delivered message not counted) under the
# sender's tenant by the rules ("-" for an outside sender), with the
# receiver's reply as example; --json; --tenant (an unknown one: exit 1);
# --since in the future: none; no ingested log: exit 1; bad usage: exit 2.
# Usage: tests/ctl_bounces.sh [BUILD_DIR]  (default: $POSTERN_BUILD, else
# the directory of $POSTERNCTL, else build/werror).
set -uo pipefail
# shellcheck source=ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"
ctl_lib_init ctl_bounces "$@"
state=$tmp/state rules=$tmp/rules.d log=$tmp/mail.log
mkdir -p "$state" "$rules"
cat >"$rules/acme.yaml" <<'YAML'
tenant: acme
domains: [acme.example]
YAML
cat >"$rules/corp.yaml" <<'YAML'
tenant: corp
domains: [corp.example]
YAML
conf=$tmp/postern.yaml
cat >"$conf" <<YAML
rules: $rules
state_dir: $state
timezone: UTC
YAML


check "no ingested log yet: exit 1, saying how to read one" run 1 bounces
check "... the message" err_has 'no mail log ingested at .*posternctl ingest'

# the mail log: each message queued (qmgr from=), then its outcome
now=$(date -u +%s) # every time of the test from this one (a slow run crosses seconds)
t() { date -u -d "@$((now - $1 * 60))" +%Y-%m-%dT%H:%M:%S.000000+00:00; }
line() { printf '%s mx postfix/%s\n' "$(t "$1")" "$2"; }
{
    line 50 'qmgr[100]: 1A2B3C4D5E: from=<news@acme.example>, size=1200, nrcpt=1 (queue active)'
    line 50 'smtp[101]: 1A2B3C4D5E: to=<gone@mail.example>, relay=mx.mail.example[192.0.2.10]:25, delay=1.1, delays=0.1/0/0.5/0.5, dsn=5.1.1, status=bounced (host mx.mail.example[192.0.2.10] said: 550 5.1.1 <gone@mail.example>: Recipient address rejected: User unknown (in reply to RCPT TO command))'
    line 49 'qmgr[100]: 2B3C4D5E6F: from=<news@acme.example>, size=1200, nrcpt=1 (queue active)'
    line 49 'smtp[102]: 2B3C4D5E6F: to=<full@box.example>, relay=mx.box.example[192.0.2.11]:25, delay=2, delays=0.1/0/1/0.9, dsn=4.2.2, status=deferred (host mx.box.example[192.0.2.11] said: 452 4.2.2 The email account that you tried to reach is over quota (in reply to RCPT TO command))'
    line 48 'qmgr[100]: 3C4D5E6F70: from=<billing@corp.example>, size=30000000, nrcpt=1 (queue active)'
    line 48 'smtp[103]: 3C4D5E6F70: to=<ap@big.example>, relay=mx.big.example[192.0.2.12]:25, delay=3, delays=0.1/0/1/1.9, dsn=5.3.4, status=bounced (host mx.big.example[192.0.2.12] said: 552 5.3.4 Message size exceeds fixed maximum message size (in reply to end of DATA command))'
    line 47 'qmgr[100]: 4D5E6F7081: from=<news@acme.example>, size=1200, nrcpt=2 (queue active)'
    line 47 'smtp[104]: 4D5E6F7081: to=<x@block.example>, relay=mx.block.example[192.0.2.13]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.7.1, status=bounced (host mx.block.example[192.0.2.13] said: 554 5.7.1 Message rejected as spam (in reply to end of DATA command))'
    line 47 'smtp[104]: 4D5E6F7081: to=<y@block.example>, relay=mx.block.example[192.0.2.13]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.7.1, status=bounced (host mx.block.example[192.0.2.13] said: 554 5.7.1 Message rejected as spam (in reply to end of DATA command))'
    line 46 'qmgr[100]: 5E6F708192: from=<someone@stranger.example>, size=900, nrcpt=1 (queue active)'
    line 46 'smtp[105]: 5E6F708192: to=<z@nowhere.example>, relay=none, delay=0.2, delays=0.1/0/0.1/0, dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=nowhere.example type=MX: Host not found, try again)'
    line 45 'qmgr[100]: 6F708192A3: from=<news@acme.example>, size=1200, nrcpt=1 (queue active)'
    line 45 'smtp[106]: 6F708192A3: to=<ok@fine.example>, relay=mx.fine.example[192.0.2.14]:25, delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9F8E7D)'
    line 44 'qmgr[100]: 708192A3B4: from=<news@acme.example>, size=1200, nrcpt=1 (queue active)'
    line 44 'smtp[107]: 708192A3B4: to=<s@secure.example>, relay=mx.secure.example[192.0.2.15]:25, delay=0.4, delays=0.1/0/0.2/0, dsn=4.7.5, status=deferred (TLS is required, but was not offered by host mx.secure.example[192.0.2.15])'
} >"$log"
check "the log is ingested" run 0 ingest "$log"

check "bounces: exit 0" run 0 bounces
row() { # row TENANT CLASS DOMAIN BOUNCED DEFERRED
    has "^$1 +$2 +$3 +$4 +$5 "
}
check "unknown user 5.1.1 at mail.example, acme's, with the receiver's words" row acme unknown_user mail.example 1 0
check "... the example names the reply" has 'Recipient address rejected: User unknown'
check "mailbox full 4.2.2, deferred" row acme mailbox_full box.example 0 1
check "too big 5.3.4, corp's" row corp too_big big.example 1 0
check "policy 5.7.1, two recipients" row acme policy block.example 2 0
check "DNS: not a tenant's sender" row - dns_or_route nowhere.example 0 1
check "TLS required" row acme tls secure.example 0 1
check "a delivered message is not counted" bash -c '! grep -q fine.example "$1"' _ "$tmp/out"
check "the most first within a tenant (acme's policy row before its one-message rows)" \
    test "$(grep -n '^acme ' "$tmp/out" | head -1 | grep -c policy)" = 1

check "--json: exit 0" run 0 bounces --json
check "--json: six groups, the fields" python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
want = {("acme", "unknown_user", "mail.example", 1, 0), ("acme", "mailbox_full", "box.example", 0, 1),
        ("corp", "too_big", "big.example", 1, 0), ("acme", "policy", "block.example", 2, 0),
        ("-", "dns_or_route", "nowhere.example", 0, 1), ("acme", "tls", "secure.example", 0, 1)}
got = {(o["tenant"], o["class"], o["domain"], o["bounced"], o["deferred"]) for o in v}
sys.exit(0 if got == want and all(o["example"] and o["label"] and o["last"] for o in v) else 1)' "$tmp/out"

check "--tenant corp: exit 0" run 0 bounces --tenant corp
check "--tenant corp: its row only" test "$(grep -c . "$tmp/out")" = 2
check "--tenant nosuch: exit 1" run 1 bounces --tenant nosuch
check "... named" err_has 'no tenant "nosuch"'
check "--since in the future: exit 0" run 0 bounces --since "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
check "... none" has '^no bounce nor deferral'
check "--since 30m: none (all are older)" run 0 bounces --since 30m
check "... none" has '^no bounce nor deferral'
check "the same log again changes nothing" run 0 ingest "$log"
check "... bounces the same" run 0 bounces
check "... (policy still 2)" row acme policy block.example 2 0
check "bad option: exit 2" run 2 bounces --nope
check "an operand: exit 2" run 2 bounces acme
check "a bad --since: exit 2" run 2 bounces --since yesterday-ish

ctl_lib_done
