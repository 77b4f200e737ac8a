#!/usr/bin/env bash
# quickstart.sh: one command from a fresh Debian machine (as root) to
# postern running in front of a sandboxed Postfix with the example rules.
# It installs the packages, builds postern, validates rules/examples with
# posternctl, and brings up the test lab: a private Postfix, dnsmasq and an
# smtp-sink "Internet" inside a network namespace of its own, so the host's
# Postfix and DNS are never touched.  It sends one message through, prints
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

step "sending a message as alice@corp.example (SMTP AUTH on 127.0.0.1:587)"
lab_send_auth alice@corp.example secret --to someone@remote.example \
    --header "Subject: hello from the postern quickstart" ||
    { cat "$LAB_SWAKS_LOG"; lab_fail "the submission was refused"; }
lab_wait_sink 1
first=$(lab_sink_files | head -1)
echo "delivered to the sink: $first"
echo "  left from $(lab_sink_header "$first" X-Client-Addr), HELO $(lab_sink_header "$first" X-Helo-Args)"

cat <<TXT

== postern quickstart: ready
  rules checked     $top/rules/examples  ($ctl -r ... check | rules show acme)
  Postfix config    $LAB_PF_CONF/main.cf, master.cf
  Postfix mail log  $LAB_MAILLOG
  received mail     $LAB_SINK_DIR (smtp-sink plays the Internet at 127.0.0.10)
  send more         ip netns exec $LAB_NS swaks --server 127.0.0.1 --port 587 \\
                      --auth PLAIN --auth-user alice@corp.example --auth-password secret \\
                      --from alice@corp.example --to anyone@remote.example
  inspect a tenant  $ctl -r $top/rules/examples rules show acme
TXT
if [ "$once" = 0 ]; then
    read -r -p "Press Enter to stop the sandbox and remove it... " _ || true
fi
lab_down
echo "quickstart: sandbox removed"
