#!/usr/bin/env bash
# t_ctl_dkim.sh: posternctl dkim keygen, dns and dkim check, on copies of
# the lab's fixture rules (tests/fixtures/lab/rules.d), with the lab's
# dnsmasq as the only DNS (dkim check runs inside the lab's namespace).
#  - keygen: RSA and Ed25519 keys of tenant acme: mode 0640, owner root,
#    group of the directory or of postern.yaml's user, PKCS#8 PEM that
#    openssl accepts, p= of the printed TXT record equal to openssl's own
#    public key, strings of at most 255 bytes; the YAML it prints is added
#    to the rules (which then still check); the key path the rules name;
#    refusal to overwrite, --force; the errors (unknown tenant, foreign
#    domain, algorithm of the rule, bad --bits/--algo, missing directory).
#  - dns: the DKIM TXT records as keygen printed them, SPF from the
#    outbound addresses of the tenant and its accounts, DMARC, A/AAAA of
#    the HELO names; JSON; a tenant without outbound addresses; an
#    unreadable key.
#  - dkim check against records published in the lab's dnsmasq: OK for
#    both keys, MISMATCH (another key, another key type, one of two
#    records), MISSING, REVOKED, BAD, UNREADABLE, and the exit code
#    (inactive keys do not count).
#  - valgrind on the three commands, when it is installed (not on an ASan
#    build).
# Prints one PASS:/FAIL: line per check; uses POSTERN_BUILD like tests/run.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=tests/lab/lab.sh
source "$here/lab.sh"
build=${POSTERN_BUILD:-$top/build/werror}
ctl=$build/ctl/posternctl

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { # check NAME CMD...: CMD exits 0
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

[ -x "$ctl" ] || { fail "no $ctl (build first)"; exit 1; }
for tool in openssl python3 runuser; do
    command -v "$tool" >/dev/null || { fail "$tool is not installed"; exit 1; }
done
lab_up || { fail "the lab does not come up"; exit 1; }

# --- the work directory (in $LAB_DIR: lab_down removes it) ---------------------
w=$LAB_DIR/dkim
rules=$w/rules.d
keys=$w/keys              # root:daemon 0750: keys get the directory's group
nkeys=$w/keys-nobody      # root:root 0711: keys get the group of user nobody
mkdir -p "$rules" "$keys" "$nkeys"
cp "$top"/tests/fixtures/lab/rules.d/*.yaml "$rules/"
chgrp daemon "$keys" && chmod 0750 "$keys"
chmod 0711 "$nkeys"
cat >"$w/postern.yaml" <<EOF
rules: $rules
state_dir: $w/state
user: nobody
EOF
out=$w/out
err=$w/err
# ctl ARGS...: posternctl on the copy of the rules (no postern.yaml: user
# postern, the default); ctlc ARGS...: with postern.yaml (user nobody)
ctl() { "$ctl" -r "$rules" "$@" >"$out" 2>"$err"; }
ctlc() { "$ctl" -c "$w/postern.yaml" "$@" >"$out" 2>"$err"; }
has() { grep -Eq -- "$1" "$out"; }
has_line() { grep -qxF -- "$1" "$out"; }
err_has() { grep -Eq -- "$1" "$err"; }
# The group a key in $keys should get: postern's when that user exists.
if getent passwd postern >/dev/null; then
    keys_group=$(id -gn postern)
else
    keys_group=daemon
fi

cat >"$w/txt.py" <<'EOF'
# txt.py MODE [NAME] < a zone-file TXT line:
#   value     the character-strings concatenated
#   lengths   the length of each string, one a line
#   dnsmasq   a dnsmasq "txt-record=NAME,"s1","s2"" line
import re, sys
strings = re.findall(r'"((?:[^"\\]|\\.)*)"', sys.stdin.read())
if sys.argv[1] == "value":
    print("".join(strings))
elif sys.argv[1] == "lengths":
    print("\n".join(str(len(s)) for s in strings))
else:
    print("txt-record=%s,%s" % (sys.argv[2], ",".join('"%s"' % s for s in strings)))
EOF
# txt_line NAME: the TXT line of NAME (a fully qualified name) in $out
txt_line() { grep -m1 -F -- "$1. IN TXT " "$out"; }
txt_p() { python3 "$w/txt.py" value | sed -n 's/.*; p=//p'; }
pub_rsa() { openssl pkey -in "$1" -pubout -outform DER | base64 -w0; }
pub_ed25519() { openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | base64 -w0; }
mode_of() { stat -c '%a %U %G' "$1"; }
files_in() { find "$1" -mindepth 1 -printf '%f\n' | LC_ALL=C sort | tr '\n' ' '; }
# add_hint FILE: append the YAML keygen printed (after "the rules do not
# name this key yet") to FILE
add_hint() { sed -n '/^the rules do not name this key yet/,$p' "$out" | tail -n +2 >>"$1"; }

# --- keygen: RSA ------------------------------------------------------------------
r1=$keys/acme.r1.rsa.pem
ctl dkim keygen --tenant acme --domain acme.example --selector r1 --algo rsa --out "$r1"
check "keygen rsa exits 0" test $? -eq 0
check "keygen rsa: mode 0640, owner root, the directory's group" test "$(mode_of "$r1")" = "640 root $keys_group"
check "keygen rsa: openssl pkey accepts the key" openssl pkey -in "$r1" -noout
check "keygen rsa: PKCS#8 PEM" test "$(head -1 "$r1")" = "-----BEGIN PRIVATE KEY-----"
check "keygen rsa: 2048 bits by default" grep -q '2048 bit' <(openssl pkey -in "$r1" -noout -text)
check "keygen rsa: says what it wrote" has "^wrote $r1: rsa 2048 bits, PKCS#8 PEM, owner root, group $keys_group .*mode 0640\$"
r1_txt=$(txt_line r1._domainkey.acme.example)
check "keygen rsa: the TXT record" grep -q '^r1\._domainkey\.acme\.example\. IN TXT ( "v=DKIM1; k=rsa; p=.*" )$' <<<"$r1_txt"
check "keygen rsa: p= is the key's SubjectPublicKeyInfo" test "$(txt_p <<<"$r1_txt")" = "$(pub_rsa "$r1")"
check "keygen rsa: strings of at most 255 bytes, more than one" \
    test "$(python3 "$w/txt.py" lengths <<<"$r1_txt" | tr '\n' ' ')" = "255 $(($(python3 "$w/txt.py" value <<<"$r1_txt" | tr -d '\n' | wc -c) - 255)) "
check "keygen rsa: the YAML to add, with the dkim: key" has '^dkim:$'
check "... and the key" has_line "  - {domain: acme.example, selector: r1, key: $r1}"
add_hint "$rules/acme.yaml"
check "keygen rsa: nothing else in the directory" test "$(files_in "$keys")" = "acme.r1.rsa.pem "

# --- keygen: Ed25519, group of postern.yaml's user ---------------------------------
e1=$nkeys/acme.e1.ed25519.pem
ctlc dkim keygen --tenant acme --domain ACME.example --selector E1 --algo ed25519 --out "$e1"
check "keygen ed25519 exits 0" test $? -eq 0
check "keygen ed25519: mode 0640, owner root, the group of user nobody" \
    test "$(mode_of "$e1")" = "640 root $(id -gn nobody)"
check "keygen ed25519: openssl pkey accepts the key" openssl pkey -in "$e1" -noout
check "keygen ed25519: an Ed25519 key in PKCS#8 PEM" grep -q 'ED25519 Private-Key' <(openssl pkey -in "$e1" -noout -text)
check "keygen ed25519: user nobody can read it" runuser -u nobody -- openssl pkey -in "$e1" -noout
e1_txt=$(txt_line e1._domainkey.acme.example)
check "keygen ed25519: the TXT record, k=ed25519" \
    grep -q '^e1\._domainkey\.acme\.example\. IN TXT ( "v=DKIM1; k=ed25519; p=[^"]*" )$' <<<"$e1_txt"
check "keygen ed25519: p= is the raw 32-byte public key (RFC 8463)" test "$(txt_p <<<"$e1_txt")" = "$(pub_ed25519 "$e1")"
check "keygen ed25519: only the list item to add (the tenant has a dkim list now)" \
    test "$(sed -n '/^the rules do not name/,$p' "$out" | tail -n +2)" = "  - {domain: acme.example, selector: e1, key: $e1}"
add_hint "$rules/acme.yaml"
ctl check
check "the rules with both keys added check" has '^acme: 1 domain \(acme.example\), 1 account, 0 client networks, 2 dkim keys$'

# an inactive key, readable, never published
old=$keys/acme.old.rsa.pem
ctl dkim keygen --tenant acme --domain acme.example --selector old --algo rsa --bits 1024 --out "$old"
check "keygen --bits 1024 exits 0" test $? -eq 0
check "... with a warning" err_has '^posternctl: warning: an RSA key of 1024 bits is weak'
check "... a 1024-bit key" grep -q '1024 bit' <(openssl pkey -in "$old" -noout -text)
old_txt=$(txt_line old._domainkey.acme.example)
echo "  - {domain: acme.example, selector: old, key: $old, active: false}" >>"$rules/acme.yaml"

# --- keygen: overwrite, --force ------------------------------------------------------
sum=$(sha256sum <"$r1")
ctl dkim keygen --tenant acme --domain acme.example --selector r1 --algo rsa --out "$r1"
check "keygen over an existing key exits 1" test $? -eq 1
check "... says so" err_has "^posternctl: $r1 exists \(use --force to replace it"
check "... and leaves it alone" test "$(sha256sum <"$r1")" = "$sum"
chmod 0600 "$r1"
ctl dkim keygen --tenant acme --domain acme.example --selector r1 --algo rsa --out "$r1" --force
check "keygen --force exits 0" test $? -eq 0
check "... replaces the key" test "$(sha256sum <"$r1")" != "$sum"
check "... mode 0640 again" test "$(mode_of "$r1")" = "640 root $keys_group"
check "... and the rules name it already: no YAML" test "$(grep -c 'do not name' "$out")" -eq 0
r1_txt=$(txt_line r1._domainkey.acme.example)
check "... the new record" test "$(txt_p <<<"$r1_txt")" = "$(pub_rsa "$r1")"
check "no temporary file is left" test "$(files_in "$keys")" = "acme.old.rsa.pem acme.r1.rsa.pem "

# --- keygen: errors --------------------------------------------------------------------
ctl dkim keygen --tenant nobody --domain acme.example --selector x --algo rsa --out "$keys/x.pem"
check "keygen for an unknown tenant exits 1" test $? -eq 1
check "... naming the rules directory" err_has "^posternctl: no tenant named \"nobody\" in $rules\$"
ctl dkim keygen --tenant acme --domain corp.example --selector x --algo rsa --out "$keys/x.pem"
check "keygen for a domain of another tenant exits 1" test $? -eq 1
check "... naming the rule and the directory" \
    err_has "^posternctl: $rules/acme.yaml:4:[0-9]+: domain corp.example is not one of tenant acme's domains \(acme.example\) in $rules\$"
ctl dkim keygen --tenant acme --domain acme.example --selector x --algo rsa --bits 512
check "keygen --bits 512 is a usage error (2)" test $? -eq 2
check "... saying the range" err_has '^posternctl: --bits: expected 1024 to 4096, found "512"$'
ctl dkim keygen --tenant acme --domain acme.example --selector x --algo dsa
check "keygen --algo dsa is a usage error (2)" test $? -eq 2
ctl dkim keygen --tenant acme --domain acme.example --selector x --algo ed25519 --bits 2048
check "keygen --bits with ed25519 is a usage error (2)" test $? -eq 2
ctl dkim keygen --tenant acme --domain acme.example --selector x
check "keygen without --algo is a usage error (2)" test $? -eq 2
check "... printing the usage" err_has '^usage: posternctl dkim keygen --tenant TENANT'
ctl dkim keygen --tenant acme --domain acme.example --selector x --algo ed25519 --out "$w/none/x.pem"
check "keygen into a missing directory exits 1" test $? -eq 1
check "... says why" err_has "^posternctl: cannot create the key in $w/none: No such file or directory"

# --- rules B: a mismatched, a missing key; an account with its own outbound ------------
rulesb=$w/rules-b
cp -r "$rules" "$rulesb"
cat >>"$rulesb/acme.yaml" <<EOF
  - {domain: acme.example, selector: w1, key: $keys/acme.w1.rsa.pem}
  - {domain: acme.example, selector: m1, key: $keys/acme.m1.ed25519.pem}
EOF
sed -i 's|^  newsletter@acme.example: .*|  newsletter@acme.example:\n    outbound: {transport: acme-bulk, ips: [127.0.0.4, "2001:db8::4"], helo: out4.lab.test}|' \
    "$rulesb/acme.yaml"
"$ctl" -r "$rulesb" dkim keygen --tenant acme --domain acme.example --selector w1 --algo rsa >"$out" 2>"$err"
check "keygen to the path the rules name exits 0" test $? -eq 0
check "... writes there" has "^wrote $keys/acme.w1.rsa.pem: rsa 2048 bits"
check "... and prints no YAML" test "$(grep -c 'do not name' "$out")" -eq 0
"$ctl" -r "$rulesb" dkim keygen --tenant acme --domain acme.example --selector w1 --algo rsa >"$out" 2>"$err"
check "keygen to the path the rules name, again: exits 1" test $? -eq 1
"$ctl" -r "$rulesb" dkim keygen --tenant acme --domain acme.example --selector m1 --algo ed25519 >"$out" 2>"$err"
check "keygen ed25519 to the path the rules name exits 0" test $? -eq 0

# --- rules C: revoked, bad, unreadable, wrong type; the algorithm of a rule ----------
rulesc=$w/rules-c
cp -r "$rules" "$rulesc"
cat >>"$rulesc/acme.yaml" <<EOF
  - {domain: acme.example, selector: x1, key: $r1}
  - {domain: acme.example, selector: b1, key: $r1}
  - {domain: acme.example, selector: u1, key: $keys/missing.pem}
  - {domain: acme.example, selector: k1, key: $r1}
  - {domain: acme.example, selector: d2, key: $r1}
  - {domain: acme.example, selector: c1, key: $keys/c1.pem, algorithm: ed25519-sha256}
EOF
"$ctl" -r "$rulesc" dkim keygen --tenant acme --domain acme.example --selector c1 --algo rsa >"$out" 2>"$err"
check "keygen with another algorithm than the rule's exits 1" test $? -eq 1
check "... naming the rule" \
    err_has "^posternctl: $rulesc/acme.yaml:[0-9]+:5: the rules sign acme.example selector c1 with algorithm ed25519-sha256, not rsa\$"
sed -i '/selector: c1,/d' "$rulesc/acme.yaml"

# --- dns --------------------------------------------------------------------------------
ctl dns acme
check "dns acme exits 0" test $? -eq 0
check "dns: the DKIM record of r1 as keygen printed it" has_line "$r1_txt"
check "dns: the DKIM record of e1 as keygen printed it" has_line "$e1_txt"
check "dns: the inactive key too" has_line "$old_txt"
check "dns: ... said inactive" has '^; acme.example selector old: inactive \(published, no longer signing\), rsa 1024 bits'
check "dns: SPF with the tenant's address" has_line 'acme.example. IN TXT "v=spf1 ip4:127.0.0.3 -all"'
check "dns: DMARC" has_line '_dmarc.acme.example. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@acme.example"'
check "dns: A of the HELO name" has_line 'out3.lab.test. IN A 127.0.0.3'
check "dns: only comments and records" test "$(grep -cvE '^;|^[a-z0-9_.-]+\. IN (TXT|A|AAAA) ' "$out")" -eq 0
"$ctl" -r "$rulesb" dns acme >"$out" 2>"$err"
check "dns: SPF with the accounts' addresses, IPv4 first" \
    has_line 'acme.example. IN TXT "v=spf1 ip4:127.0.0.3 ip4:127.0.0.4 ip6:2001:db8::4 -all"'
check "dns: A and AAAA of an account's HELO name" \
    test "$(grep '^out4' "$out" | tr '\n' '|')" = "out4.lab.test. IN A 127.0.0.4|out4.lab.test. IN AAAA 2001:db8::4|"
ctl dns corp
check "dns corp: SPF" has_line 'corp.example. IN TXT "v=spf1 ip4:127.0.0.2 -all"'
check "dns corp: no dkim keys" has '^; no dkim keys in the rules'
ctl dns bill
check "dns bill (no outbound ips) exits 0" test $? -eq 0
check "dns bill: no SPF record, a note" has '^; bill.example: no outbound ips in the rules of tenant bill'
check "dns bill: no SPF record" test "$(grep -c '^bill\.example\. IN TXT' "$out")" -eq 0
"$ctl" -r "$rulesc" dns acme >"$out" 2>"$err"
check "dns with an unreadable key exits 1" test $? -eq 1
check "... and says why" has "^; acme.example selector u1: active, cannot read its key: $keys/missing.pem: No such file or directory \($rulesc/acme.yaml:"
ctl dns acme --json
check "dns --json" python3 - "$out" "$(python3 "$w/txt.py" value <<<"$r1_txt")" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
r = {(x["kind"], x["name"], x["type"]): x for x in d["records"]}
assert d["tenant"] == "acme"
assert r[("dkim", "r1._domainkey.acme.example.", "TXT")]["value"] == sys.argv[2]
assert r[("dkim", "r1._domainkey.acme.example.", "TXT")]["active"] is True
assert r[("dkim", "old._domainkey.acme.example.", "TXT")]["active"] is False
assert r[("spf", "acme.example.", "TXT")]["value"] == "v=spf1 ip4:127.0.0.3 -all"
assert r[("dmarc", "_dmarc.acme.example.", "TXT")]["value"].startswith("v=DMARC1; p=none;")
assert r[("helo", "out3.lab.test.", "A")]["value"] == "127.0.0.3"
EOF
ctl dns nobody
check "dns of an unknown tenant exits 1" test $? -eq 1

# --- publish in the lab's DNS -----------------------------------------------------------
r1_dns=$(python3 "$w/txt.py" dnsmasq r1._domainkey.acme.example <<<"$r1_txt")
lab_dns_add "$r1_dns" \
    "$(python3 "$w/txt.py" dnsmasq e1._domainkey.acme.example <<<"$e1_txt")" \
    "$(python3 "$w/txt.py" dnsmasq w1._domainkey.acme.example <<<"$r1_txt")" \
    "$(python3 "$w/txt.py" dnsmasq k1._domainkey.acme.example <<<"$e1_txt")" \
    "$(python3 "$w/txt.py" dnsmasq d2._domainkey.acme.example <<<"$r1_txt")" \
    "$(python3 "$w/txt.py" dnsmasq d2._domainkey.acme.example <<<"$e1_txt")" \
    'txt-record=x1._domainkey.acme.example,"v=DKIM1; k=rsa; p="' \
    'txt-record=b1._domainkey.acme.example,"v=DKIM1; k=rsa; p=not*base64"'
lab_dns_restart || { fail "dnsmasq does not come back"; exit 1; }
check "the lab's DNS serves the records" test "$(lab_dig r1._domainkey.acme.example TXT | tr -d '" \n')" = \
    "$(python3 "$w/txt.py" value <<<"$r1_txt" | tr -d ' ')"

# --- dkim check (in the lab's namespace) -------------------------------------------------
lcheck() { # lcheck RULES TENANT
    ip netns exec "$LAB_NS" "$ctl" -r "$1" dkim check "$2" >"$out" 2>"$err"
}
lcheck "$rules" acme
check "dkim check: both keys OK, exit 0" test $? -eq 0
check "dkim check: rsa OK" has '^OK +r1\._domainkey\.acme\.example \(active\): rsa 2048 bits'
check "dkim check: ed25519 OK" has '^OK +e1\._domainkey\.acme\.example \(active\): ed25519'
check "dkim check: the inactive key is missing, which does not count" \
    has '^MISSING +old\._domainkey\.acme\.example \(inactive\): no TXT record'
check "dkim check: one line per key" test "$(grep -c . "$out")" -eq 3
lcheck "$rulesb" acme
check "dkim check with a mismatch and a missing key exits 1" test $? -eq 1
check "dkim check: MISMATCH with the rule" \
    has "^MISMATCH +w1\._domainkey\.acme\.example \(active\): the published key is another one than the key file's \($rulesb/acme.yaml:[0-9]+:5\)\$"
check "dkim check: MISSING" has '^MISSING +m1\._domainkey\.acme\.example \(active\): no TXT record at the name'
check "dkim check: the others still OK" test "$(grep -c '^OK ' "$out")" -eq 2
lcheck "$rulesc" acme
check "dkim check with revoked, bad, unreadable keys exits 1" test $? -eq 1
check "dkim check: REVOKED" has '^REVOKED +x1\._domainkey\.acme\.example \(active\): the key is revoked \(empty p=\)'
check "dkim check: BAD" has '^BAD +b1\._domainkey\.acme\.example \(active\): p= is not base64'
check "dkim check: UNREADABLE" \
    has "^UNREADABLE u1\._domainkey\.acme\.example \(active\): cannot read the key: $keys/missing.pem: No such file or directory"
check "dkim check: another key type published: MISMATCH" \
    has '^MISMATCH +k1\._domainkey\.acme\.example \(active\): the record is for k=ed25519, the key file holds an rsa key'
check "dkim check: two records at a name, one wrong: the worst counts" \
    has '^MISMATCH +d2\._domainkey\.acme\.example \(active\): TXT record [12] of 2 at the name \(a verifier may pick any\): the record is for k=ed25519'
lcheck "$rules" bill
check "dkim check of a tenant without keys exits 0" test $? -eq 0
check "... and says so" err_has '^posternctl: tenant bill has no dkim keys'
lcheck "$rules" nobody
check "dkim check of an unknown tenant exits 1" test $? -eq 1

# --- valgrind ----------------------------------------------------------------------------
if ldd "$ctl" 2>/dev/null | grep -q libasan; then
    echo "SKIP: valgrind (an ASan build)"
elif command -v valgrind >/dev/null; then
    vg() { # vg NAME CMD...: CMD under valgrind; no error, no leak
        local name=$1 rc=0
        shift
        "$@" valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
            --log-file="$w/vg.log" "$ctl" "${VG_ARGS[@]}" >"$out" 2>"$err" || rc=$?
        if [ "$rc" -ne 99 ] && [ ! -s "$w/vg.log" ]; then pass "valgrind: $name"; else
            fail "valgrind: $name (exit $rc): $(head -40 "$w/vg.log")"; fi
    }
    VG_ARGS=(-c "$w/postern.yaml" dkim keygen --tenant acme --domain acme.example --selector v1 --algo ed25519
        --out "$nkeys/v1.pem")
    vg "dkim keygen ed25519"
    VG_ARGS=(-r "$rules" dkim keygen --tenant acme --domain acme.example --selector v2 --algo rsa --bits 1024
        --out "$nkeys/v2.pem")
    vg "dkim keygen rsa"
    VG_ARGS=(-r "$rulesc" dns acme)
    vg "dns"
    VG_ARGS=(-r "$rulesc" dns acme --json)
    vg "dns --json"
    VG_ARGS=(-r "$rulesb" dkim check acme)
    vg "dkim check" ip netns exec "$LAB_NS"
    VG_ARGS=(-r "$rulesc" dkim check acme)
    vg "dkim check (revoked, bad, unreadable)" ip netns exec "$LAB_NS"
else
    echo "SKIP: valgrind is not installed"
fi

[ "$failures" -eq 0 ]
