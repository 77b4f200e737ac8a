#!/usr/bin/env bash
# t_inbound.sh: postern-milter's checks of inbound mail (SPF with libspf2,
# DKIM verification with libopendkim, DMARC with libopendmarc) in front of
# the lab's real Postfix, the records served by the lab's dnsmasq:
#  - SPF: pass, fail (-all), softfail (~all), neutral (?all), none (no
#    record), permerror (a chain of 11 include:), temperror (a zone whose
#    name server never answers, milter.dns_timeout 1s: each temperror
#    answer within 5 s);
#  - DKIM (signed here with python3-dkim): pass, fail (body changed after
#    signing), permerror (the selector is not published), temperror (the
#    key under the silent zone; dkim: enforce gives 451 4.7.0);
#  - DMARC: pass by SPF only, pass by DKIM only, fail with p=none,
#    p=quarantine (the message waits in Postfix's hold queue),
#    p=reject (550 5.7.1), a subdomain under a record with sp=reject,
#    p=reject with pct=0 (outside the sample: quarantine), SPF alignment
#    of a subdomain relaxed (pass) and strict (aspf=s: fail), temperror
#    (451 4.7.0 enforced, dmarc=temperror in header mode);
#  - modes of the receiving tenant: the same failing message to a tenant in
#    header mode gets only the header; spf: enforce refuses a hard fail;
#    an SPF temperror is 451 4.7.0 in enforce mode (accepted with
#    milter.inbound_temperror: accept) and spf=temperror in header mode;
#    several recipients: the strictest mode of their tenants applies (a
#    recipient of no tenant: header mode);
#  - a forged "Authentication-Results: mx.lab.test; dmarc=pass" is removed
#    (also for a tenant whose checks are all off), another authserv-id's
#    header is kept, ours is the only one with our authserv-id;
#  - every message has its audit record (posternctl audit --json) with
#    the verdicts in its reason.
# Every Authentication-Results header is compared whole (unfolded, and
# folded to 78 columns), every refusal by its whole reply line.  The client is 127.0.0.6 (no tenant's client
# network, no SASL), so every message is inbound.  Condition waits only.
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
conf=$m/postern.yaml
mlog=$m/milter.log
msock=$LAB_PF_QUEUE/private/postern-milter
client=127.0.0.6        # the "Internet" client: no tenant's, no SASL
mkdir -p "$rules" "$keys"
chmod 0755 "$m" "$rules" "$keys"

failures=0
check() { # check DESCRIPTION CMD...: PASS or FAIL, and go on
    local what=$1; shift
    if "$@"; then lab_ok "$what"; else printf 'FAIL: %s\n' "$what"; failures=$((failures + 1)); fi
}
log_count() { grep -cE -- "$1" "$mlog" 2>/dev/null || true; }
log_has_n() { (($(log_count "$1") >= $2)); }

# --- tenants -------------------------------------------------------------------
# hdr: every check in header mode; enf: SPF and DMARC enforced (DKIM
# header), as the corporate example; dke: DKIM enforced; off: no checks.
cat >"$rules/hdr.yaml" <<'EOF'
# t_inbound: results in the header only
tenant: hdr
domains: [hdr.example]
inbound: {spf: header, dkim: header, dmarc: header}
EOF
cat >"$rules/enf.yaml" <<'EOF'
# t_inbound: SPF and DMARC enforced
tenant: enf
domains: [enf.example]
inbound: {spf: enforce, dkim: header, dmarc: enforce}
EOF
cat >"$rules/dke.yaml" <<'EOF'
# t_inbound: DKIM enforced
tenant: dke
domains: [dke.example]
inbound: {spf: header, dkim: enforce, dmarc: header}
EOF
cat >"$rules/off.yaml" <<'EOF'
# t_inbound: no inbound checks
tenant: off
domains: [off.example]
inbound: {spf: off, dkim: off, dmarc: off}
EOF
"$ctl" -r "$rules" check >/dev/null || lab_fail "posternctl check refuses the test's rules"

# --- DNS -----------------------------------------------------------------------
# The public suffix list: Debian's, plus "example" as a suffix so that
# dm-sp.example is the organizational domain of news.dm-sp.example (the
# real list does not know the reserved TLD .example).
psl=$m/public_suffix_list.dat
{ cat /usr/share/publicsuffix/public_suffix_list.dat; printf '\n// t_inbound\nexample\n'; } >"$psl"
chmod 0644 "$psl"

txt() { # txt NAME TEXT: a dnsmasq TXT record, split in strings of <= 250 bytes
    local line="txt-record=$1" rec=$2 i
    for ((i = 0; i < ${#rec}; i += 250)); do
        line+=",\"${rec:i:250}\""
    done
    printf '%s\n' "$line"
}
genkey() { # genkey NAME: an RSA-2048 key for python3-dkim (root's: the test signs, not the daemon)
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/$1.pem" 2>/dev/null ||
        lab_fail "openssl genpkey failed"
}
dkim_txt() { # dkim_txt SELECTOR DOMAIN KEYNAME: the key record
    txt "$1._domainkey.$2" "v=DKIM1; k=rsa; p=$(openssl pkey -in "$keys/$3.pem" -pubout -outform DER | base64 -w0)"
}
genkey dk
genkey dmd
dns=(
    # SPF, sender domains; the client is $client
    "$(txt spf-pass.example "v=spf1 ip4:$client -all")"
    "$(txt spf-fail.example 'v=spf1 ip4:192.0.2.1 -all')"
    "$(txt spf-soft.example 'v=spf1 ~all')"
    "$(txt spf-neutral.example 'v=spf1 ?all')"
    # (spf-none.example: no record)
    # 11 includes, one more than RFC 7208 4.6.4 allows
    "$(txt spf-perm.example 'v=spf1 include:i1.spf-perm.example -all')"
    # a name server that never answers: see the black hole below
    "server=/dead.test/127.0.0.9"
    # DKIM keys
    "$(dkim_txt s1 dk.example dk)"
    "$(dkim_txt s1 dm-dkim.example dmd)"
    # DMARC
    "$(txt dm-spf.example "v=spf1 ip4:$client -all")"
    "$(txt _dmarc.dm-spf.example 'v=DMARC1; p=reject')"
    "$(txt _dmarc.dm-dkim.example 'v=DMARC1; p=reject')"
    "$(txt dm-none.example 'v=spf1 ip4:192.0.2.1 ~all')"
    "$(txt _dmarc.dm-none.example 'v=DMARC1; p=none')"
    "$(txt dm-quar.example 'v=spf1 ip4:192.0.2.1 ~all')"
    "$(txt _dmarc.dm-quar.example 'v=DMARC1; p=quarantine')"
    "$(txt dm-rej.example 'v=spf1 ip4:192.0.2.1 ~all')"
    "$(txt _dmarc.dm-rej.example 'v=DMARC1; p=reject')"
    "$(txt _dmarc.dm-sp.example 'v=DMARC1; p=none; sp=reject')"
    "$(txt dm-pct.example 'v=spf1 ip4:192.0.2.1 ~all')"
    "$(txt _dmarc.dm-pct.example 'v=DMARC1; p=reject; pct=0')"
    # SPF of a subdomain of the From: domain: aligned when relaxed, not when strict
    "$(txt mail.dm-relax.example "v=spf1 ip4:$client -all")"
    "$(txt _dmarc.dm-relax.example 'v=DMARC1; p=reject')"
    "$(txt mail.dm-strict.example "v=spf1 ip4:$client -all")"
    "$(txt _dmarc.dm-strict.example 'v=DMARC1; p=reject; aspf=s')"
)
for i in 1 2 3 4 5 6 7 8 9 10; do
    dns+=("$(txt "i$i.spf-perm.example" "v=spf1 include:i$((i + 1)).spf-perm.example -all")")
done
dns+=("$(txt i11.spf-perm.example "v=spf1 ip4:$client -all")")
lab_dns_add "${dns[@]}"
lab_dns_restart || lab_fail "dnsmasq did not restart with the test's records"
lab_dig s1._domainkey.dk.example TXT >/dev/null || lab_fail "the lab's DNS does not serve the DKIM key"
lab_dig _dmarc.dm-sp.example TXT >/dev/null || lab_fail "the lab's DNS does not serve the DMARC records"

# The black hole: a UDP socket on 127.0.0.9:53 that reads queries and never
# answers; dnsmasq forwards everything under dead.test there.
bh_ready=$m/blackhole.ready
ip netns exec "$LAB_NS" "$py" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.9", 53))
open(sys.argv[1], "w").close()
while True:
    s.recv(4096)
' "$bh_ready" </dev/null >>"$m/blackhole.log" 2>&1 &
bh_pid=$!
lab_wait_for 60 test -e "$bh_ready" || lab_fail "the DNS black hole did not start"

# --- the daemon ------------------------------------------------------------------
write_conf() { # write_conf FILE [TEMPERROR]
    cat >"$1" <<YAML
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
  public_suffix_list: $psl
  inbound_temperror: ${2:-tempfail}
  inbound_bad_from: reject
YAML
}
write_conf "$conf"

start_milter() { lab_milter_start "$milter" "$1" "$mlog"; } # start_milter CONF
use_milter() { lab_use_milter "$1"; }
stop_milter() { lab_milter_stop; }
start_milter "$conf"
use_milter "unix:$msock"

# --- messages ----------------------------------------------------------------------
n_msg=0
mkmsg() { # mkmsg FILE FROM_ADDRESS [HEADER...]: a small message with CRLF line ends
    local f=$1 from=$2 h
    shift 2
    n_msg=$((n_msg + 1))
    {
        for h in "$@"; do printf '%s\r\n' "$h"; done
        printf '%s\r\n' "From: Sender <$from>" "To: Reader <reader@hdr.example>" "Subject: inbound test $n_msg" \
            "Date: Sat, 28 Nov 2026 12:00:00 +0000" "Message-ID: <inbound-$n_msg.$$@lab.test>" \
            "MIME-Version: 1.0" "Content-Type: text/plain; charset=us-ascii" "" \
            "the original body of message $n_msg" "second line"
    } >"$f"
}
sign() { # sign FILE KEYNAME DOMAIN SELECTOR [tamper]: prepend a DKIM-Signature; prints b='s first 8 characters
    "$py" - "$1" "$keys/$2.pem" "$3" "$4" "${5:-}" <<'PY'
import re, sys
import dkim
f, key, d, s, tamper = sys.argv[1:6]
msg = open(f, "rb").read()
sig = dkim.sign(msg, s.encode(), d.encode(), open(key, "rb").read(),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
out = sig + msg
if tamper:
    out = out.replace(b"the original body", b"a changed body")
open(f, "wb").write(out)
b = re.sub(rb"\s+", b"", re.search(rb"\bb=([^;]*)", re.sub(rb"\bbh=", b"", sig)).group(1))
print(b[:8].decode())
PY
}

reply=
send_in() { # send_in MAILFROM RCPT FILE: send as the inbound client; $reply = the answer to the message
    local rc=0
    lab_send --local-interface "$client" --from "$1" --to "$2" --data "@$3" || rc=$?
    # the answer after the end of data (" -> ." or the suppressed data), or the first error
    reply=$(lab_reply)
    return "$rc"
}
ours() { # ours FILE: our Authentication-Results headers, unfolded, one per line
    lab_sink_header "$1" Authentication-Results | grep -E '^mx\.lab\.test;' || true
}

# LEARN=1: print what the daemon does instead of checking (to write the cases)
learn=${LEARN:-0}
say_fail() { # say_fail DESCRIPTION [DETAIL...]
    printf 'FAIL: %s\n' "$1"
    shift
    [ $# -gt 0 ] && printf '    %s\n' "$@"
    failures=$((failures + 1))
}
ar_lines_ok() { # ar_lines_ok FILE: every line of our raw Authentication-Results header fits in 78 columns
    awk 'BEGIN { bad = 0 } /^$/ { exit }
         /^[^ \t]/ { in_ar = tolower($0) ~ /^authentication-results: mx\.lab\.test;/ }
         in_ar { sub(/\r$/, ""); if (length($0) > 78) bad = 1 }
         END { exit bad }' "$1"
}
tenant_of() { # tenant_of RCPT: the test's tenant of the recipient's domain ("None": no tenant's)
    local d=${1#*@}
    case $d in
    hdr.example | enf.example | dke.example | off.example) printf '%s\n' "${d%.example}" ;;
    *) printf 'None\n' ;;
    esac
}

# inbound WHAT MAILFROM RCPT FILE WANT_REPLY WANT_AR [ACTION RULE HOLD_TEXT TENANT]:
# send as the inbound client (RCPT: one address, or several separated by
# commas: the first is the one looked for at the sink and in the audit
# trail; TENANT: the audit record's, default RCPT's) and check the answer
# to the message: "250", or the whole reply line ("550 5.7.1 text"); for
# an accepted message the
# one Authentication-Results header of ours at the sink, whole (unfolded)
# and folded to 78 columns.  WANT_AR is also what the audit record's reason
# must hold (checked at the end, audit_cases): the value after "mx.lab.test;
# ", after the reply text or the hold reason HOLD_TEXT and "; ".
audit_cases=()
inbound() {
    local what=$1 from=$2 rcpt=$3 file=$4 want_reply=$5 want_ar=$6 action=${7:-accept} rule=${8:-inbound}
    local hold_text=${9:-} f got reason rcpts=$3
    rcpt=${rcpts%%,*}
    local tenant=${10:-$(tenant_of "$rcpt")} t0=${EPOCHREALTIME/./} ms
    send_in "$from" "$rcpts" "$file"
    ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
    if [ -n "$max_ms" ] && [ "$learn" != 1 ]; then
        if ((ms <= max_ms)); then
            lab_ok "$what: answered in $ms ms (at most $max_ms: milter.dns_timeout 1s, one try per query)"
        else
            say_fail "$what: answered in $ms ms, more than $max_ms (milter.dns_timeout 1s, one try per query)"
        fi
    fi
    if [ "$learn" = 1 ]; then
        printf 'LEARN %s: reply=[%s]\n' "$what" "$reply"
    elif [ "$want_reply" = 250 ]; then
        check "$what: accepted (250)" test "${reply%% *}" = 250
    elif [ "$reply" = "$want_reply" ]; then
        lab_ok "$what: $reply"
    else
        say_fail "$what: the answer" "want: $want_reply" "got:  $reply"
    fi
    reason=${want_ar#"$A; "}
    [ "$want_reply" != 250 ] && reason="${want_reply#* * }; $reason"
    [ -n "$hold_text" ] && reason="$hold_text; $reason"
    [ -z "$want_ar" ] && reason="inbound checks off"
    audit_cases+=("$what|$rcpt|$action|$rule|$tenant|$reason")
    [ "${reply%% *}" = 250 ] && [ "$action" != quarantine ] || return 0
    if ! lab_wait_for 60 lab_sink_has_rcpt "$rcpt"; then
        say_fail "$what: the message reached the sink"
        return 0
    fi
    f=$(lab_sink_file_of "$rcpt")
    got=$(ours "$f")
    if [ "$learn" = 1 ]; then
        printf 'LEARN %s: AR=[%s]\n' "$what" "$got"
        return 0
    fi
    if [ "$got" = "$want_ar" ] && ar_lines_ok "$f"; then
        lab_ok "$what: Authentication-Results: ${got:-(none)}"
    else
        say_fail "$what: Authentication-Results (unfolded; then the raw header)" "want: $want_ar" "got:  $got" \
            "$(grep -A8 -i '^Authentication-Results: mx' "$f" | head -10)"
    fi
}

msg=$m/msg
A='mx.lab.test'
# max_ms=N inbound ...: the answer must come within N ms.  A DNS query that
# is never answered costs one try of milter.dns_timeout (1s here): the
# temperror cases make at most 3 such queries in a row (a key, _dmarc
# twice), so 5 s is generous
max_ms=
# libspf2's explanations (the comment after spf=)
spf_pass() { printf '(domain of %s designates %s as permitted sender)' "$1" "$client"; }
spf_fail() { printf '(domain of %s does not designate %s as permitted sender)' "$1" "$client"; }
spf_soft() { printf '(transitioning domain of %s does not designate %s as permitted sender)' "$1" "$client"; }
spf_none() { printf '(domain of %s does not provide an SPF record)' "$1"; }
nodmarc='dmarc=none (no DMARC record)'
bq() { if [[ $1 == */* ]]; then printf '"%s"' "$1"; else printf '%s' "$1"; fi; }   # header.b: a token, else quoted

# --- SPF (tenant hdr: header mode) ---------------------------------------------------
mkmsg "$msg.spf-pass" user@spf-pass.example
inbound "SPF pass" user@spf-pass.example spf-pass@hdr.example "$msg.spf-pass" 250 \
    "$A; spf=pass $(spf_pass spf-pass.example) smtp.mailfrom=user@spf-pass.example; dkim=none; $nodmarc header.from=spf-pass.example"
mkmsg "$msg.spf-fail" user@spf-fail.example
ar_spf_fail="$A; spf=fail $(spf_fail spf-fail.example) smtp.mailfrom=user@spf-fail.example; dkim=none; $nodmarc header.from=spf-fail.example"
inbound "SPF fail (-all), header mode" user@spf-fail.example spf-fail@hdr.example "$msg.spf-fail" 250 "$ar_spf_fail"
mkmsg "$msg.spf-soft" user@spf-soft.example
inbound "SPF softfail (~all)" user@spf-soft.example spf-soft@hdr.example "$msg.spf-soft" 250 \
    "$A; spf=softfail $(spf_soft spf-soft.example) smtp.mailfrom=user@spf-soft.example; dkim=none; $nodmarc header.from=spf-soft.example"
mkmsg "$msg.spf-neutral" user@spf-neutral.example
inbound "SPF neutral (?all)" user@spf-neutral.example spf-neutral@hdr.example "$msg.spf-neutral" 250 \
    "$A; spf=neutral ($client is neither permitted nor denied by domain of spf-neutral.example) smtp.mailfrom=user@spf-neutral.example; dkim=none; $nodmarc header.from=spf-neutral.example"
mkmsg "$msg.spf-none" user@spf-none.example
inbound "SPF none (no record)" user@spf-none.example spf-none@hdr.example "$msg.spf-none" 250 \
    "$A; spf=none $(spf_none spf-none.example) smtp.mailfrom=user@spf-none.example; dkim=none; $nodmarc header.from=spf-none.example"
mkmsg "$msg.spf-perm" user@spf-perm.example
inbound "SPF permerror (11 includes)" user@spf-perm.example spf-perm@hdr.example "$msg.spf-perm" 250 \
    "$A; spf=permerror (too many DNS lookups \\(more than 10 DNS-querying terms\\)) smtp.mailfrom=user@spf-perm.example; dkim=none; $nodmarc header.from=spf-perm.example"
mkmsg "$msg.spf-temp" user@spf-none.example
ar_spf_temp="$A; spf=temperror (Temporary DNS failure for 'x.dead.test'.) smtp.mailfrom=user@x.dead.test; dkim=none; $nodmarc header.from=spf-none.example"
max_ms=5000 inbound "SPF temperror (no answer from dead.test), header mode" user@x.dead.test spf-temp@hdr.example \
    "$msg.spf-temp" 250 "$ar_spf_temp"

# --- SPF enforced (tenant enf) ----------------------------------------------------------
inbound "SPF fail (-all), spf: enforce" user@spf-fail.example spf-fail@enf.example "$msg.spf-fail" \
    "550 5.7.1 SPF of spf-fail.example does not allow $client to send its mail" "$ar_spf_fail" reject inbound.spf
max_ms=5000 inbound "SPF temperror, spf: enforce (inbound_temperror: tempfail)" user@x.dead.test spf-temp@enf.example \
    "$msg.spf-temp" "451 4.7.0 SPF check could not be completed (DNS temporary failure), try again later" \
    "$ar_spf_temp" tempfail inbound.spf

# --- DKIM (the MAIL FROM domain has no SPF record) -----------------------------------------
spf_n="spf=none $(spf_none spf-none.example) smtp.mailfrom=user@spf-none.example"
mkmsg "$msg.dk-pass" user@dk.example
b=$(sign "$msg.dk-pass" dk dk.example s1)
ar_dk_pass="$A; $spf_n; dkim=pass header.d=dk.example header.s=s1 header.a=rsa-sha256 header.b=$(bq "$b"); $nodmarc header.from=dk.example"
inbound "DKIM pass" user@spf-none.example dk-pass@hdr.example "$msg.dk-pass" 250 "$ar_dk_pass"
inbound "DKIM pass, dkim: enforce" user@spf-none.example dk-pass@dke.example "$msg.dk-pass" 250 "$ar_dk_pass"
mkmsg "$msg.dk-fail" user@dk.example
b=$(sign "$msg.dk-fail" dk dk.example s1 tamper)
ar_dk_fail="$A; $spf_n; dkim=fail (body hash mismatch) header.d=dk.example header.s=s1 header.a=rsa-sha256 header.b=$(bq "$b"); $nodmarc header.from=dk.example"
inbound "DKIM fail (body changed after signing)" user@spf-none.example dk-fail@hdr.example "$msg.dk-fail" 250 "$ar_dk_fail"
inbound "DKIM fail, dkim: enforce" user@spf-none.example dk-fail@dke.example "$msg.dk-fail" \
    "550 5.7.1 no DKIM signature of the message verifies (d=dk.example: body hash mismatch)" "$ar_dk_fail" \
    reject inbound.dkim
mkmsg "$msg.dk-nokey" user@dk.example
b=$(sign "$msg.dk-nokey" dk dk.example nokey)
ar="$A; $spf_n; dkim=permerror (no key) header.d=dk.example header.s=nokey header.a=rsa-sha256 header.b=$(bq "$b"); $nodmarc header.from=dk.example"
inbound "DKIM key not published (selector nokey)" user@spf-none.example dk-nokey@hdr.example "$msg.dk-nokey" 250 "$ar"
mkmsg "$msg.dk-temp" user@z.dead.test
b=$(sign "$msg.dk-temp" dk z.dead.test s1)
ar="$A; $spf_n; dkim=temperror (key query failed) header.d=z.dead.test header.s=s1 header.a=rsa-sha256 header.b=$(bq "$b"); dmarc=temperror (temporary DNS failure looking up _dmarc.z.dead.test) header.from=z.dead.test"
max_ms=5000 inbound "DKIM temperror (key under dead.test), dkim: enforce" user@spf-none.example dk-temp@dke.example "$msg.dk-temp" \
    "451 4.7.0 DKIM check could not be completed (DNS temporary failure), try again later" "$ar" tempfail inbound.dkim

# --- DMARC ----------------------------------------------------------------------------------
mkmsg "$msg.dm-spf" user@dm-spf.example
inbound "DMARC pass by SPF only (tenant enf)" bounce@dm-spf.example dm-spf@enf.example "$msg.dm-spf" 250 \
    "$A; spf=pass $(spf_pass dm-spf.example) smtp.mailfrom=bounce@dm-spf.example; dkim=none; dmarc=pass (p=reject sp=reject) header.from=dm-spf.example"
mkmsg "$msg.dm-dkim" user@dm-dkim.example
b=$(sign "$msg.dm-dkim" dmd dm-dkim.example s1)
ar="$A; spf=fail $(spf_fail spf-fail.example) smtp.mailfrom=bounce@spf-fail.example; dkim=pass header.d=dm-dkim.example header.s=s1 header.a=rsa-sha256 header.b=$(bq "$b"); dmarc=pass (p=reject sp=reject) header.from=dm-dkim.example"
inbound "DMARC pass by DKIM only (SPF fails, tenant hdr)" bounce@spf-fail.example dm-dkim@hdr.example "$msg.dm-dkim" 250 "$ar"
mkmsg "$msg.dm-none" user@dm-none.example
inbound "DMARC fail, p=none, dmarc: enforce: accepted with the header" bounce@dm-none.example dm-none@enf.example \
    "$msg.dm-none" 250 \
    "$A; spf=softfail $(spf_soft dm-none.example) smtp.mailfrom=bounce@dm-none.example; dkim=none; dmarc=fail (p=none sp=none) header.from=dm-none.example"
mkmsg "$msg.dm-quar" user@dm-quar.example
ar_quar="$A; spf=softfail $(spf_soft dm-quar.example) smtp.mailfrom=bounce@dm-quar.example; dkim=none; dmarc=fail (p=quarantine sp=quarantine) header.from=dm-quar.example"
inbound "DMARC fail, p=quarantine, dmarc: enforce" bounce@dm-quar.example dm-quar@enf.example "$msg.dm-quar" 250 \
    "$ar_quar" quarantine inbound.dmarc "DMARC policy of dm-quar.example: quarantine (neither SPF nor DKIM aligned)"
mkmsg "$msg.dm-rej" user@dm-rej.example
ar_rej="$A; spf=softfail $(spf_soft dm-rej.example) smtp.mailfrom=bounce@dm-rej.example; dkim=none; dmarc=fail (p=reject sp=reject) header.from=dm-rej.example"
inbound "DMARC fail, p=reject, dmarc: enforce" bounce@dm-rej.example dm-rej@enf.example "$msg.dm-rej" \
    "550 5.7.1 DMARC policy of dm-rej.example: reject (neither SPF nor DKIM aligned with the From: domain)" "$ar_rej" \
    reject inbound.dmarc
inbound "DMARC fail, p=reject, header mode: only the header" bounce@dm-rej.example dm-rej@hdr.example "$msg.dm-rej" 250 \
    "$ar_rej"
mkmsg "$msg.dm-sp" user@news.dm-sp.example
ar="$A; $(sed 's/user@/bounce@/' <<<"$spf_n"); dkim=none; dmarc=fail (p=none sp=reject) header.from=news.dm-sp.example"
inbound "DMARC fail of a subdomain under p=none sp=reject, dmarc: enforce" bounce@spf-none.example dm-sp@enf.example \
    "$msg.dm-sp" "550 5.7.1 DMARC policy of news.dm-sp.example: reject (neither SPF nor DKIM aligned with the From: domain)" \
    "$ar" reject inbound.dmarc
inbound "DMARC fail of a subdomain under sp=reject, header mode" bounce@spf-none.example dm-sp@hdr.example "$msg.dm-sp" 250 \
    "$ar"
mkmsg "$msg.dm-temp" user@y.dead.test
ar="$A; spf=pass $(spf_pass spf-pass.example) smtp.mailfrom=bounce@spf-pass.example; dkim=none; dmarc=temperror (temporary DNS failure looking up _dmarc.y.dead.test) header.from=y.dead.test"
max_ms=5000 inbound "DMARC temperror (_dmarc under dead.test), dmarc: enforce" bounce@spf-pass.example dm-temp@enf.example \
    "$msg.dm-temp" "451 4.7.0 DMARC check could not be completed (DNS temporary failure), try again later" "$ar" \
    tempfail inbound.dmarc
max_ms=5000 inbound "DMARC temperror, header mode" bounce@spf-pass.example dm-temp@hdr.example "$msg.dm-temp" 250 "$ar"

mkmsg "$msg.dm-pct" user@dm-pct.example
ar_pct="$A; spf=softfail $(spf_soft dm-pct.example) smtp.mailfrom=bounce@dm-pct.example; dkim=none; dmarc=fail (p=reject sp=reject) header.from=dm-pct.example"
inbound "DMARC fail, p=reject pct=0, dmarc: enforce: outside the sample, quarantine (RFC 7489 6.6.4)" \
    bounce@dm-pct.example dm-pct@enf.example "$msg.dm-pct" 250 "$ar_pct" quarantine inbound.dmarc \
    "DMARC policy of dm-pct.example: quarantine (neither SPF nor DKIM aligned)"
mkmsg "$msg.dm-relax" user@dm-relax.example
inbound "DMARC relaxed SPF alignment: MAIL FROM in a subdomain of the From: domain passes" \
    bounce@mail.dm-relax.example dm-relax@enf.example "$msg.dm-relax" 250 \
    "$A; spf=pass $(spf_pass mail.dm-relax.example) smtp.mailfrom=bounce@mail.dm-relax.example; dkim=none; dmarc=pass (p=reject sp=reject) header.from=dm-relax.example"
mkmsg "$msg.dm-strict" user@dm-strict.example
inbound "DMARC strict SPF alignment (aspf=s): MAIL FROM in a subdomain does not align" \
    bounce@mail.dm-strict.example dm-strict@enf.example "$msg.dm-strict" \
    "550 5.7.1 DMARC policy of dm-strict.example: reject (neither SPF nor DKIM aligned with the From: domain)" \
    "$A; spf=pass $(spf_pass mail.dm-strict.example) smtp.mailfrom=bounce@mail.dm-strict.example; dkim=none; dmarc=fail (p=reject sp=reject) header.from=dm-strict.example" \
    reject inbound.dmarc

# --- several recipients: the strictest mode of their tenants ---------------------------
inbound "DMARC p=reject to a header-mode and an enforce-mode tenant: enforce wins, for both" bounce@dm-rej.example \
    dm-rej2@hdr.example,dm-rej2@enf.example "$msg.dm-rej" \
    "550 5.7.1 DMARC policy of dm-rej.example: reject (neither SPF nor DKIM aligned with the From: domain)" "$ar_rej" \
    reject inbound.dmarc "" enf
inbound "DMARC p=reject to a recipient of no tenant: header mode" bounce@dm-rej.example dm-rej@remote.example \
    "$msg.dm-rej" 250 "$ar_rej"
inbound "DMARC p=reject to a tenant with checks off and one in header mode: header mode" bounce@dm-rej.example \
    dm-rej3@hdr.example,dm-rej3@off.example "$msg.dm-rej" 250 "$ar_rej" accept inbound "" hdr
if [ "$learn" != 1 ]; then
    check "the copy for the tenant with checks off carries the same header (one message, one header)" \
        test "$(ours "$(lab_sink_file_of dm-rej3@off.example)")" = "$ar_rej"
fi

# p=quarantine: the message waits in Postfix's hold queue (with our header), not at the sink
held_id() { # held_id RCPT: the queue id of a message to RCPT in the hold queue
    lab_exec postqueue -c "$LAB_PF_CONF" -j 2>/dev/null | "$py" -c '
import json, sys
for line in sys.stdin:
    q = json.loads(line)
    if q.get("queue_name") == "hold" and any(r.get("address") == sys.argv[1] for r in q.get("recipients", [])):
        print(q["queue_id"])
        sys.exit(0)
sys.exit(1)' "$1"
}
held() { held_id "$1" >/dev/null; }
held_ok() { # held_ok WHAT RCPT WANT_AR: in the hold queue with our header, not at the sink, hold logged
    local qid got
    check "$1: the message waits in Postfix's hold queue" lab_wait_for 60 held "$2"
    check "$1: the message did not reach the sink" bash -c '! grep -rlqF "<$1>" "$2"' _ "$2" "$LAB_SINK_DIR"
    qid=$(held_id "$2")
    lab_exec postcat -c "$LAB_PF_CONF" -h -q "$qid" >"$m/held.hdr" 2>/dev/null
    got=$(lab_sink_header "$m/held.hdr" Authentication-Results)
    check "$1: the held message carries our header ($got)" test "$got" = "$3"
    # (Postfix logs no reason of a milter's hold: the audit record has it)
    check "$1: Postfix logged the milter's hold of that message" \
        grep -qE "$qid: milter-hold: END-OF-MESSAGE from .*\\[$client\\]: milter triggers HOLD action" "$LAB_MAILLOG"
}
if [ "$learn" != 1 ]; then
    held_ok "p=quarantine" dm-quar@enf.example "$ar_quar"
    held_ok "p=reject pct=0" dm-pct@enf.example "$ar_pct"
fi

# --- forged Authentication-Results ------------------------------------------------------
# Ours (any case) is removed, another authserv-id's header is kept; a
# tenant with every check off gets no header, but the forged one goes too.
mkmsg "$msg.forged" user@dm-rej.example "Authentication-Results: mx.lab.test; dmarc=pass header.from=dm-rej.example" \
    "Authentication-Results: other.example; dmarc=pass header.from=dm-rej.example" \
    "Authentication-Results: MX.LAB.TEST (upper case); spf=pass" \
    "Authentication-Results: \"mx.lab.test\" 1; dkim=pass"
inbound "forged A-R of ours and a foreign one" bounce@dm-rej.example forged@hdr.example "$msg.forged" 250 "$ar_rej"
if [ "$learn" != 1 ]; then
    f=$(lab_sink_file_of forged@hdr.example)
    all=$(lab_sink_header "$f" Authentication-Results)
    check "forged A-R: the other authserv-id's header is kept" \
        test "$(grep -c '^other\.example; dmarc=pass header\.from=dm-rej\.example$' <<<"$all")" = 1
    check "forged A-R: one header only with our authserv-id (any case, quoted or not), ours" \
        test "$(grep -ciE '^"?mx\.lab\.test' <<<"$all")" = 1 -a "$(grep -c 'dmarc=pass' <<<"$all")" = 1
fi
inbound "forged A-R to a tenant with every check off: removed, none added" bounce@dm-rej.example forged@off.example \
    "$msg.forged" 250 ""
if [ "$learn" != 1 ]; then
    f=$(lab_sink_file_of forged@off.example)
    all=$(lab_sink_header "$f" Authentication-Results)
    check "checks off: only the other authserv-id's header is left" test "$all" = 'other.example; dmarc=pass header.from=dm-rej.example'
fi

# --- inbound_temperror: accept ----------------------------------------------------------------
write_conf "$m/postern-accept.yaml" accept
stop_milter
start_milter "$m/postern-accept.yaml"
use_milter "unix:$msock"
max_ms=5000 inbound "SPF temperror, spf: enforce, inbound_temperror: accept" user@x.dead.test spf-temp2@enf.example \
    "$msg.spf-temp" 250 "$ar_spf_temp"
stop_milter

# --- the audit records ----------------------------------------------------------------------
audit_of() { # audit_of RCPT: "action|rule|tenant|reason" of the inbound record of RCPT
    "$ctl" -c "$conf" audit --json --recipient "$1" 2>/dev/null | "$py" -c '
import json, sys
for r in json.load(sys.stdin):
    if r.get("component") == "milter":
        print("%s|%s|%s|%s" % (r.get("action"), r.get("rule"), r.get("tenant"), r.get("reason")))'
}
for c in "${audit_cases[@]}"; do
    IFS='|' read -r what rcpt want <<<"$c"
    got=$(audit_of "$rcpt")
    if [ "$learn" = 1 ]; then
        printf 'LEARN audit %s: [%s]\n' "$rcpt" "$got"
    elif [ "$got" = "$want" ]; then
        lab_ok "$what: audit record $got"
    else
        say_fail "$what: audit record (action|rule|tenant|reason)" "want: $want" "got:  $got"
    fi
done

kill -TERM "$bh_pid" 2>/dev/null
wait "$bh_pid" 2>/dev/null
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$mlog"; then
    grep -E 'Sanitizer|runtime error' "$mlog" | head -5
    say_fail "sanitizer reports in $mlog"
fi
((failures == 0)) || lab_fail "$failures check(s) failed"
lab_ok "postern-milter inbound checks: all done"
