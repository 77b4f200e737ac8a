#!/usr/bin/env bash
# t_ctl_reputation.sh: posternctl reputation against the lab's dnsmasq
# (run inside the lab's namespace): tenant rep sends from 127.0.0.1 (its
# own outbound) and 127.0.0.2 (an account's); the test block list
# bl.lab.test lists 127.0.0.2 with a TXT reason, not 127.0.0.1; the
# domain list dbl.lab.test lists bad.example.  SPF, DKIM (an Ed25519 key)
# and DMARC of rep.example are published and agree; a second domain with
# an SPF record that misses 127.0.0.2 and no DMARC record, and a DKIM key
# that is not published, are reported.  Exit codes 0, 1, 2; the default
# lists; JSON.
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
for tool in openssl python3; do
    command -v "$tool" >/dev/null || { fail "$tool is not installed"; exit 1; }
done

lab_up || { fail "the lab does not come up"; exit 1; }

# --- rules (in $LAB_DIR: lab_down removes it): tenant rep, two outbound
# addresses, one DKIM key; bad/: a second domain and an unpublished key ------
w=$LAB_DIR/reputation
mkdir -p "$w/ok" "$w/bad"
key=$w/k1.pem
openssl genpkey -algorithm ed25519 -out "$key" 2>/dev/null || { fail "openssl genpkey"; exit 1; }
p=$(openssl pkey -in "$key" -pubout -outform DER | tail -c 32 | base64 -w0)
rules() { # rules DOMAINS KEY-ITEM...
    local domains=$1
    shift
    printf '%s\n' "tenant: rep" "domains: [$domains]" \
        "outbound: {transport: rep-out, ips: [127.0.0.1], helo: out1.lab.test}" "dkim:" "$@" \
        "accounts:" "  bulk@rep.example: {outbound: {transport: rep-bulk, ips: [127.0.0.2]}}"
}
rules rep.example "  - {domain: rep.example, selector: k1, key: $key}" >"$w/ok/rep.yaml"
rules "rep.example, bad.example" "  - {domain: rep.example, selector: k1, key: $key}" \
    "  - {domain: bad.example, selector: k2, key: $key}" >"$w/bad/rep.yaml"
{ "$ctl" -r "$w/ok" check && "$ctl" -r "$w/bad" check; } >/dev/null 2>"$w/err" ||
    { fail "the test rules do not check: $(cat "$w/err")"; exit 1; }

lab_dns_add 'address=/2.0.0.127.bl.lab.test/127.0.0.2' \
    'txt-record=2.0.0.127.bl.lab.test,"listed for testing"' \
    'address=/bad.example.dbl.lab.test/127.0.1.2' \
    'txt-record=rep.example,"v=spf1 ip4:127.0.0.1 ip4:127.0.0.2/31 -all"' \
    'txt-record=rep.example,"google-site-verification=xyz"' \
    "txt-record=k1._domainkey.rep.example,\"v=DKIM1; k=ed25519; p=$p\"" \
    'txt-record=_dmarc.rep.example,"v=DMARC1; p=quarantine"' \
    'txt-record=bad.example,"v=spf1 ip4:127.0.0.1 -all"'
lab_dns_restart || { fail "dnsmasq does not come back"; exit 1; }
check "the lab's DNS serves the listing" test "$(lab_dig 2.0.0.127.bl.lab.test A)" = 127.0.0.2

out=$w/out
err=$w/err
rep() { ip netns exec "$LAB_NS" "$ctl" "$@" >"$out" 2>"$err"; }
has() { grep -Eq -- "$1" "$out"; }

# --- one address listed, one not; the records agree -----------------------------------
rep -r "$w/ok" reputation rep --dnsbl bl.lab.test --dbl dbl.lab.test
check "listed: exit 1" test $? -eq 1
check "127.0.0.2 LISTED with the reason" \
    has '^dnsbl +127\.0\.0\.2 +bl\.lab\.test +LISTED +"listed for testing \(A 127\.0\.0\.2\)"$'
check "127.0.0.1 NOT-LISTED" has '^dnsbl +127\.0\.0\.1 +bl\.lab\.test +NOT-LISTED +-$'
check "rep.example not on the domain list" has '^dbl +rep\.example +dbl\.lab\.test +NOT-LISTED'
check "SPF OK (covers both addresses)" has '^spf +rep\.example +- +OK +"v=spf1 ip4:127.0.0.1 ip4:127.0.0.2/31 -all"$'
check "DKIM OK" has '^dkim +k1\._domainkey\.rep\.example +- +OK '
check "DMARC OK" has '^dmarc +_dmarc\.rep\.example +- +OK +"v=DMARC1; p=quarantine"$'
check "nothing else counts" test "$(grep -cE ' (LISTED|MISSING|MISMATCH|BAD|ERROR) ' "$out")" -eq 1

# --- only the clean list: exit 0 ---------------------------------------------------------
rep -r "$w/ok" reputation rep --dnsbl clean.lab.test --json
check "clean: exit 0" test $? -eq 0
check "--json" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["tenant"] == "rep" and r["ok"] is True
rows = {(x["check"], x["subject"], x["list"]): x for x in r["results"]}
assert rows[("dnsbl", "127.0.0.2", "clean.lab.test")]["result"] == "NOT-LISTED"
assert rows[("dnsbl", "127.0.0.1", "clean.lab.test")]["counts"] is False
assert rows[("dkim", "k1._domainkey.rep.example", None)]["result"] == "OK"
assert len(r["results"]) == 5, r["results"]
' "$out"

# --- records missing or disagreeing --------------------------------------------------------
rep -r "$w/bad" reputation rep --dnsbl clean.lab.test --dbl dbl.lab.test
check "records wrong: exit 1" test $? -eq 1
check "bad.example LISTED on the domain list" has '^dbl +bad\.example +dbl\.lab\.test +LISTED +"no reason given'
check "SPF MISMATCH names the missing address" \
    has '^spf +bad\.example +- +MISMATCH +"127\.0\.0\.2 not in its ip4:/ip6: terms'
check "DMARC MISSING" has '^dmarc +_dmarc\.bad\.example +- +MISSING '
check "DKIM MISSING" has '^dkim +k2\._domainkey\.bad\.example +- +MISSING '
check "rep.example still OK" test "$(grep -c '^[a-z]* *[a-z_.0-9]*rep\.example .* OK ' "$out")" -eq 3

# --- the default lists, usage ------------------------------------------------------------------
rep -r "$w/ok" reputation rep
check "default lists: exit 0 (the lab's DNS lists nothing)" test $? -eq 0
check "default lists: zen, spamcop, barracuda for each address, dbl for the domain" \
    test "$(grep -cE '^(dnsbl|dbl) .* NOT-LISTED' "$out")" -eq 7
rep -r "$w/ok" reputation
check "no tenant: exit 2" test $? -eq 2
rep -r "$w/ok" reputation rep --dnsbl 'not a zone'
check "bad zone: exit 2" test $? -eq 2
rep -r "$w/ok" reputation nobody
check "unknown tenant: exit 1" test $? -eq 1

[ "$failures" -eq 0 ]
