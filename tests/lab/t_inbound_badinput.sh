#!/usr/bin/env bash
# t_inbound_badinput.sh: postern-milter's inbound checks fed crafted and
# broken messages through the lab's real Postfix: several From: headers,
# none, comments and groups, an empty group, a domain literal, an IDN
# U-label, unbalanced quotes and angle brackets, invalid UTF-8, NUL bytes,
# bare CR, a 64 KB header line, a header line without a colon, 990
# DKIM-Signature headers (5 verified), 1,000 of them and 1 MiB of headers
# (past the verifier's cap: none verified), DKIM-Signature and
# Authentication-Results headers full of garbage, 40 forged headers of
# ours.  Each message has its defined outcome, written down next to it
# (the SMTP answer, the whole Authentication-Results header at the sink,
# the audit record's action); afterwards the daemon still runs (same pid),
# logged no internal error, and a normal message still gets its header.
#
# Tenants: hdr (every check in header mode: the message is accepted, the
# results are in the header) and enf (DMARC enforced with
# milter.inbound_bad_from: reject: a From: without exactly one address
# with a valid domain is refused, 550 5.7.1).  Sender: bounce@dm-spf.example
# from 127.0.0.6, which its SPF record allows (dmarc=pass by SPF when
# From: is in dm-spf.example).
# Postfix's defaults are kept (header_size_limit 102400: the 64 KB line
# fits whole).  MILTER=wrapper runs the daemon under e.g. valgrind.
# A failed check prints FAIL and the test goes on; exit 1 at the end.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${POSTERN_BUILD:-$top/build/werror}
# shellcheck source=lab.sh
. "$top/tests/lab/lab.sh"

milter=${MILTER:-$build/milter/postern-milter}   # MILTER: e.g. a valgrind wrapper
ctl=$build/ctl/posternctl
py=/usr/bin/python3                               # Debian's, with python3-dkim
[ -x "$milter" ] || lab_fail "no $milter (build first)"
[ -x "$ctl" ] || lab_fail "no $ctl (build first)"
command -v openssl >/dev/null 2>&1 || lab_fail "openssl is missing (contrib/install-deps.sh lab)"
"$py" -c 'import dkim' 2>/dev/null || lab_fail "python3-dkim is missing (contrib/install-deps.sh lab)"
lab_up

m=$LAB_DIR/milter
rules=$m/rules.d
keys=$m/keys
bad=$m/bad
conf=$m/postern.yaml
mlog=$m/milter.log
msock=$LAB_PF_QUEUE/private/postern-milter
client=127.0.0.6
mkdir -p "$rules" "$keys" "$bad"
chmod 0755 "$m" "$rules" "$keys"

failures=0
check() { # check DESCRIPTION CMD...: PASS or FAIL, and go on
    local what=$1; shift
    if "$@"; then lab_ok "$what"; else printf 'FAIL: %s\n' "$what"; failures=$((failures + 1)); fi
}
say_fail() { # say_fail DESCRIPTION [DETAIL...]
    printf 'FAIL: %s\n' "$1"
    shift
    [ $# -gt 0 ] && printf '    %s\n' "$@"
    failures=$((failures + 1))
}
log_count() { grep -cE -- "$1" "$mlog" 2>/dev/null || true; }
log_has_n() { (($(log_count "$1") >= $2)); }

# --- tenants, DNS, the daemon ----------------------------------------------------------
cat >"$rules/hdr.yaml" <<'EOF'
# t_inbound_badinput: results in the header only
tenant: hdr
domains: [hdr.example]
inbound: {spf: header, dkim: header, dmarc: header}
EOF
cat >"$rules/enf.yaml" <<'EOF'
# t_inbound_badinput: DMARC enforced
tenant: enf
domains: [enf.example]
inbound: {spf: header, dkim: header, dmarc: enforce}
EOF
"$ctl" -r "$rules" check >/dev/null || lab_fail "posternctl check refuses the test's rules"

txt() { # txt NAME TEXT: a dnsmasq TXT record, split in strings of <= 250 bytes
    local line="txt-record=$1" rec=$2 i
    for ((i = 0; i < ${#rec}; i += 250)); do
        line+=",\"${rec:i:250}\""
    done
    printf '%s\n' "$line"
}
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/dk.pem" 2>/dev/null ||
    lab_fail "openssl genpkey failed"
lab_dns_add "$(txt dm-spf.example "v=spf1 ip4:$client -all")" \
    "$(txt _dmarc.dm-spf.example 'v=DMARC1; p=reject')" \
    "$(txt s1._domainkey.dm-spf.example "v=DKIM1; k=rsa; p=$(openssl pkey -in "$keys/dk.pem" -pubout -outform DER | base64 -w0)")"
lab_dns_restart || lab_fail "dnsmasq did not restart with the test's records"
lab_dig _dmarc.dm-spf.example TXT >/dev/null || lab_fail "the lab's DNS does not serve the DMARC record"

cat >"$conf" <<YAML
rules: $rules
state_dir: $m/state
timezone: UTC
user: nobody
log_level: info
milter:
  listen: unix:$msock
  on_error: tempfail
  pid_file: $m/milter.pid
  authserv_id: mx.lab.test
  dns_timeout: 1s
  dkim_verify_max: 5
  inbound_temperror: tempfail
  inbound_bad_from: reject
YAML

: >>"$mlog"
ip netns exec "$LAB_NS" "$milter" -f -c "$conf" >>"$mlog" 2>&1 &
mpid=$!
lab_wait_for 120 log_has_n 'event=start ' 1 || { tail -20 "$mlog"; lab_fail "postern-milter did not start"; }
# shellcheck disable=SC2016 # $smtpd_milters is for Postfix to expand
lab_postconf "smtpd_milters = unix:$msock" 'non_smtpd_milters = $smtpd_milters' \
    'milter_default_action = tempfail' 'milter_protocol = 6' || lab_fail "postconf failed"
lab_postfix_reload || lab_fail "postfix reload failed"

# --- the messages ---------------------------------------------------------------------------
# One file per case in $bad (NN-NAME.eml), written byte for byte, CRLF line
# ends unless the case is about them.  What each one must give is next to
# its check below.
"$py" - "$bad" "$keys/dk.pem" <<'PY'
import os, re, sys
import dkim
out, key = sys.argv[1], open(sys.argv[2], "rb").read()
n = 0

def msg(name, headers, body=b"a body line\r\n"):
    global n
    n += 1
    with open(os.path.join(out, "%02d-%s.eml" % (n, name)), "wb") as f:
        f.write(b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body)

STD = [b"To: Reader <reader@hdr.example>", b"Subject: a crafted message",
       b"Date: Sat, 28 Nov 2026 12:00:00 +0000", b"Message-ID: <bad@lab.test>"]
FROM = b"From: Sender <user@dm-spf.example>"

msg("normal", [FROM] + STD)
# From: problems
msg("two-from", [FROM, b"From: Other <other@dm-spf.example>"] + STD)
msg("no-from", STD)
msg("two-addresses", [b"From: a@dm-spf.example, b@dm-spf.example"] + STD)
msg("group-empty", [b"From: undisclosed-recipients:;"] + STD)
msg("comment-only", [b"From: (nobody at all)"] + STD)
msg("no-domain", [b"From: Sender <user>"] + STD)
msg("domain-literal", [b"From: Sender <user@[127.0.0.6]>"] + STD)
msg("idn-u-label", ["From: Bücher <user@bücher.example>".encode()] + STD)
msg("quote-unbalanced", [b'From: "Sender <user@dm-spf.example>'] + STD)
msg("angle-unbalanced", [b"From: Sender <user@dm-spf.example"] + STD)
msg("angle-extra", [b"From: Sender <<user@dm-spf.example>>"] + STD)
msg("label-too-long", [b"From: <user@" + b"a" * 64 + b".dm-spf.example>"] + STD)
msg("utf8-invalid-paren", [b"From: \xc3\x28 Sender <user@dm-spf.example>"] + STD)
msg("from-60k-comment", [b"From: (" + b"c" * 61440 + b") <user@dm-spf.example>"] + STD)
# From: fields that are odd but fine
msg("comments", [b"From: (first) Sender (second) <user(in the address)@dm-spf.example> (last)"] + STD)
msg("group-one", [b"From: Team: Sender <user@dm-spf.example>;"] + STD)
msg("from-folded-upper", [b"From: Sender\r\n\t<USER@DM-SPF.EXAMPLE.>"] + STD)
msg("utf8-valid-name", ["From: Grüße aus Köln 東京 <user@dm-spf.example>".encode()] + STD)
msg("utf8-invalid-name", [b"From: \xff\xfe\xc3 Sender \xed\xa0\x80 \xc0\xaf <user@dm-spf.example>"] + STD)
msg("from-50k-comment", [b"From: (" + b"c" * 51200 + b") <user@dm-spf.example>"] + STD)
msg("nul-in-from", [b"From: Sender <user@dm-spf.example>\x00<evil@elsewhere.example>"] + STD)
msg("idn-a-label", [b"From: Buecher <user@xn--bcher-kva.example>"] + STD)
# the rest of the message
msg("nul-in-body", [FROM] + STD, body=b"before\x00after\r\n\x00\x00\r\n")
msg("bare-cr-body", [FROM] + STD, body=b"one\rtwo\r\nthree\r\r\n")
msg("header-64k", [FROM, b"Subject: " + b"x" * 65536] + STD[:1] + STD[2:])
msg("no-colon-line", [FROM, b"this header line has no colon"] + STD)
# DKIM-Signature headers
sig = dkim.sign(b"\r\n".join([FROM] + STD) + b"\r\n\r\na body line\r\n", b"s1", b"dm-spf.example", key,
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
msg("dkim-990", [sig.rstrip(b"\r\n")] * 990 + [FROM] + STD)
msg("dkim-1000", [sig.rstrip(b"\r\n")] * 1000 + [FROM] + STD)
msg("dkim-1mb-headers", [sig.rstrip(b"\r\n")] + [b"X-Pad: " + b"p" * 61440] * 18 + [FROM] + STD)
b = re.sub(r"\s+", "", re.search(r"\bb=([^;]*)", re.sub(r"\bbh=", "", sig.decode())).group(1))
open(os.path.join(out, "dkim.b"), "w").write(b[:8])
msg("dkim-garbage", [b"DKIM-Signature: v=1; a=rsa-sha256; d=; s=\x01\x02; b=;;;; zz==yy; h",
                     b"DKIM-Signature: v=9; a=nothing; d=evil\"dom ain(); s=x\\y; bh=@@; b=!!; h=from",
                     b"DKIM-Signature:", FROM] + STD)
# Authentication-Results headers
msg("authres-garbage", [b"Authentication-Results: \x01\x02;;;(((",
                        b"Authentication-Results: (unclosed comment mx.lab.test; dmarc=pass",
                        b"Authentication-Results:",
                        b"Authentication-Results: mx.lab.test",
                        b"Authentication-Results: (comment) mx.lab.test; dmarc=pass",
                        b"Authentication-Results:\r\n mx.lab.test;\r\n\tdmarc=pass",
                        b"Authentication-Results: \"mx.lab.test\"; dkim=pass",
                        b"Authentication-Results: mx.lab.test.evil; dmarc=pass",
                        FROM] + STD)
msg("authres-40-forged", [b"Authentication-Results: mx.lab.test; dmarc=pass"] * 40 + [FROM] + STD)
PY

# --- sending, checking ------------------------------------------------------------------------
reply=
send_in() { # send_in MAILFROM RCPT FILE [swaks args]: $reply = the answer to the message
    local rc=0 from=$1 rcpt=$2 file=$3
    shift 3
    lab_send --local-interface "$client" --from "$from" --to "$rcpt" --data "@$file" "$@" || rc=$?
    reply=$(lab_reply)
    return "$rc"
}
ours() { lab_sink_header "$1" Authentication-Results | grep -E '^mx\.lab\.test;' || true; }

learn=${LEARN:-0}     # LEARN=1: print what happens instead of checking
audit_cases=()
sink=                 # the dump file of the last accepted message

# bad CASE RCPT WANT_REPLY WANT_AR [ACTION]: send $bad/NN-CASE.eml to RCPT
# (MAIL FROM $mailfrom, HELO $helo) and check the answer: "250", or the
# whole reply line; for an accepted message, our one
# Authentication-Results header at the sink, whole (unfolded); ACTION:
# the audit record's action (checked at the end).  Each message must be
# answered within 30 s (the 1,000 signatures too).
mailfrom=bounce@dm-spf.example
helo=client.lab.test
bad() {
    local name=$1 rcpt=$2 want_reply=$3 want_ar=$4 action=${5:-accept} file got t0
    file=$(ls "$bad"/[0-9][0-9]-"$name".eml)
    t0=$SECONDS
    sink=
    send_in "$mailfrom" "$rcpt" "$file" --helo "$helo"
    if [ "$learn" = 1 ]; then
        printf 'LEARN %s -> %s: reply=[%s] (%ss)\n' "$name" "$rcpt" "$reply" $((SECONDS - t0))
    elif ((SECONDS - t0 > 30)); then
        say_fail "$name -> $rcpt: answered in $((SECONDS - t0)) s (more than 30 s)"
    elif [ "$want_reply" = 250 ]; then
        check "$name -> $rcpt: accepted (250)" test "${reply%% *}" = 250
    elif [ "$reply" = "$want_reply" ]; then
        lab_ok "$name -> $rcpt: $reply"
    else
        say_fail "$name -> $rcpt: the answer" "want: $want_reply" "got:  $reply"
    fi
    audit_cases+=("$name|$rcpt|$action")
    [ "${reply%% *}" = 250 ] || return 0
    if ! lab_wait_for 60 lab_sink_has_rcpt "$rcpt"; then
        say_fail "$name -> $rcpt: the message reached the sink"
        return 0
    fi
    sink=$(lab_sink_file_of "$rcpt")
    got=$(ours "$sink")
    if [ "$learn" = 1 ]; then
        printf 'LEARN %s: AR=[%s]\n' "$name" "$got"
        lab_sink_header "$sink" Authentication-Results | grep -v '^mx\.lab\.test;' | sed 's/^/LEARN    other: /'
    elif [ "$got" = "$want_ar" ]; then
        lab_ok "$name -> $rcpt: Authentication-Results: ${got:0:400}"
    else
        say_fail "$name -> $rcpt: Authentication-Results" "want: $want_ar" "got:  ${got:0:2000}"
    fi
}

A='mx.lab.test'
spf_ok="spf=pass (domain of dm-spf.example designates $client as permitted sender) smtp.mailfrom=bounce@dm-spf.example"
ok="$A; $spf_ok; dkim=none; dmarc=pass (p=reject sp=reject) header.from=dm-spf.example"
# bad_from CASE STATUS: a From: without exactly one address with a valid
# domain; to hdr: accepted, dmarc=permerror (From: STATUS), no
# header.from; to enf (DMARC enforced, inbound_bad_from: reject): 550 5.7.1.
bad_from() {
    bad "$1" "$1@hdr.example" 250 "$A; $spf_ok; dkim=none; dmarc=permerror (From: $2)"
    bad "$1" "$1@enf.example" \
        "550 5.7.1 message refused: it must have exactly one From: address with a valid domain (From: $2)" "" reject
}

# The reference: a normal message passes DMARC by SPF, both tenants accept it.
bad normal n1@hdr.example 250 "$ok"
bad normal n1@enf.example 250 "$ok"

# -- From: without exactly one address with a valid domain --
bad_from two-from "several headers"          # two From: fields: whose domain? (RFC 7489 6.6.1)
bad_from no-from missing                      # Postfix adds none: 127.0.0.6 is no local_header_rewrite_clients
bad_from two-addresses multiple               # a mailbox-list of two
bad_from group-empty none                     # "undisclosed-recipients:;" holds no mailbox
bad_from comment-only none                    # only a comment
bad_from no-domain no-domain                  # <user>: Postfix does not qualify it (not a local client)
bad_from domain-literal bad-domain            # user@[127.0.0.6]: DMARC needs a domain name
bad_from idn-u-label bad-domain               # user@bücher.example: a U-label, DMARC needs the A-label
bad_from quote-unbalanced unparsable          # a quoted string never closed
bad_from angle-unbalanced unparsable          # '<' never closed
bad_from angle-extra unparsable               # "<<user@dm-spf.example>>"
bad_from label-too-long bad-domain            # a 64-byte label (63 at most)
bad_from utf8-invalid-paren unparsable        # invalid UTF-8 "\xc3(": the '(' opens a comment never closed
# a 60 KB comment: Postfix's cleanup cuts this address header (at about
# 60,000 bytes, seen in the lab; nothing logged) before the milter and the
# delivery see it, so the comment is never closed: unparsable, as delivered
bad_from from-60k-comment unparsable

# -- From: fields that are odd but name exactly one domain: dmarc=pass --
bad comments comments@hdr.example 250 "$ok"                   # comments everywhere, even inside the address
bad group-one group-one@hdr.example 250 "$ok"                 # a group of one mailbox
bad from-folded-upper from-folded-upper@hdr.example 250 "$ok" # folded, upper case, trailing dot: dm-spf.example
bad utf8-valid-name utf8-valid-name@hdr.example 250 "$ok"     # UTF-8 display name (RFC 6532)
bad utf8-invalid-name utf8-invalid-name@hdr.example 250 "$ok" # invalid UTF-8 in the display name: 8-bit atext
bad from-50k-comment from-50k-comment@hdr.example 250 "$ok"   # a 50 KB comment, kept whole by Postfix
# NUL: Postfix's smtpd cuts the line at the NUL (the sink gets "From:
# Sender <user@dm-spf.example>" and no more), so what the milter checks is
# what is delivered
bad nul-in-from nul-in-from@hdr.example 250 "$ok"
check "nul-in-from: what was delivered is what was checked (nothing after the NUL)" \
    test "$(lab_sink_header "$sink" From)" = "Sender <user@dm-spf.example>"
bad nul-in-from nul-in-from@enf.example 250 "$ok"
# an A-label: a valid domain without a DMARC record
bad idn-a-label idn-a-label@hdr.example 250 \
    "$A; $spf_ok; dkim=none; dmarc=none (no DMARC record) header.from=xn--bcher-kva.example"

# -- the rest of the message: nothing to do with DMARC, dmarc=pass --
bad nul-in-body nul-in-body@hdr.example 250 "$ok"       # NUL bytes in the body
bad bare-cr-body bare-cr-body@hdr.example 250 "$ok"     # bare CR in the body
bad header-64k header-64k@hdr.example 250 "$ok"         # a 64 KB Subject: (under header_size_limit 102400)
# a line without a colon ends the header section for Postfix: the lines
# after it are body, From: (before it) is still the only one
bad no-colon-line no-colon-line@hdr.example 250 "$ok"

# -- DKIM-Signature headers --
# 990 copies of a valid signature: the first 5 (dkim_verify_max) are
# verified and pass, the last of them says how many were ignored
b=$(cat "$bad/dkim.b")
[[ $b == */* ]] && b="\"$b\""
sig="header.d=dm-spf.example header.s=s1 header.a=rsa-sha256 header.b=$b"
bad dkim-990 dkim-990@hdr.example 250 \
    "$A; $spf_ok; dkim=pass $sig; dkim=pass $sig; dkim=pass $sig; dkim=pass $sig; dkim=pass (985 more signatures not verified) $sig; dmarc=pass (p=reject sp=reject) header.from=dm-spf.example"
# past 1,000 headers or 1 MiB of headers (inbound.c's cap) nothing is
# verified: the first 5 signatures are permerror, DMARC passes by SPF
over="(more than 1000 headers or 1048576 bytes of headers: not verified"
bad dkim-1000 dkim-1000@hdr.example 250 \
    "$A; $spf_ok; dkim=permerror $over) $sig; dkim=permerror $over) $sig; dkim=permerror $over) $sig; dkim=permerror $over) $sig; dkim=permerror $over; 995 more signatures not verified) $sig; dmarc=pass (p=reject sp=reject) header.from=dm-spf.example"
bad dkim-1mb-headers dkim-1mb-headers@hdr.example 250 \
    "$A; $spf_ok; dkim=permerror $over) $sig; dmarc=pass (p=reject sp=reject) header.from=dm-spf.example"
# garbage tags: permerror each, with libopendkim's reason; d=, s=, b= as
# they are, bytes outside their syntax made '?' (quoted when no token);
# DMARC still passes by SPF
bad dkim-garbage dkim-garbage@hdr.example 250 \
    "$A; $spf_ok; dkim=permerror (bad signature header: domain tag empty) header.a=rsa-sha256; dkim=permerror (bad signature header: unsupported version) header.d=\"evil?domain??\" header.s=\"x?y\" header.a=nothing header.b=\"??\"; dkim=permerror (bad signature header: domain tag missing); dmarc=pass (p=reject sp=reject) header.from=dm-spf.example"

# -- Authentication-Results headers --
# removed: every one whose authserv-id (after CFWS, quoted or not) is
# ours; kept: garbage without an authserv-id, an unclosed comment, an
# empty one, and mx.lab.test.evil
bad authres-garbage authres-garbage@hdr.example 250 "$ok"
if [ "$learn" != 1 ] && [ -n "$sink" ]; then
    others=$(lab_sink_header "$sink" Authentication-Results | grep -v '^mx\.lab\.test;')
    check "authres-garbage: the 4 foreign or unparsable headers are kept, the 4 of ours removed" \
        test "$(grep -c '' <<<"$others")" = 4 -a \
        "$(grep -cxF -e $'\x01\x02;;;(((' -e '(unclosed comment mx.lab.test; dmarc=pass' -e '' \
            -e 'mx.lab.test.evil; dmarc=pass' <<<"$others")" = 4
fi
# 40 headers of ours: more than the 32 the milter can delete, so it refuses
# the message rather than pass on a forged "dmarc=pass" (inbound.c; even
# in header mode)
bad authres-40-forged authres-40-forged@hdr.example \
    "550 5.7.1 message refused: more than 32 Authentication-Results headers claim to be ours (mx.lab.test)" "" reject

# -- the null sender: SPF of the HELO name, which aligns with From: --
mailfrom='<>' helo=dm-spf.example bad normal null-sender@hdr.example 250 \
    "$A; spf=pass (domain of dm-spf.example designates $client as permitted sender) smtp.helo=dm-spf.example; dkim=none; dmarc=pass (p=reject sp=reject) header.from=dm-spf.example"

# --- afterwards ------------------------------------------------------------------------------
check "after $((${#audit_cases[@]})) crafted messages the daemon still runs, same pid" kill -0 "$mpid"
bad normal n2@hdr.example 250 "$ok"
check "no internal error logged (every bad input is the message's fault)" \
    test "$(log_count 'event=milter_error')" = 0
nbad=0
for c in "${audit_cases[@]}"; do
    IFS='|' read -r name rcpt want <<<"$c"
    got=$("$ctl" -c "$conf" audit --json --recipient "$rcpt" 2>/dev/null | "$py" -c '
import json, sys
print(" ".join(r.get("action") or "" for r in json.load(sys.stdin) if r.get("component") == "milter"))')
    if [ "$learn" = 1 ]; then
        printf 'LEARN audit %s: [%s]\n' "$rcpt" "$got"
    elif [ "$got" != "$want" ]; then
        say_fail "$name -> $rcpt: one audit record, action $want" "got: $got"
        nbad=$((nbad + 1))
    fi
done
((nbad == 0)) && lab_ok "every message has one audit record with its action (${#audit_cases[@]} messages)"
# Postfix lets go of the milter first (its smtpd processes, which keep
# their milter connection while idle, exit with the reload): no session
# thread is left at the stop, so that under valgrind the exit is clean
# (libspf2 keeps a resolver state per session thread, closed when the
# thread ends).
lab_postconf 'smtpd_milters =' 'non_smtpd_milters =' || lab_fail "postconf failed"
lab_postfix_reload || lab_fail "postfix reload failed"
kill -TERM "$mpid" 2>/dev/null
lab_wait_for 60 bash -c "! kill -0 $mpid 2>/dev/null" || lab_fail "postern-milter ignored SIGTERM"
wait "$mpid" 2>/dev/null
check "SIGTERM: the daemon stopped cleanly" log_has_n 'event=stop .*status=0' 1
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$mlog"; then
    grep -E 'Sanitizer|runtime error' "$mlog" | head -5
    say_fail "sanitizer reports in $mlog"
fi
((failures == 0)) || lab_fail "$failures check(s) failed"
lab_ok "postern-milter inbound bad input: all done"
