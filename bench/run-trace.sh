#!/usr/bin/env bash
# run-trace.sh: posternctl trace's latency on a state directory holding
# ten million records: MESSAGES (2,000,000 by default) messages of the
# mail log, four events each (queued, a deferral, the delivery, removed:
# 8,000,000 rows of maillog.sqlite, written with SQL directly, not through
# ingest) and one postern-milter audit record each (2,000,000 rows of
# milter.sqlite), recipients user0..user399999@example.com (5 messages
# each).  Then times, 5 runs each (the whole posternctl process: start,
# open the stores, query, print), a trace by queue ID and two by address.
# Usage: bench/run-trace.sh [BUILD_DIR] [MESSAGES]  (default build/werror)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build/werror}
n=${2:-2000000}
ctl=$build/ctl/posternctl
[ -x "$ctl" ] || { echo "run-trace: no $ctl (build first)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "run-trace: sqlite3 is needed" >&2; exit 1; }
tmp=$(mktemp -d /var/tmp/run-trace.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/state" "$tmp/rules.d"
printf 'tenant: acme\ndomains: [acme.example]\naccounts:\n  news@acme.example: {pace: {rate: 60/hour, mode: hold}}\n' \
    >"$tmp/rules.d/acme.yaml"
printf 'rules: %s\nstate_dir: %s\ntimezone: UTC\n' "$tmp/rules.d" "$tmp/state" >"$tmp/postern.yaml"
: >"$tmp/empty.log"
# the stores with the code's schema: an empty log ingested, an account paused
"$ctl" -c "$tmp/postern.yaml" ingest "$tmp/empty.log" >/dev/null
"$ctl" -c "$tmp/postern.yaml" pacing pause acme/news@acme.example >/dev/null
last=$((n - 1))
echo "== writing $((n * 4)) mail log events and $n audit records"
t0=$(date +%s)
sqlite3 "$tmp/state/maillog.sqlite" "PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < $last)
INSERT INTO maillog_event (time_us, queue_id, ukey, kind, service, rcpt, relay, dsn, status, reply, sender)
SELECT (1764000000 + i) * 1000000 + k * 1000, printf('%010X', i + 1048576), k,
 CASE k WHEN 0 THEN 'queued' WHEN 3 THEN 'removed' ELSE 'delivery' END,
 CASE WHEN k IN (0, 3) THEN 'qmgr' ELSE 'smtp' END,
 CASE WHEN k IN (1, 2) THEN 'user' || (i % 400000) || '@example.com' ELSE '' END,
 CASE WHEN k IN (1, 2) THEN 'mx.example.com[192.0.2.1]:25' END,
 CASE k WHEN 1 THEN '4.2.0' WHEN 2 THEN '2.0.0' END,
 CASE k WHEN 1 THEN 'deferred' WHEN 2 THEN 'sent' ELSE '' END,
 CASE k WHEN 1 THEN 'host mx.example.com[192.0.2.1] said: 450 4.2.0 Greylisted (in reply to RCPT TO command)'
        WHEN 2 THEN '250 2.0.0 Ok: queued as ABC' END,
 CASE k WHEN 0 THEN 'news@acme.example' END
FROM s, (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3);"
sqlite3 "$tmp/state/milter.sqlite" "PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < $last)
INSERT INTO audit (time_us, component, tenant, account, sender, recipients, queue_id, stage, action, reason, rule)
SELECT (1764000000 + i) * 1000000 - 1, 'milter', 'acme', 'news@acme.example', 'news@acme.example',
 'user' || (i % 400000) || '@example.com', printf('%010X', i + 1048576), 'eom', 'sign', 'd=acme.example s=s1', 'dkim'
FROM s;"
echo "   $(($(date +%s) - t0)) s; maillog.sqlite $(du -m "$tmp/state/maillog.sqlite" | cut -f1) MB," \
    "milter.sqlite $(du -m "$tmp/state/milter.sqlite" | cut -f1) MB; load $(cut -d' ' -f1-3 /proc/loadavg)"
mid=$(printf '%010X' $((n / 2 + 1048576)))
for what in "$mid" user123@example.com "user$((400000 - 1))@example.com"; do
    times=()
    for _ in 1 2 3 4 5; do
        s=$(date +%s%N)
        "$ctl" -c "$tmp/postern.yaml" trace "$what" --since 2025-01-01 >/dev/null
        e=$(date +%s%N)
        times+=("$(((e - s) / 1000000))")
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
    echo "trace $what: ${sorted}ms (5 runs, sorted; median $(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p) ms)"
done
