#!/usr/bin/env bash
# t_milter.sh: postern-milter in front of the lab's real Postfix, its
# signatures checked by an independent verifier (dkimverify, python3-dkim,
# resolving the keys through the lab's DNS):
#  - an active key that cannot be read: -n refuses, naming file:line:column
#    and the key file; the daemon starts all the same, and the mail that
#    key would sign gets the on_error tempfail (451 4.3.0), a log line and
#    an audit record, until a reload with the key readable;
#  - over a unix socket in Postfix's private/ directory (milter_protocol
#    = 6; with 2 the milter refuses and Postfix defers): tenant mail
#    (SASL login) carries two signatures, RSA-2048 (simple/simple: the
#    headers byte for byte as Postfix passes them) and Ed25519, both
#    verify; a foreign From: (not the tenant's domain) is not signed;
#  - a 10 MB message and a MIME multipart message (a folded header, an
#    8-bit part, a base64 part) verify;
#  - SIGHUP after switching the active RSA selector: the next message is
#    signed with the new selector, without a restart;
#  - over inet 127.0.0.1: signatures verify, and the connections libmilter
#    accepted were TCP-tuned (tcp_tune.c).
# Condition waits only (sink, log lines, process exit), generous deadlines.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${POSTERN_BUILD:-$top/build/werror}
# shellcheck source=lab.sh
. "$top/tests/lab/lab.sh"

milter=${MILTER:-$build/milter/postern-milter}   # MILTER: e.g. a valgrind wrapper (tests/run)
[ -x "$milter" ] || lab_fail "no $milter (build first)"
for tool in dkimverify openssl; do
    command -v "$tool" >/dev/null 2>&1 || lab_fail "$tool is missing (contrib/install-deps.sh lab)"
done
lab_up

m=$LAB_DIR/milter
rules=$m/rules.d
keys=$m/keys
conf=$m/postern.yaml
mlog=$m/milter.log
msock=$LAB_PF_QUEUE/private/postern-milter
mport=10041
mkdir -p "$rules" "$keys"
chmod 0755 "$m" "$rules" "$keys"
cp "$top"/tests/fixtures/lab/rules.d/*.yaml "$rules/"

check() { # check DESCRIPTION CMD...
    local what=$1; shift
    if "$@"; then lab_ok "$what"; else lab_fail "$what"; fi
}
log_count() { grep -cE -- "$1" "$mlog" 2>/dev/null || true; }
log_has_n() { (($(log_count "$1") >= $2)); }

# --- keys and DNS ------------------------------------------------------------
# The daemon reads its keys as user nobody: each key belongs to nobody, 0600.
genkey() { # genkey NAME rsa|ed25519
    if [ "$2" = rsa ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/$1.pem" 2>/dev/null
    else
        openssl genpkey -algorithm ed25519 -out "$keys/$1.pem" 2>/dev/null
    fi || lab_fail "openssl genpkey $2 failed"
    chown nobody:nogroup "$keys/$1.pem"
    chmod 0600 "$keys/$1.pem"
}
# dnsmasq line publishing a key: p= is the SubjectPublicKeyInfo for RSA,
# the raw 32-byte key for Ed25519 (RFC 8463); TXT strings of <= 255 bytes.
dns_key() { # dns_key SELECTOR NAME rsa|ed25519
    local p rec line="txt-record=$1._domainkey.corp.example" i
    if [ "$3" = rsa ]; then
        p=$(openssl pkey -in "$keys/$2.pem" -pubout -outform DER | base64 -w0)
        rec="v=DKIM1; k=rsa; p=$p"
    else
        p=$(openssl pkey -in "$keys/$2.pem" -pubout -outform DER | tail -c 32 | base64 -w0)
        rec="v=DKIM1; k=ed25519; p=$p"
    fi
    for ((i = 0; i < ${#rec}; i += 250)); do
        line+=",\"${rec:i:250}\""
    done
    printf '%s\n' "$line"
}
genkey r2026 rsa
genkey e2026 ed25519
genkey r2027 rsa
lab_dns_add "$(dns_key r2026 r2026 rsa)" "$(dns_key e2026 e2026 ed25519)" "$(dns_key r2027 r2027 rsa)"
lab_dns_restart || lab_fail "dnsmasq did not restart with the DKIM records"
lab_dig r2026._domainkey.corp.example TXT >/dev/null || lab_fail "the lab's DNS does not serve the RSA key"

# corp signs with r2026 (RSA, simple/simple) and e2026 (Ed25519,
# relaxed/relaxed); r2027 (RSA, relaxed/relaxed) waits, inactive
write_dkim() { # write_dkim ACTIVE_RSA_SELECTOR: the fixture's corp.yaml plus its keys
    local sel on c
    {
        cat "$top/tests/fixtures/lab/rules.d/corp.yaml"
        echo "dkim:"
        # r2026 simple/simple: the headers are signed byte for byte as
        # Postfix passes them to the milter (folds, leading spaces)
        for sel in r2026 r2027; do
            on=false
            [ "$sel" = "$1" ] && on=true
            c=relaxed/relaxed
            [ "$sel" = r2026 ] && c=simple/simple
            echo "  - {domain: corp.example, selector: $sel, key: $keys/$sel.pem, active: $on, canonicalization: $c}"
        done
        echo "  - {domain: corp.example, selector: e2026, key: $keys/e2026.pem}"
    } >"$rules/corp.yaml.new"
    mv "$rules/corp.yaml.new" "$rules/corp.yaml"
}
write_dkim r2026

write_conf() { # write_conf FILE LISTEN RULES_DIR
    cat >"$1" <<YAML
rules: $3
state_dir: $m/state
timezone: UTC
user: nobody
log_level: info
milter:
  listen: $2
  on_error: tempfail
  pid_file: $m/milter.pid
YAML
}
write_conf "$conf" "unix:$msock" "$rules"

# --- 1. an active key that cannot be read -------------------------------------
bad=$m/bad
mkdir -p "$bad/rules.d"
chmod 0755 "$bad" "$bad/rules.d"
cp "$rules"/*.yaml "$bad/rules.d/"
cp "$keys/e2026.pem" "$bad/unreadable.pem"
chmod 0600 "$bad/unreadable.pem"   # root's: nobody cannot read it
sed -i "s|$keys/e2026.pem|$bad/unreadable.pem|" "$bad/rules.d/corp.yaml"
write_conf "$bad/postern.yaml" "unix:$bad/milter.sock" "$bad/rules.d"
sed -i "s|pid_file: .*|pid_file: $bad/milter.pid|" "$bad/postern.yaml"
keyline=$(grep -n 'unreadable.pem' "$bad/rules.d/corp.yaml" | cut -d: -f1)
rc=0
out=$(timeout 60 "$milter" -n -c "$bad/postern.yaml" 2>&1) || rc=$?
check "-n with an unreadable active key: exit 1, the error names corp.yaml:$keyline:col and the key file" \
    test "$rc" = 1 -a -n "$(grep -E "corp\.yaml:$keyline:[0-9]+: .*$bad/unreadable.pem" <<<"$out")"
check "-n on the good rules: exit 0, 2 active keys readable by nobody" \
    bash -c "'$milter' -n -c '$conf' | grep -q 'dkim: 2 active keys, readable by user nobody'"

# --- the daemon -----------------------------------------------------------------
mpid=
start_milter() { # start_milter CONF [ENV...]
    local c=$1 n
    shift
    : >>"$mlog"
    n=$(log_count 'event=start ')
    env "$@" ip netns exec "$LAB_NS" "$milter" -f -c "$c" >>"$mlog" 2>&1 &
    mpid=$!
    lab_wait_for 60 log_has_n 'event=start ' $((n + 1)) || { tail -20 "$mlog"; lab_fail "postern-milter did not start"; }
}
milter_gone() { ! kill -0 "$mpid" 2>/dev/null; }
stop_milter() {
    [ -n "$mpid" ] || return 0
    kill -TERM "$mpid" 2>/dev/null
    # libmilter's listener notices the stop within 5 s
    lab_wait_for 60 milter_gone || lab_fail "postern-milter ignored SIGTERM"
    wait "$mpid" 2>/dev/null
    mpid=
}
use_milter() { lab_use_milter "$1" 'message_size_limit = 30000000'; }

n_sent=0
last_rcpt=
send_corp() { # send_corp [swaks args]: bob's authenticated submission to a fresh recipient
    n_sent=$((n_sent + 1))
    last_rcpt="m$n_sent@remote.example"
    local before; before=$(lab_sink_count)
    lab_send_auth bob@corp.example secret --to "$last_rcpt" "$@" ||
        { tail -5 "$LAB_SWAKS_LOG"; lab_fail "submission $n_sent refused"; }
    lab_wait_sink $((before + 1)) 120 || lab_fail "message $n_sent did not reach the sink"
}
sink_file() { # the dump file of the message to $last_rcpt
    local f
    for f in $(lab_sink_files); do
        if lab_sink_header "$f" X-Rcpt-Args | grep -qF "<$last_rcpt>"; then
            printf '%s\n' "$f"
            return 0
        fi
    done
    return 1
}
sigs() { lab_sink_header "$1" DKIM-Signature; }   # one line per signature, unfolded
sig_selectors() { # "a=rsa-sha256 s=r2026" per signature, sorted
    sigs "$1" | while IFS= read -r s; do
        printf 'a=%s s=%s\n' "$(grep -oE '(^|[; ])a=[a-z0-9-]+' <<<"$s" | head -1 | sed 's/.*a=//')" \
            "$(grep -oE '(^|[; ])s=[a-z0-9-]+' <<<"$s" | head -1 | sed 's/.*s=//')"
    done | sort
}
verify_all() { # verify_all FILE: every signature verifies with dkimverify
    local f=$1 n i
    n=$(sigs "$f" | grep -c .)
    ((n > 0)) || return 1
    for ((i = 0; i < n; i++)); do
        if ! ip netns exec "$LAB_NS" dkimverify --index "$i" <"$f" | grep -q 'signature ok'; then
            echo "dkimverify --index $i failed on $f:" >&2
            grep -A8 '^DKIM-Signature' "$f" | head -20 >&2
            return 1
        fi
    done
}
expect_dual() { # expect_dual WHAT RSA_SELECTOR
    local f want got
    f=$(sink_file) || lab_fail "$1: no dump file for $last_rcpt"
    want=$(printf 'a=ed25519-sha256 s=e2026\na=rsa-sha256 s=%s\n' "$2" | sort)
    got=$(sig_selectors "$f")
    check "$1: two DKIM-Signature headers, RSA ($2) and Ed25519 (e2026)" test "$got" = "$want"
    check "$1: both signatures verify (dkimverify)" verify_all "$f"
}

# --- 1b. the daemon started with that key unreadable -------------------------------
# It starts (refusing would make Postfix tempfail every tenant's mail):
# corp's mail, which that key signs, gets the on_error answer (tempfail),
# a log line and an audit record; a reload with the key readable heals.
ctl=$build/ctl/posternctl
start_milter "$bad/postern.yaml"
check "started with an unreadable active key: key_error names corp.yaml:$keyline:col and the key file" \
    grep -qE "event=key_error .*corp\.yaml:$keyline:[0-9]+: .*$bad/unreadable.pem" "$mlog"
check "started with an unreadable active key: the start line counts it (broken_keys=1)" \
    grep -qE 'event=start .*broken_keys=1' "$mlog"
use_milter "unix:$bad/milter.sock"
rc=0
lab_send_auth bob@corp.example secret --to broken-key@remote.example || rc=$?
check "a message the unreadable key would sign gets the configured tempfail (451 4.3.0)" \
    test "$rc" != 0 -a -n "$(grep -E '^<\*\* +451 4\.3\.0 ' "$LAB_SWAKS_LOG")"
check "the tempfail is logged, naming the key and why" \
    grep -qE "event=milter_error .*s=e2026 d=corp\.example: the key could not be loaded: .*unreadable\.pem" "$mlog"
audit=$("$ctl" -c "$bad/postern.yaml" audit --json --sender bob@corp.example 2>&1) || true
check "the tempfail is an audit record (posternctl audit: action tempfail, the reason names the key)" \
    grep -qE '"action": ?"tempfail".*"reason": ?"[^"]*s=e2026 d=corp\.example: the key could not be loaded' <<<"$audit"

chown nobody "$bad/unreadable.pem"
n=$(log_count 'event=reload status=ok')
kill -HUP "$mpid"
lab_wait_for 60 log_has_n 'event=reload status=ok' $((n + 1)) || lab_fail "no reload after the key was fixed"
send_corp
expect_dual "after a reload with the key readable" r2026
stop_milter
use_milter "unix:$msock"

# --- 2. unix socket ----------------------------------------------------------------
start_milter "$conf"
check "the unix socket is in Postfix's private/ directory, mode 0666" \
    test "$(stat -c %a "$msock" 2>/dev/null)" = 666
use_milter "unix:$msock"

send_corp
expect_dual "unix socket, tenant mail" r2026

send_corp --header "From: Someone <someone@remote.example>"
f=$(sink_file) || lab_fail "no dump file for the foreign From: message"
check "a foreign From: (not the tenant's domain) is not signed" test -z "$(sigs "$f")"

# an MTA that cannot let the milter insert headers, choose its macros or
# keep the leading space of header values is refused: milter_default_action
n=$(log_count 'event=milter_negotiate status=refused')
lab_postconf 'milter_protocol = 2' || lab_fail "postconf failed"
lab_postfix_reload || lab_fail "postfix reload failed"
rc=0
lab_send_auth bob@corp.example secret --to old-protocol@remote.example || rc=$?
check "milter_protocol = 2: the milter refuses the negotiation, Postfix defers the message (4xx)" \
    test "$rc" != 0 -a -n "$(grep -E '^<\*\* +4[0-9][0-9] ' "$LAB_SWAKS_LOG")"
check "the refused negotiation is logged, naming what is missing" \
    log_has_n 'event=milter_negotiate status=refused .*missing="[^"]*header-leading-space' $((n + 1))
use_milter "unix:$msock"

# --- 3. a 10 MB message, a MIME multipart message ------------------------------------
big=$m/big.txt
python3 - "$big" <<'PY'
import sys
line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:-_=+\n"
with open(sys.argv[1], "w") as f:
    n = 0
    while n < 10 * 1024 * 1024:
        f.write(line)
        n += len(line)
PY
send_corp --body "@$big"
f=$(sink_file)
check "the 10 MB message reached the sink whole" test "$(stat -c %s "$f")" -gt $((10 * 1024 * 1024))
expect_dual "10 MB message" r2026

mime=$m/mime.eml
python3 - "$mime" <<'PY'
import base64, os, sys
att = base64.encodebytes(bytes(range(256)) * 64).decode()
text = ("Grüße aus Köln: Änderungen für März, naïve café, 東京\n" * 20)
msg = f"""From: Bob <bob@corp.example>
To: Reader <reader@remote.example>
Subject: a MIME message with an 8-bit part and a base64 part,
 whose subject is folded over
\tthree lines
Date: Sat, 28 Nov 2026 12:00:00 +0000
Message-ID: <mime-1@corp.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_postern_b1"

This is a multi-part message in MIME format.

--=_postern_b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

{text}
--=_postern_b1
Content-Type: application/octet-stream; name="bytes.bin"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="bytes.bin"

{att}
--=_postern_b1--
"""
with open(sys.argv[1], "wb") as f:
    f.write(msg.replace("\n", "\r\n").encode("utf-8"))
PY
n_sent=$((n_sent + 1))
last_rcpt="m$n_sent@remote.example"
before=$(lab_sink_count)
lab_send_auth bob@corp.example secret --to "$last_rcpt" --data "@$mime" ||
    { tail -5 "$LAB_SWAKS_LOG"; lab_fail "the MIME message was refused"; }
lab_wait_sink $((before + 1)) 120 || lab_fail "the MIME message did not reach the sink"
f=$(sink_file)
check "the MIME message arrived with its 8-bit part unchanged" grep -q 'Grüße aus Köln' "$f"
expect_dual "MIME multipart, folded Subject:, 8-bit and base64 parts" r2026

# long lines (980 characters, under Postfix's smtp_line_length_limit of
# 990: longer ones are folded by Postfix's SMTP client after signing, see
# postern-milter(8)) and bare LF line ends (Postfix makes them CRLF before
# the milter sees the message)
odd=$m/odd.eml
python3 - "$odd" <<'PY'
import sys
long = "x" * 980
msg = ("From: bob@corp.example\r\nTo: reader@remote.example\r\nSubject: long lines and bare LF\r\n"
       "Date: Sat, 28 Nov 2026 12:00:00 +0000\r\nMessage-ID: <odd-1@corp.example>\r\n\r\n"
       + long + "\r\n" + "a line ended by a bare LF\n" + long + "\n" + "last line\r\n")
open(sys.argv[1], "w").write(msg)
PY
n_sent=$((n_sent + 1))
last_rcpt="m$n_sent@remote.example"
before=$(lab_sink_count)
lab_send_auth bob@corp.example secret --to "$last_rcpt" --data "@$odd" ||
    { tail -5 "$LAB_SWAKS_LOG"; lab_fail "the long-line message was refused"; }
lab_wait_sink $((before + 1)) 120 || lab_fail "the long-line message did not reach the sink"
f=$(sink_file)
check "the long-line message arrived with its 980-character lines" grep -q "$(printf 'x%.0s' $(seq 980))" "$f"
expect_dual "980-character lines and bare LF line ends" r2026

# a message that already carries a signature of another domain: ours are
# added on top and verify; the old one is left as it was
presigned=$m/presigned.eml
printf '%s\r\n' "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=other.example; s=old;" \
    " h=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA" \
    "From: bob@corp.example" "To: reader@remote.example" "Subject: already signed elsewhere" \
    "Date: Sat, 28 Nov 2026 12:00:00 +0000" "Message-ID: <presigned-1@corp.example>" "" \
    "a forwarded message" >"$presigned"
n_sent=$((n_sent + 1))
last_rcpt="m$n_sent@remote.example"
before=$(lab_sink_count)
lab_send_auth bob@corp.example secret --to "$last_rcpt" --data "@$presigned" ||
    { tail -5 "$LAB_SWAKS_LOG"; lab_fail "the pre-signed message was refused"; }
lab_wait_sink $((before + 1)) 120 || lab_fail "the pre-signed message did not reach the sink"
f=$(sink_file)
verify_ours() { # verify_ours FILE: signatures 0 and 1 (ours, on top) verify
    local i
    for i in 0 1; do
        ip netns exec "$LAB_NS" dkimverify --index "$i" <"$1" | grep -q 'signature ok' || return 1
    done
}
check "a message signed by another domain: three signatures, the old one kept" \
    test "$(sigs "$f" | grep -c .)" -eq 3 -a "$(sigs "$f" | grep -c 'd=other.example')" -eq 1
check "a message signed by another domain: our two signatures (on top) verify" verify_ours "$f"

# --- 3b. a message that Postfix changes before the milter sees it ------------------
# header_checks adds one header and removes another, cleanup adds the
# missing Date: and Message-ID: and qualifies the bare To: address: the
# milter signs the message as Postfix queued it, so the signatures cover
# the added headers and verify at the sink
printf '%s\n' '/^Subject: postfix changes me/ PREPEND X-Postfix-Checked: yes' '/^X-Drop-Me:/ IGNORE' >"$m/header_checks"
lab_postconf "header_checks = regexp:$m/header_checks" || lab_fail "postconf failed"
lab_postfix_reload || lab_fail "postfix reload failed"
n_sent=$((n_sent + 1))
last_rcpt="m$n_sent@remote.example"
before=$(lab_sink_count)
lab_send_auth bob@corp.example secret --to "$last_rcpt" \
    --data $'From: Bob <bob@corp.example>\r\nTo: reader\r\nSubject: postfix changes me\r\nX-Drop-Me: gone\r\n\r\nNo Date, no Message-ID.\r\n' ||
    { tail -5 "$LAB_SWAKS_LOG"; lab_fail "the message Postfix changes was refused"; }
lab_wait_sink $((before + 1)) 120 || lab_fail "the message Postfix changes did not reach the sink"
f=$(sink_file) || lab_fail "no dump file for the message Postfix changes"
check "Postfix changed the message: X-Postfix-Checked added, X-Drop-Me removed, Date: and Message-ID: added, To: qualified" \
    test -n "$(lab_sink_header "$f" X-Postfix-Checked)" -a -z "$(lab_sink_header "$f" X-Drop-Me)" \
    -a -n "$(lab_sink_header "$f" Date)" -a -n "$(lab_sink_header "$f" Message-ID)" \
    -a -n "$(lab_sink_header "$f" To | grep -F 'reader@')"
check "the signatures cover the Date: and Message-ID: that Postfix added" \
    test "$(sigs "$f" | grep -ciE 'h=[^;]*date[^;]*message-id|h=[^;]*message-id[^;]*date')" = 2
expect_dual "a message Postfix changed before signing" r2026
lab_postconf "header_checks =" || lab_fail "postconf failed"
lab_postfix_reload || lab_fail "postfix reload failed"

# --- 4. reload: the active RSA selector switches to r2027 -----------------------------
write_dkim r2027
n=$(log_count 'event=reload status=ok')
kill -HUP "$mpid"
lab_wait_for 60 log_has_n 'event=reload status=ok' $((n + 1)) || { tail -5 "$mlog"; lab_fail "no reload logged"; }
check "SIGHUP reloads (rules and keys), the daemon keeps running (same pid)" kill -0 "$mpid"
send_corp
expect_dual "after the reload, without a restart" r2027

# a reload whose key cannot be read keeps the keys in use
chmod 0000 "$keys/e2026.pem"
chown root:root "$keys/e2026.pem"
n=$(log_count 'event=reload status=failed')
kill -HUP "$mpid"
lab_wait_for 60 log_has_n 'event=reload status=failed' $((n + 1)) || { tail -5 "$mlog"; lab_fail "no failed reload logged"; }
check "a reload with an unreadable key logs the key file with file:line:column" \
    log_has_n "event=reload_error .*corp\.yaml:[0-9]+:[0-9]+: .*$keys/e2026.pem" 1
send_corp
expect_dual "after the refused reload, the keys in use still sign" r2027
chown nobody:nogroup "$keys/e2026.pem"
chmod 0600 "$keys/e2026.pem"
stop_milter
check "SIGTERM: the daemon stopped cleanly" log_has_n 'event=stop .*status=0' 1

# --- 5. inet 127.0.0.1 ------------------------------------------------------------------
iconf=$m/postern-inet.yaml
write_conf "$iconf" "inet:127.0.0.1:$mport" "$rules"
start_milter "$iconf"
use_milter "inet:127.0.0.1:$mport"
send_corp
expect_dual "inet socket" r2027
send_corp --header "From: Someone <someone@remote.example>"
f=$(sink_file)
check "inet socket: a foreign From: is not signed" test -z "$(sigs "$f")"
stop_milter
tuned=$(grep -oE 'event=stop .*tcp_tuned=[0-9]+' "$mlog" | tail -1 | sed 's/.*tcp_tuned=//')
check "inet socket: the connections libmilter accepted were TCP-tuned ($tuned)" test "${tuned:-0}" -ge 2
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$mlog"; then
    grep -E 'Sanitizer|runtime error' "$mlog" | head -5
    lab_fail "sanitizer reports in $mlog"
fi
lab_ok "postern-milter: all checks done"
