#!/usr/bin/env bash
# quickstart.sh: one command from a fresh Debian machine (as root) to
# postern running in front of a sandboxed Postfix with the example rules.
# It installs the packages, builds postern, validates rules/examples with
# posternctl, and brings up the test lab: a private Postfix, dnsmasq and an
# smtp-sink "Internet" inside a network namespace of its own, so the host's
# Postfix and DNS are never touched.  The example rules are copied into the
# sandbox, with every DKIM key they name made there by posternctl dkim
# keygen (not in /etc/postern) and published in the sandbox's DNS.
# postern-policyd (quotas) and postern-milter (DKIM signing) run in front
# of Postfix with those rules.  It sends one message through, checks its
# signature with dkimverify, prints where to look, and removes everything
# when you press Enter (or at once with --once).
#   usage: contrib/quickstart.sh [--once] [--no-install] [--build DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
once=0 install=1 build=$top/build/quickstart
while [ $# -gt 0 ]; do
    case "$1" in
        --once) once=1 ;;
        --no-install) install=0 ;;
        --build) build=${2:?--build needs a directory}; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

command -v dkimverify >/dev/null 2>&1 ||
    { echo "quickstart: dkimverify is missing (python3-dkim: contrib/install-deps.sh lab)" >&2; exit 1; }

step "starting the sandbox: Postfix, dnsmasq and smtp-sink in a network namespace"
# shellcheck source-path=SCRIPTDIR/.. disable=SC1091 # followed with -x
. "$top/tests/lab/lab.sh"
lab_up
echo "namespace $LAB_NS, files in $LAB_DIR"

# wait_started NAME PID LOG: poll LOG for the daemon's event=start line
wait_started() {
    local end=$((SECONDS + 120))
    until grep -q 'event=start' "$3"; do
        if ! kill -0 "$2" 2>/dev/null || ((SECONDS >= end)); then
            cat "$3"
            lab_fail "$1 did not start"
        fi
        sleep 0.1
    done
}

step "copying the example rules into the sandbox, with DKIM keys of their own"
# The examples name keys under /etc/postern/keys: the copy names
# $LAB_DIR/keys instead, and posternctl makes each key there.  The daemons
# run as nobody: keys owned by nobody, mode 0600, in directories of mode 0755.
rules=$LAB_DIR/rules keys=$LAB_DIR/keys conf=$LAB_DIR/postern.yaml
mkdir -p "$rules" "$keys"
chmod 0755 "$rules" "$keys"
cp "$top"/rules/examples/*.yaml "$rules/"
sed -i -E "s#([{ ,]key: *)[^,} ]*/([^/,} ]+)#\\1$keys/\\2#" "$rules"/*.yaml
chmod 0644 "$rules"/*.yaml
msock=$LAB_PF_QUEUE/private/postern-milter
cat >"$conf" <<YAML
rules: $rules
state_dir: $LAB_DIR/state
user: nobody
policyd:
  listen: [inet:127.0.0.1:10040]
  pid_file: $LAB_DIR/policyd.pid
milter:
  listen: unix:$msock
  on_error: tempfail
  pid_file: $LAB_DIR/milter.pid
YAML
tenants=$("$ctl" -c "$conf" check 2>/dev/null | sed -n 's/^\([^ :]*\): .*/\1/p' | grep -vx ok)
txt=()
for tenant in $tenants; do
    # "DOMAIN selector SEL: active, ALGORITHM, CANON, key PATH" per key
    while read -r domain sel algo path; do
        case "$algo" in
            ed25519-sha256) algo=ed25519 ;;
            rsa-sha256) algo=rsa ;;
            *) case "$path" in *ed25519*) algo=ed25519 ;; *) algo=rsa ;; esac ;;
        esac
        out=$("$ctl" -c "$conf" dkim keygen --tenant "$tenant" --domain "$domain" \
            --selector "$sel" --algo "$algo" --out "$path") ||
            lab_fail "posternctl dkim keygen failed for $domain selector $sel"
        chown nobody "$path"
        chmod 0600 "$path"
        # the TXT record in zone-file syntax, as a dnsmasq line: the same
        # strings of <= 255 bytes
        rec=$(printf '%s\n' "$out" | sed -n "/^$sel\\._domainkey\\.$domain\\. IN TXT (/,/)/p" | tr -d '\n')
        [ -n "$rec" ] || { printf '%s\n' "$out"; lab_fail "no TXT record for $domain selector $sel"; }
        txt+=("txt-record=$sel._domainkey.$domain,$(grep -o '"[^"]*"' <<<"$rec" | paste -sd,)")
        echo "  $tenant: $domain selector $sel, $algo key $path"
    done < <("$ctl" -c "$conf" rules show "$tenant" |
        sed -n 's/^    \([^ ]*\) selector \([^:]*\): [a-z]*, \([^,]*\), [^,]*, key \(.*\)$/\1 \2 \3 \4/p' |
        sed 's/algorithm from the key/-/')
done
[ ${#txt[@]} -gt 0 ] || lab_fail "the example rules name no DKIM key"
lab_dns_add "${txt[@]}"
lab_dns_restart || lab_fail "dnsmasq did not restart with the DKIM records"
lab_dig g2026._domainkey.globex.example TXT >/dev/null ||
    lab_fail "the sandbox's DNS does not serve globex's DKIM key"
echo "published ${#txt[@]} DKIM keys in the sandbox's DNS"

step "starting postern-policyd and postern-milter with those rules, in front of the sandboxed Postfix"
ip netns exec "$LAB_NS" "$build/policyd/postern-policyd" -f -c "$conf" >"$LAB_DIR/policyd.log" 2>&1 &
policyd_pid=$!
wait_started postern-policyd "$policyd_pid" "$LAB_DIR/policyd.log"
ip netns exec "$LAB_NS" "$build/milter/postern-milter" -f -c "$conf" >"$LAB_DIR/milter.log" 2>&1 &
milter_pid=$!
wait_started postern-milter "$milter_pid" "$LAB_DIR/milter.log"
grep -m1 'event=start' "$LAB_DIR/milter.log"
# shellcheck disable=SC2016 # $smtpd_milters is for Postfix to expand
lab_postconf \
    'smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:10040, permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination' \
    'smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:10040' \
    "smtpd_milters = unix:$msock" 'non_smtpd_milters = $smtpd_milters' \
    'milter_default_action = tempfail' 'milter_protocol = 6'
lab_postfix_reload
# a login of the example tenant globex (rules/examples/corporate.yaml)
echo secret | ip netns exec "$LAB_NS" saslpasswd2 -p -c -f "$LAB_SASLDB" -u globex.example ceo
chown postfix "$LAB_SASLDB"

step "sending as ceo@globex.example (SMTP AUTH on 127.0.0.1:587): permitted, counted and DKIM-signed"
lab_send_auth ceo@globex.example secret --to someone@remote.example \
    --header "Subject: hello from the postern quickstart" ||
    { cat "$LAB_SWAKS_LOG"; lab_fail "the submission was refused"; }
lab_wait_sink 1
first=$(lab_sink_files | head -1)
echo "delivered to the sink: $first"
echo "  left from $(lab_sink_header "$first" X-Client-Addr), HELO $(lab_sink_header "$first" X-Helo-Args)"
sig=$(lab_sink_header "$first" DKIM-Signature) ||
    lab_fail "the message arrived without a DKIM-Signature (log: $LAB_DIR/milter.log)"
echo "  signed by postern-milter:"
printf '  DKIM-Signature: %s\n' "$sig"
verify=$(ip netns exec "$LAB_NS" dkimverify <"$first" 2>&1) || true
echo "  dkimverify: $verify"
[ "$verify" = "signature ok" ] || lab_fail "the DKIM signature does not verify"

step "a host that is not globex's, sending as globex.example: refused by postern"
if lab_send --from forged@globex.example --to someone@remote.example; then
    lab_fail "the forged sender was accepted"
fi
grep -o '554 5.7.1.*' "$LAB_SWAKS_LOG" | head -1

step "what postern counted and decided (posternctl usage / audit)"
"$ctl" -c "$conf" usage globex
"$ctl" -c "$conf" audit --limit 4

cat <<TXT

== postern quickstart: ready
  rules checked     $top/rules/examples  ($ctl -r ... check | rules show acme)
  Postfix config    $LAB_PF_CONF/main.cf, master.cf
  Postfix mail log  $LAB_MAILLOG
  received mail     $LAB_SINK_DIR (smtp-sink plays the Internet at 127.0.0.10)
  send more         ip netns exec $LAB_NS swaks --server 127.0.0.1 --port 587 \\
                      --auth PLAIN --auth-user ceo@globex.example --auth-password secret \\
                      --from ceo@globex.example --to anyone@remote.example
  rules in use      $rules (a copy of rules/examples), DKIM keys in $keys
  inspect a tenant  $ctl -c $conf rules show acme
  policyd           log $LAB_DIR/policyd.log, state $LAB_DIR/state/policyd.sqlite
  milter            log $LAB_DIR/milter.log, state $LAB_DIR/state/milter.sqlite
  check a signature ip netns exec $LAB_NS dkimverify < $first
  usage and audit   $ctl -c $conf usage | audit
TXT
if [ "$once" = 0 ]; then
    read -r -p "Press Enter to stop the sandbox and remove it... " _ || true
fi
kill "$milter_pid" "$policyd_pid" 2>/dev/null || true
# libmilter's listener notices the stop within 5 s
wait "$milter_pid" "$policyd_pid" 2>/dev/null || true
lab_down
echo "quickstart: sandbox removed"
