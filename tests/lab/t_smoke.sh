#!/usr/bin/env bash
# t_smoke.sh -- smoke test of the integration lab itself (tests/lab/lab.sh):
# (a) an authenticated submission on 587 reaches the sink, (b) a transport
# bound to 127.0.0.2 and selected by sender leaves from that address with its
# own HELO, (c) unauthenticated relaying and a wrong password are refused on
# 587, then (d) lab_down leaves nothing behind.
# Exit 0 = pass; one "PASS:"/"FAIL:" line per check.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lab/lab.sh
source "$here/lab.sh"

ms_since() { local now=${EPOCHREALTIME/[.,]/}; echo $(((now - $1) / 1000)); }
t_start=${EPOCHREALTIME/[.,]/}

# sink_file_with HEADER ADDRESS: the first sink file whose smtp-sink header
# (X-Mail-Args: envelope sender, X-Rcpt-Args: recipient) names <ADDRESS>.
sink_file_with() {
    local f
    for f in $(lab_sink_files); do
        if lab_sink_header "$f" "$1" | grep -q -F -- "<$2>"; then
            printf '%s\n' "$f"
            return 0
        fi
    done
    return 1
}

# expect_header FILE NAME EXPECTED-GLOB LABEL
expect_header() {
    local got
    got=$(lab_sink_header "$1" "$2") || got="(missing)"
    # shellcheck disable=SC2053 # $3 is a glob on purpose
    if [[ $got != $3 ]]; then
        lab_fail "$4: $2 is '$got', expected '$3' (in $1)"
    fi
}

lab_up
lab_ok "lab up: namespace $LAB_NS, files in $LAB_DIR ($(ms_since "$t_start") ms)"

# --- (a) authenticated submission --------------------------------------------
rc=0
lab_send_auth alice@corp.example secret \
    --from alice@corp.example --to someone@remote.example || rc=$?
if ((rc != 0)); then
    cat "$LAB_SWAKS_LOG"
    lab_fail "(a) authenticated submission as alice was refused (swaks exit $rc)"
fi
lab_wait_sink 1 || lab_fail "(a) alice's message did not reach the sink"
f=$(sink_file_with X-Mail-Args alice@corp.example) ||
    lab_fail "(a) no sink file with MAIL FROM:<alice@corp.example>"
expect_header "$f" X-Rcpt-Args '<someone@remote.example>*' "(a)"
expect_header "$f" X-Client-Addr 127.0.0.1 "(a) default source address"
expect_header "$f" X-Helo-Args lab.postern.test "(a) default HELO"
lab_wait_log 'sasl_method=PLAIN, sasl_username=alice@corp\.example' ||
    lab_fail "(a) maillog does not show alice's SASL login"
lab_wait_log 'to=<someone@remote\.example>, relay=mx\.lab\.test\[127\.0\.0\.10\]:25,.* status=sent' ||
    lab_fail "(a) maillog does not show the delivery to the MX mx.lab.test"
lab_ok "(a) AUTH PLAIN submission on 587 delivered via MX to the sink from 127.0.0.1"

# --- (b) transport bound to 127.0.0.2, chosen by sender ------------------------
lab_master_add "bind2 unix - - n - - smtp -o smtp_bind_address=127.0.0.2 -o smtp_helo_name=out2.lab.test -o syslog_name=$LAB_NS/bind2"
map=$(lab_map sender_transport 'bob@corp.example bind2:')
lab_postconf "sender_dependent_default_transport_maps = $map"
lab_postfix_reload
rc=0
lab_send_auth bob@corp.example secret --to someone@remote.example || rc=$?
if ((rc != 0)); then
    cat "$LAB_SWAKS_LOG"
    lab_fail "(b) submission as bob was refused (swaks exit $rc)"
fi
# Control: alice (not in the map) still leaves through the default transport.
rc=0
lab_send_auth alice@corp.example secret --from alice@corp.example \
    --to other@acme.example || rc=$?
((rc == 0)) || lab_fail "(b) second submission as alice refused (swaks exit $rc)"
lab_wait_sink 3 || lab_fail "(b) bob's and alice's messages did not reach the sink"
f=$(sink_file_with X-Mail-Args bob@corp.example) ||
    lab_fail "(b) no sink file with MAIL FROM:<bob@corp.example>"
expect_header "$f" X-Client-Addr 127.0.0.2 "(b) bound source address"
expect_header "$f" X-Helo-Args '*out2.lab.test*' "(b) HELO of bind2"
lab_wait_log "/bind2/smtp\\[[0-9]+\\]: [0-9A-F]+: to=<someone@remote\\.example>.*status=sent" ||
    lab_fail "(b) maillog does not show the delivery through bind2"
f=$(sink_file_with X-Rcpt-Args other@acme.example) ||
    lab_fail "(b) control message from alice (to other@acme.example) not in the sink"
expect_header "$f" X-Client-Addr 127.0.0.1 "(b) control message from alice"
lab_ok "(b) bob's mail left via bind2 from 127.0.0.2 as out2.lab.test; alice's still from 127.0.0.1"

# --- (c) refusals on 587 -------------------------------------------------------
rc=0
lab_send --port 587 --from mallory@remote.example --to victim@remote.example || rc=$?
if ((rc == 0)) || ! grep -q 'Relay access denied' "$LAB_SWAKS_LOG"; then
    cat "$LAB_SWAKS_LOG"
    lab_fail "(c) unauthenticated relay on 587 was not refused (swaks exit $rc)"
fi
lab_ok "(c) unauthenticated relay on 587 refused: $(grep -m1 -o '5[0-9][0-9] [0-9.]* .*Relay access denied' "$LAB_SWAKS_LOG")"
rc=0
lab_send_auth alice@corp.example wrong-password || rc=$?
if ((rc == 0)) || ! grep -qE '^<\*\* 535 ' "$LAB_SWAKS_LOG"; then
    cat "$LAB_SWAKS_LOG"
    lab_fail "(c) AUTH with a wrong password was not refused with 535 (swaks exit $rc)"
fi
lab_ok "(c) AUTH with a wrong password refused with 535"

# --- (d) teardown leaves nothing behind -----------------------------------------
ns=$LAB_NS
dir=$LAB_DIR
declare -A start_of=()
for name in master dnsmasq smtp-sink init; do
    p=$(lab_pid "$name")
    if [[ -z $p || ! -d /proc/$p ]]; then
        lab_fail "(d) no running $name before teardown"
    fi
done
# Every process in the namespace, with its start time (PIDs may be reused).
for p in $(ip netns pids "$ns"); do
    start_of[$p]=$(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null) || true
done
echo "teardown: $(printf '%s\n' "${!start_of[@]}" | sort -n | tr '\n' ' ')(master $(lab_pid master), dnsmasq $(lab_pid dnsmasq), smtp-sink $(lab_pid smtp-sink))"
lab_down || lab_fail "(d) lab_down reported an error"
lab_down || lab_fail "(d) a second lab_down is not a no-op"

if ip netns list | grep -q -- "^$ns\\( \\|\$\\)"; then
    lab_fail "(d) namespace $ns still exists"
fi
[[ ! -e /etc/netns/$ns ]] || lab_fail "(d) /etc/netns/$ns still exists"
[[ ! -e /run/netns/$ns ]] || lab_fail "(d) /run/netns/$ns still exists"
if [[ $LAB_KEEP == 1 ]]; then
    dir_note="$dir kept (LAB_KEEP=1)"
else
    [[ ! -e $dir ]] || lab_fail "(d) $dir still exists"
    dir_note="no $dir"
fi
for p in "${!start_of[@]}"; do
    if [[ -e /proc/$p ]] &&
        [[ $(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null) == "${start_of[$p]}" ]]; then
        lab_fail "(d) process $p ($(tr '\0' ' ' <"/proc/$p/cmdline")) survived lab_down"
    fi
done
lab_ok "(d) teardown: no namespace, no /etc/netns/$ns, $dir_note, none of ${#start_of[@]} processes left (not even as zombies)"

echo "t_smoke: all checks passed in $(ms_since "$t_start") ms"
