#!/usr/bin/env bash
# ctl_stats.sh: posternctl stats (per tenant and account: submitted,
# rejected by policy, signed, held, delivered, bounced, deferred), without
# a network namespace: postern-policyd's and postern-milter's audit
# records are written with sqlite3 into STATE_DIR/policyd.sqlite and
# milter.sqlite (the stores created by "posternctl pacing pause", so that
# their schema is the code's), and a mail log written here is read with
# "posternctl ingest LOG".  Checks: no store at all (notes, zeros); each
# column (a message refused at end of data or at every RCPT TO, policyd's
# HOLD and the milter's hold and quarantine, two signatures of a message
# counted once, records of other stages, components and no tenant not
# counted, a recipient deferred then delivered in both columns, an
# expired message bounced, an outside sender's delivery under "-"); the
# TOTAL line and the order; --json; --tenant (an unknown one: exit 1);
# --since (older records, the future); bad usage (exit 2).
# Usage: tests/ctl_stats.sh [BUILD_DIR]  (default: $POSTERN_BUILD, else
# the directory of $POSTERNCTL, else build/werror).
set -uo pipefail
# shellcheck source=ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"
ctl_lib_init ctl_stats "$@"
state=$tmp/state rules=$tmp/rules.d log=$tmp/mail.log
mkdir -p "$state" "$rules"
cat >"$rules/acme.yaml" <<'YAML'
tenant: acme
domains: [acme.example]
accounts:
  news@acme.example: {}
YAML
cat >"$rules/corp.yaml" <<'YAML'
tenant: corp
domains: [corp.example]
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
YAML

row() { # row TENANT ACCOUNT SUBMITTED REJECTED SIGNED HELD DELIVERED BOUNCED DEFERRED
    has "^$1 +$2 +$3 +$4 +$5 +$6 +$7 +$8 +$9\$"
}

# --- no store at all: zeros, a note per store ------------------------------------------
check "no store: exit 0" run 0 stats
check "... the header" has '^TENANT +ACCOUNT +SUBMITTED +REJECTED +SIGNED +HELD +DELIVERED +BOUNCED +DEFERRED$'
check "... a TOTAL of zeros" has '^TOTAL( +0){7}$'
check "... two lines" test "$(grep -c . "$tmp/out")" = 2
check "... a note for policyd's store" err_has 'note: no postern-policyd state at .*policyd.sqlite'
check "... a note for the milter's" err_has 'note: no postern-milter state at .*milter.sqlite'
check "... a note for the mail log" err_has 'note: no mail log ingested at .*posternctl ingest'

# --- the stores ------------------------------------------------------------------------
"$ctl" -c "$conf" pacing pause bulk/someone@bulk.example >"$tmp/out" 2>"$tmp/err"
check "the milter store is created" test -s "$state/milter.sqlite"
cp "$state/milter.sqlite" "$state/policyd.sqlite" # the same schema (lib/store.c)
now_s=$(date +%s)
# audit STORE AGE_MIN COMPONENT TENANT ACCOUNT QID INSTANCE STAGE ACTION
audit() {
    sqlite3 -batch "$state/$1.sqlite" "INSERT INTO audit (time_us, component, tenant, account, sender,
        queue_id, instance, stage, action) VALUES (($now_s - $2 * 60) * 1000000, '$3', NULLIF('$4', ''),
        NULLIF('$5', ''), 'x@example', NULLIF('$6', ''), NULLIF('$7', ''), '$8', '$9')"
}
pd() { audit policyd 50 policyd "$@"; } # a record of 50 minutes ago
mt() { audit milter 50 milter "$@"; }
# policyd: acme's news account
pd acme news@acme.example "" i1 rcpt DUNNO
pd acme news@acme.example A1AAAAAAA1 i1 eom DUNNO                       # submitted
pd acme news@acme.example "" i2 rcpt DUNNO
pd acme news@acme.example A2AAAAAAA2 i2 eom "550 5.7.1 quota of account" # submitted, rejected
pd acme news@acme.example "" i3 rcpt "452 4.5.3 too many recipients"   # rejected (no DATA)
pd acme news@acme.example "" i3 rcpt "452 4.5.3 too many recipients"
pd acme news@acme.example A4AAAAAAA4 i4 eom "HOLD quota of account"     # submitted, held
pd acme news@acme.example "" i8 rcpt DUNNO                              # no DATA, not refused
pd acme "" "" "" admin "counters reset"                                 # not a message
pd "" "" A0AAAAAAA0 i7 eom DUNNO                                        # no tenant's
audit policyd 2880 policyd acme news@acme.example A3AAAAAAA3 i6 eom DUNNO     # two days ago
# corp
pd corp billing@corp.example A5AAAAAAA5 i5 eom "FILTER smtp-corp:"      # submitted
pd corp billing@corp.example AFAAAAAAAF i9 eom "DEFER_IF_PERMIT 4.3.0 x" # submitted, rejected
# the milter
mt acme news@acme.example A1AAAAAAA1 "" eom sign                       # two signatures: one
mt acme news@acme.example A1AAAAAAA1 "" eom sign
mt acme news@acme.example A1AAAAAAA1 "" eom accept                     # a scan verdict: nothing
mt corp billing@corp.example A5AAAAAAA5 "" eom sign
mt acme news@acme.example A6AAAAAAA6 "" eom hold                       # paced
mt corp "" A7AAAAAAA7 "" eom quarantine                                # inbound, by the scan
audit milter 50 ctl acme news@acme.example A6AAAAAAA6 "" release released   # not the milter's

# the mail log: each message queued (qmgr from=), then its outcomes
now=$now_s # every time of the test from this one (a slow run crosses seconds)
t() { date -u -d "@$((now - $1 * 60))" +%Y-%m-%dT%H:%M:%S.000000+00:00; }
line() { printf '%s mx postfix/%s\n' "$(t "$1")" "$2"; }
dl() { # dl AGE QID RCPT DSN STATUS REPLY
    line "$1" "smtp[101]: $2: to=<$3>, relay=mx.example[192.0.2.10]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=$4, status=$5 ($6)"
}
{
    line 49 'qmgr[100]: A1AAAAAAA1: from=<news@acme.example>, size=1200, nrcpt=2 (queue active)'
    dl 49 A1AAAAAAA1 a@x.example 2.0.0 sent '250 2.0.0 Ok: queued as 1'
    dl 49 A1AAAAAAA1 b@x.example 4.2.0 deferred 'host mx.example[192.0.2.10] said: 450 4.2.0 try later (in reply to RCPT TO command)'
    dl 45 A1AAAAAAA1 b@x.example 4.2.0 deferred 'host mx.example[192.0.2.10] said: 450 4.2.0 try later (in reply to RCPT TO command)'
    dl 44 A1AAAAAAA1 b@x.example 2.0.0 sent '250 2.0.0 Ok: queued as 2'
    line 48 'qmgr[100]: A5AAAAAAA5: from=<billing@corp.example>, size=1200, nrcpt=1 (queue active)'
    dl 48 A5AAAAAAA5 c@y.example 5.1.1 bounced 'host mx.example[192.0.2.10] said: 550 5.1.1 User unknown (in reply to RCPT TO command)'
    line 47 'qmgr[100]: A8AAAAAAA8: from=<someone@stranger.example>, size=900, nrcpt=1 (queue active)'
    dl 47 A8AAAAAAA8 e@z.example 2.0.0 sent '250 2.0.0 Ok'
    line 46 'qmgr[100]: A9AAAAAAA9: from=<news@acme.example>, size=1200, nrcpt=1 (queue active)'
    dl 46 A9AAAAAAA9 d@z.example 4.4.1 deferred 'connect to mx.z.example[192.0.2.20]:25: Connection timed out'
    dl 43 A9AAAAAAA9 d@z.example 4.4.1 deferred 'connect to mx.z.example[192.0.2.20]:25: Connection timed out'
    line 42 'qmgr[100]: A9AAAAAAA9: from=<news@acme.example>, status=expired, returned to sender'
} >"$log"
check "the log is ingested" run 0 ingest "$log"

# --- the table -------------------------------------------------------------------------
check "stats: exit 0" run 0 stats
check "... no note" test ! -s "$tmp/err"
check "acme news: 3 submitted, 2 rejected, 1 signed, 2 held, 2 delivered, 1 bounced (expired), 2 deferred" \
    row acme news@acme.example 3 2 1 2 2 1 2
check "corp billing: 2 submitted, 1 rejected, 1 signed, 1 bounced" row corp billing@corp.example 2 1 1 0 0 1 0
check "corp's inbound quarantine: held, no account" row corp - 0 0 0 1 0 0 0
check "an outside sender's delivery: nobody's" row - - 0 0 0 0 1 0 0
check "the TOTAL line" row TOTAL "" 5 3 2 3 3 2 2
check "sorted by tenant and account, TOTAL last" test "$(awk 'NR > 1 { print $1 "/" $2 }' "$tmp/out" | tr '\n' ' ')" = \
    "-/- acme/news@acme.example corp/- corp/billing@corp.example TOTAL/5 "

check "--json: exit 0" run 0 stats --json
check "--json: the rows and fields" python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
cols = ("submitted", "rejected", "signed", "held", "delivered", "bounced", "deferred")
got = [(o["tenant"], o["account"]) + tuple(o[k] for k in cols) for o in v]
want = [("-", "-", 0, 0, 0, 0, 1, 0, 0), ("acme", "news@acme.example", 3, 2, 1, 2, 2, 1, 2),
        ("corp", "-", 0, 0, 0, 1, 0, 0, 0), ("corp", "billing@corp.example", 2, 1, 1, 0, 0, 1, 0)]
assert got == want, got
assert all(set(o) == {"tenant", "account"} | set(cols) for o in v)' "$tmp/out"

# --- --tenant, --since -----------------------------------------------------------------
check "--tenant corp: exit 0" run 0 stats --tenant corp
check "--tenant corp: its rows and their TOTAL" test "$(awk '{ print $1 }' "$tmp/out" | tr '\n' ' ')" = \
    "TENANT corp corp TOTAL "
check "... the TOTAL" row TOTAL "" 2 1 1 1 0 1 0
check "--tenant=acme --json" run 0 stats --tenant=acme --json
check "... acme's one row" python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
assert [(o["tenant"], o["account"], o["submitted"]) for o in v] == [("acme", "news@acme.example", 3)], v' "$tmp/out"
check "--tenant nosuch: exit 1" run 1 stats --tenant nosuch
check "... named" err_has 'no tenant "nosuch"'
check "--since 3d: the older decision too" run 0 stats --since 3d
check "... acme: 4 submitted" row acme news@acme.example 4 2 1 2 2 1 2
check "--since 45m: the later events only" run 0 stats --since 45m
check "... acme: the delivery at 44 min, the deferral at 43 min, the expiry at 42" row acme news@acme.example 0 0 0 0 1 1 1
check "--since in the future: exit 0" run 0 stats --since "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
check "... zeros" has '^TOTAL( +0){7}$'
check "--since in the future --json: []" run 0 stats --json --since "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
check "... []" test "$(cat "$tmp/out")" = "[]"
check "the same log again changes nothing" run 0 ingest "$log"
check "... the same counts" run 0 stats
check "... (acme)" row acme news@acme.example 3 2 1 2 2 1 2

# --- bad usage -------------------------------------------------------------------------
check "bad option: exit 2" run 2 stats --nope
check "... the usage line" err_has '^usage: posternctl stats \[--tenant T\] \[--since TIME\] \[--json\]$'
check "an operand: exit 2" run 2 stats acme
check "a bad --since: exit 2" run 2 stats --since yesterday-ish
check "--tenant without a value: exit 2" run 2 stats --tenant
check "-h: exit 0" run 0 stats -h
check "... the usage line" has '^usage: posternctl stats'

ctl_lib_done
