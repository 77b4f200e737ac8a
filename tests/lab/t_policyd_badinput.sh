#!/usr/bin/env bash
# t_policyd_badinput.sh -- postern-policyd under bad input and its life
# cycle, without a network namespace (a unix socket in a temp dir and an
# inet socket on 127.0.0.1 with a free port):
#  - -n on good and on broken configuration / rules (file:line:column);
#  - bad clients (garbage, a line without '=', a 1 MB line, NUL bytes, a
#    half request then disconnect, too many attributes) each close only
#    their own connection with one bad_request log line, while a
#    well-formed keep-alive connection and new clients keep being served;
#  - pipelined requests answered in order, a request split in tiny writes;
#  - a store that cannot be written (write lock held): decisions go on
#    (the journal takes them), the ingest error is logged, the store
#    catches up once released; a full disk under the journal (a small
#    tmpfs in a mount namespace of the daemon's own): the on_error answer,
#    logged, nothing counted, then recovery; max_connections;
#  - SIGHUP with a broken rule file keeps the old rules and logs the error,
#    SIGHUP after the fix loads the new ones; a second instance is refused;
#  - SIGTERM with a request in flight answers it, exits 0 and removes the
#    pid file and the socket;
#  - background mode: the parent exits once the socket is up; as root the
#    privileges are dropped to nobody and the store belongs to nobody; the
#    idle timeout closes silent connections.
# One "PASS:"/"FAIL:" line per check; exit 0 when every check passed.
# The daemon: $POLICYD, else $POSTERN_BUILD/policyd/postern-policyd, else
# build/werror/policyd/postern-policyd of this tree.  KEEP=1 keeps the
# temp directory (configs, logs) for a look afterwards.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
policyd=${POLICYD:-${POSTERN_BUILD:-$top/build/werror}/policyd/postern-policyd}
if [ ! -x "$policyd" ]; then
    echo "FAIL: no postern-policyd binary at $policyd (build first, or set POLICYD)"
    exit 1
fi
tmp=$(mktemp -d /tmp/t_policyd.XXXXXX)
cleanup() {
    # stop any daemon this test started (by the pids it recorded)
    for f in "$tmp"/pids/*; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    done
    if [ -n "${KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
mkdir -p "$tmp/pids"

python3 - "$policyd" "$tmp" "$top" <<'PY'
import os, pwd, re, shutil, signal, socket, sqlite3, subprocess, sys, time

BIN, TMP, TOP = sys.argv[1:4]
DEADLINE = 45.0
failures = 0


def passed(msg):
    print("PASS: " + msg, flush=True)


def failed(msg, detail=""):
    global failures
    failures += 1
    print("FAIL: " + msg, flush=True)
    if detail:
        for line in str(detail).splitlines()[-30:]:
            print("    " + line, flush=True)


def check(cond, msg, detail=""):
    if cond:
        passed(msg)
    else:
        failed(msg, detail)
    return cond


def wait_for(pred, timeout=DEADLINE, step=0.02):
    end = time.monotonic() + timeout
    while True:
        try:
            v = pred()
        except OSError:
            v = None
        if v:
            return v
        if time.monotonic() > end:
            return None
        time.sleep(step)


def record_pid(name, pid):
    with open(os.path.join(TMP, "pids", name), "w") as f:
        f.write(str(pid))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- requests --------------------------------------------------------------
serial = 0


def request(who, state="RCPT", **extra):
    global serial
    serial += 1
    a = {"request": "smtpd_access_policy", "protocol_state": state, "protocol_name": "ESMTP",
         "helo_name": "client.example", "queue_id": "", "instance": "t%d.%d" % (os.getpid(), serial)}
    a.update(who)
    a.update(extra)
    return "".join("%s=%s\n" % kv for kv in a.items()).encode() + b"\n"


ACME = {"client_address": "192.0.2.10", "sasl_method": "PLAIN", "sasl_username": "bob@acme.example",
        "sender": "bob@acme.example", "recipient": "x@remote.example"}
OTHER = {"client_address": "192.0.2.200", "sender": "someone@remote.example", "recipient": "y@remote.example"}
BILL = {"client_address": "192.0.2.11", "sasl_method": "PLAIN", "sasl_username": "billing@billing.initech.example",
        "sender": "billing@billing.initech.example", "recipient": "z@remote.example"}
ZETA = {"client_address": "192.0.2.12", "sasl_method": "PLAIN", "sasl_username": "ann@zeta.example",
        "sender": "ann@zeta.example", "recipient": "w@remote.example"}
ACME_ANSWER = "FILTER acme-out:"
BILL_ANSWER = "FILTER initech-billing:"
ZETA_ANSWER = "FILTER zeta-out:"
DEFER_ANSWER = "DEFER_IF_PERMIT 4.3.0 policy service temporarily unavailable"


class Client:
    def __init__(self, ep, timeout=DEADLINE):
        if isinstance(ep, str):
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(ep)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        """One reply "action=...\\n\\n" -> the action text; None if closed."""
        while b"\n\n" not in self.buf:
            try:
                chunk = self.s.recv(65536)
            except (ConnectionResetError, socket.timeout, OSError):
                return None
            if not chunk:
                return None
            self.buf += chunk
        one, self.buf = self.buf.split(b"\n\n", 1)
        text = one.decode("utf-8", "replace")
        return text[len("action="):] if text.startswith("action=") and "\n" not in text else "BAD-REPLY:" + text

    def ask(self, req):
        self.send(req)
        return self.reply()

    def closed_by_peer(self, timeout=DEADLINE):
        """True when the server closes the connection within timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def ask_new(ep, who, expect=None):
    """A new client asks one question; retried while the server is still
    busy closing earlier connections (max_connections)."""
    end = time.monotonic() + DEADLINE
    while True:
        try:
            c = Client(ep)
            ans = c.ask(request(who))
            c.close()
        except OSError as e:
            ans = "ERROR:%s" % e
        if ans is not None and not ans.startswith("ERROR:") and (expect is None or ans == expect):
            return ans
        if time.monotonic() > end:
            return ans
        time.sleep(0.05)


# --- files -----------------------------------------------------------------
def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def log_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def count(path, regex):
    return len(re.findall(regex, log_text(path), re.M))


def conf_text(rules, state, listen, pid_file, user, extra=""):
    return ("rules: %s\nstate_dir: %s\ntimezone: UTC\nuser: %s\nlog_level: info\n"
            "policyd:\n  listen: [%s]\n  pid_file: %s\n%s") % (rules, state, user, ", ".join(listen), pid_file, extra)


me = pwd.getpwuid(os.geteuid()).pw_name
rules = os.path.join(TMP, "rules")
os.mkdir(rules)
for f in ("newsletter.yaml", "corporate.yaml", "invoicing.yaml"):
    shutil.copy(os.path.join(TOP, "rules", "examples", f), rules)
sock = os.path.join(TMP, "policy.sock")
port = free_port()
inet = ("127.0.0.1", port)
pid_file = os.path.join(TMP, "run", "policyd.pid")
conf = os.path.join(TMP, "postern.yaml")
log = os.path.join(TMP, "policyd.log")
write(conf, conf_text(rules, os.path.join(TMP, "state"), ["unix:" + sock, "inet:127.0.0.1:%d" % port], pid_file, me,
                      "  on_error: defer\n  idle_timeout: 120s\n  max_connections: 8\n  max_request_bytes: 65536\n"))

# --- -n ---------------------------------------------------------------------
r = subprocess.run([BIN, "-n", "-c", conf], capture_output=True, text=True, timeout=60)
check(r.returncode == 0 and re.search(r"^ok: .*3 tenants", r.stdout, re.M) is not None,
      "-n on a good configuration exits 0 and prints a summary", r.stdout + r.stderr)

bad_rules = os.path.join(TMP, "rules-bad")
shutil.copytree(rules, bad_rules)
write(os.path.join(bad_rules, "broken.yaml"),
      "tenant: broken\ndomains: [broken.example]\nlimits: {messages: 10/fortnight}\n")
bad_conf = os.path.join(TMP, "bad.yaml")
write(bad_conf, open(conf).read().replace("rules: " + rules, "rules: " + bad_rules))
r = subprocess.run([BIN, "-n", "-c", bad_conf], capture_output=True, text=True, timeout=60)
check(r.returncode == 1 and re.search(r"broken\.yaml:3:\d+: ", r.stderr) is not None,
      "-n on a broken rule directory exits 1 and names file:line:column", "rc=%d\n%s" % (r.returncode, r.stderr))

write(bad_conf, conf_text(rules, "relative/state", ["unix:" + sock], pid_file, me, "  on_error: maybe\n"))
r = subprocess.run([BIN, "-n", "-c", bad_conf], capture_output=True, text=True, timeout=60)
check(r.returncode == 1 and len(re.findall(r"bad\.yaml:\d+:\d+: ", r.stderr)) >= 2,
      "-n on a broken postern.yaml exits 1 and prints every error with file:line:column",
      "rc=%d\n%s" % (r.returncode, r.stderr))

# --- start in the foreground -----------------------------------------------
logf = open(log, "ab")
daemon = subprocess.Popen([BIN, "-f", "-d", "-c", conf], stdout=logf, stderr=subprocess.STDOUT)
record_pid("main", daemon.pid)
up = wait_for(lambda: os.path.exists(sock) and count(log, r"event=start ") == 1)
pid_ok = wait_for(lambda: open(pid_file).read().strip() == str(daemon.pid))
if not check(up and pid_ok and daemon.poll() is None and
             re.search(r"event=start .*listeners=2 .*tenants=3", log_text(log)) is not None,
             "daemon started: unix and inet listeners, pid file, start line with listeners and tenants",
             log_text(log)):
    sys.exit(1)
mode = os.stat(sock).st_mode & 0o777
check(mode == 0o666, "the unix socket is mode 0666 (Postfix's smtpd connects to it)", oct(mode))

A = Client(sock)
ans = A.ask(request(ACME))
check(ans == ACME_ANSWER, "keep-alive client A: tenant request answered '%s'" % ACME_ANSWER, ans)


def bad_garbage(c):
    c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xde\xad\xbe\xef GET / HTTP/1.0\r\n\r\n")


def bad_no_equals(c):
    c.send(b"request smtpd_access_policy\n\n")


def bad_huge(c):
    try:
        c.send(b"x" * (1 << 20))
    except (BrokenPipeError, ConnectionResetError):
        pass


def bad_nul(c):
    c.send(b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a\x00b@acme.example\n\n")


def bad_half(c):
    c.send(b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=bob@acme.ex")
    c.s.shutdown(socket.SHUT_WR)


def bad_attrs(c):
    c.send(b"request=smtpd_access_policy\n" + b"".join(b"x%d=1\n" % i for i in range(300)) + b"\n")


bad_kinds = [("garbage", bad_garbage), ("a line without '='", bad_no_equals), ("a 1 MB line", bad_huge),
             ("NUL bytes", bad_nul), ("half a request then disconnect", bad_half),
             ("too many attributes", bad_attrs)]
for i, (name, fn) in enumerate(bad_kinds):
    ep = sock if i % 2 == 0 else inet
    c = Client(ep)
    fn(c)
    closed = c.closed_by_peer()
    c.close()
    logged = wait_for(lambda: count(log, r"^.*level=warning event=bad_request .*client=.* reason=") >= i + 1)
    new_ans = ask_new(inet if i % 2 == 0 else sock, OTHER)
    a_ans = A.ask(request(ACME))
    check(closed and logged and new_ans == "DUNNO" and a_ans == ACME_ANSWER,
          "bad client (%s): its connection closed and logged; a new client and client A still answered" % name,
          "closed=%s logged=%s new=%r A=%r\n%s" % (closed, logged, new_ans, a_ans, log_text(log)[-3000:]))

n_bad = count(log, r"event=bad_request ")
check(n_bad == len(bad_kinds), "one bad_request log line per bad client (%d)" % len(bad_kinds),
      "\n".join(l for l in log_text(log).splitlines() if "bad_request" in l))

# --- pipelining and tiny writes --------------------------------------------
c = Client(inet)
c.send(request(ACME) + request(OTHER) + request(BILL) + request(ACME, state="CONNECT"))
got = [c.reply() for _ in range(4)]
check(got == [ACME_ANSWER, "DUNNO", BILL_ANSWER, "DUNNO"],
      "four pipelined requests in one write are answered in order", repr(got))
req = request(BILL)
for i in range(0, len(req), 7):
    c.send(req[i:i + 7])
check(c.reply() == BILL_ANSWER, "a request sent in 7-byte writes is answered")
c.close()

# --- the store is locked: decisions go on, the journal keeps them ------------
store_db = os.path.join(TMP, "state", "policyd.sqlite")


def audited(inst):
    db = sqlite3.connect(store_db, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM audit WHERE instance = ?", (inst,)).fetchone()[0]
    finally:
        db.close()


db = sqlite3.connect(store_db, timeout=30, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
t0 = time.monotonic()
req = request(ACME)
inst = re.search(rb"instance=(\S+)", req).group(1).decode()
c = Client(sock)
ans = c.ask(req)
c.close()
dt = time.monotonic() - t0
logged = wait_for(lambda: re.search(r"level=error event=ingest_error .*decisions stay in the journal", log_text(log)))
check(ans == ACME_ANSWER and logged is not None,
      "store locked by another writer: decisions go on (the journal takes them), the ingest error is logged",
      "answer=%r after %.1fs\n%s" % (ans, dt, log_text(log)[-2000:]))
db.execute("ROLLBACK")
db.close()
check(wait_for(lambda: audited(inst) == 1) and wait_for(lambda: re.search(r"event=ingest status=ok", log_text(log))),
      "store released: the decision taken meanwhile reaches the audit table, recovery logged")
check(ask_new(sock, ACME) == ACME_ANSWER and A.ask(request(ACME)) == ACME_ANSWER, "client A still served")

# --- max_connections ---------------------------------------------------------
# wait until only A is open (the server has seen the other clients go)
wait_for(lambda: count(log, r"event=connect ") - count(log, r"event=close ") == 1)
extra = []
for i in range(7):
    cl = Client(sock if i % 2 else inet)
    extra.append((cl, cl.ask(request(OTHER))))
over = Client(inet)
refused = over.closed_by_peer()
over.close()
limit_logged = wait_for(lambda: re.search(r"level=warning event=connection_limit .*max_connections=8", log_text(log)))
check(all(a == "DUNNO" for _, a in extra) and refused and limit_logged is not None,
      "max_connections 8: 8 connections served, the 9th closed with a connection_limit line",
      "answers=%r refused=%s" % ([a for _, a in extra], refused))
for cl, _ in extra:
    cl.close()
check(ask_new(inet, OTHER, "DUNNO") == "DUNNO" and A.ask(request(ACME)) == ACME_ANSWER,
      "below the limit again: a new client is served, client A still served")

# --- SIGHUP -----------------------------------------------------------------
write(os.path.join(rules, "broken.yaml"), "tenant: broken\ndomains: [broken.example]\nlimits: {messages: 10/fortnight}\n")
os.kill(daemon.pid, signal.SIGHUP)
failed_line = wait_for(lambda: re.search(r"level=error event=reload status=failed", log_text(log)))
diag = re.search(r"level=error event=reload_error error=\"[^\"]*broken\.yaml:3:\d+: ", log_text(log))
check(failed_line is not None and diag is not None and A.ask(request(ACME)) == ACME_ANSWER and
      ask_new(sock, ACME) == ACME_ANSWER and ask_new(inet, ZETA) == "DUNNO",
      "SIGHUP with a broken rule file: old rules kept (same decisions), error logged with file:line:column",
      log_text(log)[-2000:])

os.unlink(os.path.join(rules, "broken.yaml"))
write(os.path.join(rules, "zeta.yaml"),
      "tenant: zeta\ndomains: [zeta.example]\noutbound: {transport: zeta-out}\n")
os.kill(daemon.pid, signal.SIGHUP)
ok_line = wait_for(lambda: re.search(r"level=info event=reload status=ok tenants=4", log_text(log)))
check(ok_line is not None and ask_new(inet, ZETA) == ZETA_ANSWER and A.ask(request(ZETA)) == ZETA_ANSWER and
      A.ask(request(ACME)) == ACME_ANSWER,
      "SIGHUP after the fix: new rules loaded (tenants=4), the new tenant decided on old and new connections",
      log_text(log)[-2000:])

# --- a second instance is refused -------------------------------------------
r = subprocess.run([BIN, "-f", "-c", conf], capture_output=True, text=True, timeout=60)
check(r.returncode == 1 and "another postern-policyd is running" in r.stderr and os.path.exists(sock) and
      A.ask(request(ACME)) == ACME_ANSWER,
      "a second instance on the same pid file exits 1; the first keeps its socket and serves",
      "rc=%d %s" % (r.returncode, r.stderr))

# --- SIGTERM with a request in flight ----------------------------------------
# The daemon is stopped (SIGSTOP) while the request reaches its socket and
# SIGTERM is sent; once continued, it sees the request before the signal
# (the socket was ready first) and must still answer it.
req = request(ACME)
inst = re.search(rb"instance=(\S+)", req).group(1).decode()
os.kill(daemon.pid, signal.SIGSTOP)
A.send(req)
os.kill(daemon.pid, signal.SIGTERM)
os.kill(daemon.pid, signal.SIGCONT)
ans = A.reply()
seen = wait_for(lambda: re.search(r"event=request .*instance=%s" % re.escape(inst), log_text(log)))
try:
    rc = daemon.wait(timeout=DEADLINE)
except subprocess.TimeoutExpired:
    rc = None
check(seen is not None and ans == ACME_ANSWER, "SIGTERM with a request in flight: it is still answered", repr(ans))
check(rc == 0 and not os.path.exists(pid_file) and not os.path.exists(sock) and
      re.search(r"event=stop ", log_text(log)) is not None,
      "SIGTERM: exit 0, pid file and unix socket removed, stop logged",
      "rc=%r pid_file=%s sock=%s\n%s" % (rc, os.path.exists(pid_file), os.path.exists(sock), log_text(log)[-1500:]))
A.close()

# --- background mode, privilege drop, idle timeout -----------------------------
user2 = "nobody" if os.geteuid() == 0 else me
try:
    pw2 = pwd.getpwnam(user2)
except KeyError:
    pw2 = None
if pw2 is None:
    failed("no user %s for the privilege-drop check" % user2)
else:
    os.chmod(TMP, 0o755)                 # user2 must reach its state dir and socket dir
    sdir = os.path.join(TMP, "s2")
    os.mkdir(sdir, 0o755)
    if os.geteuid() == 0:
        os.chown(sdir, pw2.pw_uid, pw2.pw_gid)
    sock2 = os.path.join(sdir, "policy.sock")
    pid2 = os.path.join(TMP, "run2", "policyd.pid")     # run2/ is created, owned by user2
    state2 = os.path.join(TMP, "state2")                # created 0750, owned by user2
    conf2 = os.path.join(TMP, "postern2.yaml")
    write(conf2, conf_text(rules, state2, ["unix:" + sock2], pid2, user2, "  idle_timeout: 1s\n"))
    r = subprocess.run([BIN, "-c", conf2], capture_output=True, text=True, timeout=60)
    up = os.path.exists(sock2)
    try:
        dpid = int(open(pid2).read().strip())
    except (OSError, ValueError):
        dpid = None
    if dpid:
        record_pid("second", dpid)
    check(r.returncode == 0 and up and dpid is not None and os.path.exists("/proc/%d" % dpid),
          "background mode: the parent exits 0 once the socket is up; the pid file names the daemon",
          "rc=%d up=%s pid=%r %s" % (r.returncode, up, dpid, r.stderr))
    ans = ask_new(sock2, ACME)
    check(ans == ACME_ANSWER, "background daemon answers", repr(ans))
    if dpid and os.geteuid() == 0:
        status = open("/proc/%d/status" % dpid).read()
        uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
        st_db = os.stat(os.path.join(state2, "policyd.sqlite"))
        st_dir = os.stat(state2)
        check(all(int(u) == pw2.pw_uid for u in uids) and st_db.st_uid == pw2.pw_uid and
              st_dir.st_uid == pw2.pw_uid and (st_dir.st_mode & 0o777) == 0o750,
              "privileges dropped to %s; state_dir (0750) and store belong to %s" % (user2, user2),
              "uids=%r db_uid=%d dir_uid=%d mode=%o" % (uids, st_db.st_uid, st_dir.st_uid, st_dir.st_mode & 0o777))
    c = Client(sock2)
    t0 = time.monotonic()
    closed = c.closed_by_peer(timeout=30)
    dt = time.monotonic() - t0
    c.close()
    c = Client(sock2)
    c.send(b"request=smtpd_access_policy\nprotocol_state=RCPT\n")
    closed2 = c.closed_by_peer(timeout=30)
    c.close()
    check(closed and closed2 and dt >= 0.9, "idle_timeout 1s closes a silent connection and a stalled request",
          "closed=%s after %.2fs, stalled closed=%s" % (closed, dt, closed2))
    if dpid:
        os.kill(dpid, signal.SIGTERM)

        def gone():
            try:
                st = open("/proc/%d/status" % dpid).read()
            except FileNotFoundError:
                return True
            return re.search(r"^State:\s+Z", st, re.M) is not None
        check(wait_for(gone) and not os.path.exists(pid2) and not os.path.exists(sock2),
              "background daemon: SIGTERM stops it, pid file and socket removed (as %s)" % user2,
              "pid_file=%s sock=%s" % (os.path.exists(pid2), os.path.exists(sock2)))

# --- a full disk under the journal: on_error, nothing counted, recovery ------
# A third daemon in a mount namespace of its own, its journal directory on
# a 2 MB tmpfs; the test fills that tmpfs through /proc/PID/root.
if os.geteuid() != 0 or shutil.which("unshare") is None:
    failed("the full-disk check needs root and unshare(1)")
else:
    sdir3 = os.path.join(TMP, "state3")
    jdir3 = os.path.join(sdir3, "journal")
    os.makedirs(jdir3)
    sock3 = os.path.join(TMP, "policy3.sock")
    conf3 = os.path.join(TMP, "postern3.yaml")
    log3 = os.path.join(TMP, "policyd3.log")
    write(conf3, conf_text(rules, sdir3, ["unix:" + sock3], os.path.join(TMP, "run3", "policyd.pid"), me,
                           "  on_error: defer\n"))
    log3f = open(log3, "ab")
    d3 = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           'mount -t tmpfs -o size=2m,mode=0750 postern-test "$1" && exec "$2" -f -c "$3"',
                           "sh", jdir3, BIN, conf3], stdout=log3f, stderr=subprocess.STDOUT)
    record_pid("third", d3.pid)
    up = wait_for(lambda: os.path.exists(sock3) and re.search(r"event=start ", log_text(log3)))
    eom = dict(ACME, recipient_count="1", size="1000")

    def acme_messages():
        db = sqlite3.connect(os.path.join(sdir3, "policyd.sqlite"), timeout=30)
        try:
            row = db.execute("SELECT sum(value) FROM counters WHERE key LIKE 'a:acme:%:messages' AND unit = 'day'"
                             ).fetchone()
            return row[0] or 0
        finally:
            db.close()

    if not check(up is not None, "a daemon with its journal on a 2 MB tmpfs starts", log_text(log3)[-1500:]):
        pass
    else:
        C3 = Client(sock3)
        first = C3.ask(request(eom, state="END-OF-MESSAGE"))
        filler = "/proc/%d/root%s/filler" % (d3.pid, jdir3)
        full = False
        try:
            with open(filler, "wb") as f:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
        except OSError as e:
            full = e.errno == 28  # ENOSPC
        # the journal's last page may still hold a few records
        fitted = 0
        ans = C3.ask(request(eom, state="END-OF-MESSAGE"))
        while ans == first and fitted < 64:
            fitted += 1
            ans = C3.ask(request(eom, state="END-OF-MESSAGE"))
        logged = wait_for(lambda: re.search(r"level=error event=store_error .*No space left on device", log_text(log3)))
        check(full and first not in (None, DEFER_ANSWER) and ans == DEFER_ANSWER and logged is not None,
              "journal on a full disk: the answer is on_error ('%s'), the error is logged" % DEFER_ANSWER,
              "full=%s first=%r answer=%r after %d\n%s" % (full, first, ans, fitted, log_text(log3)[-1500:]))
        os.unlink(filler)
        again = C3.ask(request(eom, state="END-OF-MESSAGE"))
        want = 1 + fitted + 1
        check(again == first and wait_for(lambda: acme_messages() == want),
              "space freed: decisions are back; the refused message counted nothing (%d counted)" % want,
              "again=%r counted=%r want=%d" % (again, acme_messages(), want))
        C3.close()
    d3.terminate()
    try:
        rc3 = d3.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        rc3 = None
    check(rc3 == 0, "the full-disk daemon stops cleanly", "rc=%r\n%s" % (rc3, log_text(log3)[-1000:]))

sys.exit(1 if failures else 0)
PY
