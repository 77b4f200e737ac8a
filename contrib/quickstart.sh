#!/usr/bin/env bash
# quickstart.sh: one command from a fresh Debian machine (as root) to
# postern running in front of a sandboxed Postfix with the example rules.
# It installs the packages, builds postern, validates rules/examples with
# posternctl, and brings up the test lab: a private Postfix, dnsmasq and an
# smtp-sink "Internet" inside a network namespace of its own, so the host's
# Postfix and DNS are never touched.  postern-policyd runs in front of it
# with the example rules.  It sends one message through, prints
# where to look, and removes everything when you press Enter (or at once
# with --once).  It grows with each daemon: policyd and the milter join the
# sandbox as they land.
#   usage: contrib/quickstart.sh [--once] [--no-install] [--build DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
once=0 install=1 build=$top/build/quickstart
while [ $# -gt 0 ]; do
    case "$1" in
        --once) once=1 ;;
        --no-install) install=0 ;;
        --build) build=${2:?--build needs a directory}; shift ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "quickstart: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -t 0 ] || once=1
case "$build" in /*) ;; *) build=$PWD/$build ;; esac
step() { printf '\n== %s\n' "$*"; }

if [ "$install" = 1 ]; then
    step "installing Debian packages (contrib/install-deps.sh)"
    "$top/contrib/install-deps.sh" all
fi

if [ ! -x "$build/ctl/posternctl" ]; then
    step "building postern in $build"
    (cd "$top" && autoreconf -fi >/dev/null 2>&1)
    mkdir -p "$build"
    (cd "$build" && "$top/configure" -q && make -s -j"$(nproc)") >"$build.log" 2>&1 ||
        { tail -30 "$build.log"; echo "quickstart: build failed (log: $build.log)" >&2; exit 1; }
fi
ctl=$build/ctl/posternctl

step "checking the example rules (posternctl check)"
"$ctl" -r "$top/rules/examples" check 2>/dev/null

step "starting the sandbox: Postfix, dnsmasq and smtp-sink in a network namespace"
# shellcheck source=../tests/lab/lab.sh
. "$top/tests/lab/lab.sh"
lab_up
echo "namespace $LAB_NS, files in $LAB_DIR"

step "starting postern-policyd with the example rules, in front of the sandboxed Postfix"
cat >"$LAB_DIR/postern.yaml" <<YAML
rules: $top/rules/examples
state_dir: $LAB_DIR/state
user: nobody
policyd:
  listen: [inet:127.0.0.1:10040]
  pid_file: $LAB_DIR/policyd.pid
YAML
ip netns exec "$LAB_NS" "$build/policyd/postern-policyd" -f -c "$LAB_DIR/postern.yaml" >"$LAB_DIR/policyd.log" 2>&1 &
policyd_pid=$!
for _ in $(seq 600); do grep -q 'event=start' "$LAB_DIR/policyd.log" && break; sleep 0.1; done
grep -q 'event=start' "$LAB_DIR/policyd.log" || { cat "$LAB_DIR/policyd.log"; lab_fail "postern-policyd did not start"; }
lab_postconf \
    'smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:10040, permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination' \
    'smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:10040'
lab_postfix_reload
# a login of the example tenant globex (rules/examples/corporate.yaml)
echo secret | ip netns exec "$LAB_NS" saslpasswd2 -p -c -f "$LAB_SASLDB" -u globex.example ceo
chown postfix "$LAB_SASLDB"

step "sending as ceo@globex.example (SMTP AUTH on 127.0.0.1:587): permitted and counted"
lab_send_auth ceo@globex.example secret --to someone@remote.example \
    --header "Subject: hello from the postern quickstart" ||
    { cat "$LAB_SWAKS_LOG"; lab_fail "the submission was refused"; }
lab_wait_sink 1
first=$(lab_sink_files | head -1)
echo "delivered to the sink: $first"
echo "  left from $(lab_sink_header "$first" X-Client-Addr), HELO $(lab_sink_header "$first" X-Helo-Args)"

step "a host that is not globex's, sending as globex.example: refused by postern"
if lab_send --from forged@globex.example --to someone@remote.example; then
    lab_fail "the forged sender was accepted"
fi
grep -o '554 5.7.1.*' "$LAB_SWAKS_LOG" | head -1

step "what postern counted and decided (posternctl usage / audit)"
"$ctl" -c "$LAB_DIR/postern.yaml" usage globex
"$ctl" -c "$LAB_DIR/postern.yaml" audit --limit 4

cat <<TXT

== postern quickstart: ready
  rules checked     $top/rules/examples  ($ctl -r ... check | rules show acme)
  Postfix config    $LAB_PF_CONF/main.cf, master.cf
  Postfix mail log  $LAB_MAILLOG
  received mail     $LAB_SINK_DIR (smtp-sink plays the Internet at 127.0.0.10)
  send more         ip netns exec $LAB_NS swaks --server 127.0.0.1 --port 587 \\
                      --auth PLAIN --auth-user ceo@globex.example --auth-password secret \\
                      --from ceo@globex.example --to anyone@remote.example
  inspect a tenant  $ctl -r $top/rules/examples rules show acme
  policyd           log $LAB_DIR/policyd.log, state $LAB_DIR/state/policyd.sqlite
  usage and audit   $ctl -c $LAB_DIR/postern.yaml usage | audit
TXT
if [ "$once" = 0 ]; then
    read -r -p "Press Enter to stop the sandbox and remove it... " _ || true
fi
kill "$policyd_pid" 2>/dev/null; wait "$policyd_pid" 2>/dev/null
lab_down
echo "quickstart: sandbox removed"
