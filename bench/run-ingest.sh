#!/usr/bin/env bash
# run-ingest.sh: posternctl ingest's rate on a generated Postfix log.
# Writes LINES (500,000 by default) realistic lines in the traditional
# syslog format (smtpd connect/client=/disconnect, cleanup message-id,
# qmgr from=, smtp to= sent/deferred/bounced with the remote replies,
# qmgr removed, and 10% foreign programs' lines), then times three runs
# of `posternctl ingest` on it, each into a fresh state directory (best
# of three printed), then on the last database: the same file again (all
# known through its offset) and the same lines under another path (all
# read, every event a duplicate: the uniqueness path).
# Usage: bench/run-ingest.sh [BUILD_DIR] [LINES]  (default build/werror)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build/werror}
nlines=${2:-500000}
ctl=$build/ctl/posternctl
[ -x "$ctl" ] || { echo "run-ingest: no $ctl (build first)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/mail.log

python3 - "$log" "$nlines" <<'PY'
import random, sys
path, want = sys.argv[1], int(sys.argv[2])
rnd = random.Random(8)
months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
domains = ["example.com", "example.net", "example.org", "corp.example", "mail.test", "shop.example"]
replies = [
    ("2.0.0", "sent", "250 2.0.0 Ok: queued as {q2}"),
    ("2.0.0", "sent", "250 2.0.0 OK 1741608000 x12si{n}.34 - gsmtp"),
    ("2.6.0", "sent", "250 2.6.0 <{mid}> [InternalId={n}] Queued mail for delivery"),
    ("4.2.0", "deferred", "host {mx}[{ip}] said: 450 4.2.0 <{rcpt}>: Recipient address rejected: "
     "Greylisted, see http://grey.example.com/ (in reply to RCPT TO command)"),
    ("4.7.1", "deferred", "host {mx}[{ip}] said: 421 4.7.1 Try again later, closing connection. "
     "(in reply to end of DATA command)"),
    ("5.1.1", "bounced", "host {mx}[{ip}] said: 550 5.1.1 <{rcpt}>: Recipient address rejected: "
     "User unknown in virtual mailbox table (in reply to RCPT TO command)"),
    ("5.7.1", "bounced", "host {mx}[{ip}] said: 554 5.7.1 Service unavailable; Client host "
     "[{ip}] blocked using zen.spamhaus.org (in reply to RCPT TO command)"),
    ("5.2.2", "bounced", "host {mx}[{ip}] said: 552 5.2.2 <{rcpt}>: mailbox full (in reply to RCPT TO command)"),
]
weights = [40, 25, 10, 8, 4, 6, 4, 3]
foreign = [
    "sshd[{p}]: Accepted publickey for admin from 192.0.2.{a} port {port} ssh2",
    "CRON[{p}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
    "systemd[1]: Started session-{n}.scope - Session {n} of User admin.",
    "dovecot: imap-login: Login: user=<u{a}@example.org>, method=PLAIN, rip=192.0.2.{a}, lip=192.0.2.1",
    "kernel: [{n}.123456] nf_conntrack: table full, dropping packet",
]
t = 1741600000  # seconds; the month and day are formatted from it
out = []
n = 0
qn = 0
def stamp(s):
    import time
    g = time.gmtime(s)
    return "%s %2d %02d:%02d:%02d" % (months[g.tm_mon - 1], g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec)
def emit(s, prog, text):
    global n
    out.append("%s mx1 %s: %s\n" % (stamp(s), prog, text))
    n += 1
    if rnd.random() < 0.111:
        out.append("%s mx1 %s\n" % (stamp(s), rnd.choice(foreign).format(
            p=rnd.randint(300, 60000), a=rnd.randint(1, 254), port=rnd.randint(1024, 65535),
            n=rnd.randint(1, 10**6))))
        n += 1
while n < want:
    t += rnd.choice((0, 0, 1))
    qn += 1
    q = "%010X" % (0x4F00000000 + qn * 7919 % 0xFFFFFFFF)
    spid, cpid = rnd.randint(1000, 30000), rnd.randint(1000, 30000)
    host = "h%d.%s" % (rnd.randint(1, 5000), rnd.choice(domains))
    ip = "198.51.%d.%d" % (rnd.randint(0, 255), rnd.randint(1, 254))
    sender = "user%d@t%05d.example" % (rnd.randint(1, 10), rnd.randint(1, 10000))
    mid = "%d.%d@%s" % (t, qn, sender.split("@")[1])
    emit(t, "postfix/smtpd[%d]" % spid, "connect from %s[%s]" % (host, ip))
    if rnd.random() < 0.5:
        emit(t, "postfix/smtpd[%d]" % spid, "%s: client=%s[%s], sasl_method=PLAIN, sasl_username=%s"
             % (q, host, ip, sender))
    else:
        emit(t, "postfix/smtpd[%d]" % spid, "%s: client=%s[%s]" % (q, host, ip))
    emit(t, "postfix/cleanup[%d]" % cpid, "%s: message-id=<%s>" % (q, mid))
    nr = rnd.choice((1, 1, 1, 2, 3))
    emit(t, "postfix/qmgr[900]", "%s: from=<%s>, size=%d, nrcpt=%d (queue active)"
         % (q, sender, rnd.randint(800, 200000), nr))
    emit(t, "postfix/smtpd[%d]" % spid, "disconnect from %s[%s] ehlo=2 starttls=1 auth=1 mail=1 rcpt=%d "
         "data=1 quit=1 commands=%d" % (host, ip, nr, 7 + nr))
    for i in range(nr):
        rcpt = "r%d@%s" % (rnd.randint(1, 10**6), rnd.choice(domains))
        mx = "mx%d.%s" % (rnd.randint(1, 3), rcpt.split("@")[1])
        rip = "203.0.113.%d" % rnd.randint(1, 254)
        dsn, status, reply = rnd.choices(replies, weights)[0]
        d = rnd.uniform(0.1, 5)
        reply = reply.format(q2="%010X" % rnd.getrandbits(40), n=rnd.randint(1, 10**9), mid=mid,
                             mx=mx, ip=rip, rcpt=rcpt)
        if status == "sent" and "[" not in reply:
            reply = reply
        emit(t + 1, "postfix/smtp[%d]" % rnd.randint(1000, 30000),
             "%s: to=<%s>, relay=%s[%s]:25, delay=%.2f, delays=%.2f/0.01/%.2f/%.2f, dsn=%s, status=%s (%s)"
             % (q, rcpt, mx, rip, d, d / 4, d / 4, d / 2, dsn, status, reply))
    emit(t + 1, "postfix/qmgr[900]", "%s: removed" % q)
    if len(out) > 10000:
        sys.stdout.write("")
        with open(path, "a") as f:
            f.writelines(out)
        out = []
with open(path, "a") as f:
    f.writelines(out)
PY
lines=$(wc -l <"$log")
touch -d "@1741700000" "$log"
echo "log: $lines lines, $(($(stat -c %s "$log") / 1048576)) MiB"

state_conf() {   # state_conf DIR: a postern.yaml with its state in DIR
    mkdir -p "$1/state" "$1/rules.d"
    printf 'rules: %s/rules.d\nstate_dir: %s/state\ntimezone: UTC\n' "$1" "$1" >"$1/postern.yaml"
}
now() { date +%s.%N; }
best=
for i in 1 2 3; do
    d=$tmp/run$i
    state_conf "$d"
    sync
    t0=$(now)
    "$ctl" -c "$d/postern.yaml" ingest "$log" >"$d/out"
    t1=$(now)
    s=$(echo "$t1 - $t0" | bc -l)
    printf 'run %d: %.3f s, %.0f lines/s, %s\n' "$i" "$s" "$(echo "$lines / $s" | bc -l)" \
        "$(du -m "$d/state/maillog.sqlite" | cut -f1) MiB db"
    if [ -z "$best" ] || [ "$(echo "$s < $best" | bc)" = 1 ]; then best=$s; fi
    [ "$i" -lt 3 ] && rm -rf "$d"
done
cat "$d/out"
printf 'best: %.3f s, %.0f lines/s (target: 200000)\n' "$best" "$(echo "$lines / $best" | bc -l)"

t0=$(now)
"$ctl" -c "$d/postern.yaml" ingest "$log" >"$d/out"
t1=$(now)
printf 'again, same file (offset): %.3f s\n' "$(echo "$t1 - $t0" | bc -l)"
cp "$log" "$tmp/other.log"
touch -d "@1741700000" "$tmp/other.log"
t0=$(now)
"$ctl" -c "$d/postern.yaml" ingest "$tmp/other.log" >"$d/out"
t1=$(now)
s=$(echo "$t1 - $t0" | bc -l)
printf 'same lines, another path (all duplicates): %.3f s, %.0f lines/s\n' "$s" "$(echo "$lines / $s" | bc -l)"
cat "$d/out"
