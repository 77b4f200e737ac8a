#!/usr/bin/env bash
# t_ctl_postfix.sh: posternctl postfix-config [--check] [--json] against the
# lab's Postfix (postconf -c $LAB_PF_CONF; nothing is sent).
#  - rules of two tenants bound to 127.0.0.1 and 127.0.0.2: the printed
#    main.cf lines (sockets relative to the lab's queue directory) and one
#    smtp transport per tenant; before they are added, --check reports the
#    missing transports and settings (exit 1);
#  - the printed master.cf lines appended as they are and the main.cf lines
#    set with postconf -e, Postfix reloaded (it accepts them): --check finds
#    no difference (exit 0), --json the same with "differences": [];
#  - one transport removed: reported missing (exit 1); one bind address
#    changed: reported with both values and the rule's file:line (exit 1),
#    in JSON with have and want;
#  - bad usage: exit 2.
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
command -v python3 >/dev/null || { fail "python3 is not installed"; exit 1; }
lab_up || { fail "the lab does not come up"; exit 1; }

# --- rules and postern.yaml (in $LAB_DIR: lab_down removes them) -----------
w=$LAB_DIR/pfc
rules=$w/rules.d
mkdir -p "$rules"
cat >"$rules/alpha.yaml" <<'EOF'
tenant: alpha
domains: [alpha.example]
outbound: {transport: alpha-out, ips: [127.0.0.1], helo: out1.lab.test}
EOF
cat >"$rules/beta.yaml" <<'EOF'
tenant: beta
domains: [beta.example]
accounts:
  news@beta.example:
    outbound: {transport: beta-out, ips: [127.0.0.2], helo: out2.lab.test}
EOF
cat >"$w/postern.yaml" <<EOF
rules: $rules
state_dir: $w/state
policyd: {listen: unix:$LAB_PF_QUEUE/private/postern-policy}
milter:
  listen: unix:$LAB_PF_QUEUE/private/postern-milter
  postfix_config_dir: $LAB_PF_CONF
EOF
out=$w/out
err=$w/err
rc=0
# pfc ARGS...: posternctl postfix-config ARGS; exit status in $rc
pfc() {
    rc=0
    "$ctl" -c "$w/postern.yaml" postfix-config "$@" >"$out" 2>"$err" || rc=$?
}
has_line() { grep -qxF -- "$1" "$out"; }
has() { grep -qF -- "$1" "$out"; }
show() { echo "--- stdout:"; cat "$out"; echo "--- stderr:"; cat "$err"; }

# --- what the rules need --------------------------------------------------
pfc
check "postfix-config exits 0" test "$rc" -eq 0
check "milter socket relative to the queue directory" has_line "smtpd_milters = unix:private/postern-milter"
# shellcheck disable=SC2016 # a literal $smtpd_milters
check "non_smtpd_milters" has_line 'non_smtpd_milters = $smtpd_milters'
check "milter_default_action" has_line "milter_default_action = tempfail"
check "milter_protocol" has_line "milter_protocol = 6"
check "end-of-data policy service" \
    has_line "smtpd_end_of_data_restrictions = check_policy_service unix:private/postern-policy"
check "recipient restrictions shown as what must appear" \
    has_line "smtpd_recipient_restrictions = ..., check_policy_service unix:private/postern-policy, ..."
line_a="alpha-out unix - - n - - smtp -o smtp_bind_address=127.0.0.1 -o smtp_helo_name=out1.lab.test"
line_b="beta-out unix - - n - - smtp -o smtp_bind_address=127.0.0.2 -o smtp_helo_name=out2.lab.test"
check "transport of tenant alpha" has_line "$line_a"
check "transport of account news@beta.example" has_line "$line_b"
[ "$failures" -eq 0 ] || show
cp "$out" "$w/printed"

# --- before Postfix has them -------------------------------------------------
pfc --check
check "--check before: exit 1" test "$rc" -eq 1
check "--check before: alpha-out missing" has "master.cf: transport alpha-out is missing"
check "--check before: beta-out missing" has "master.cf: transport beta-out is missing"
check "--check before: smtpd_milters" has "main.cf: smtpd_milters is empty"

# --- add them as printed, and reload ----------------------------------------
# master.cf: the printed transport lines as they are
mapfile -t master_lines < <(sed -n '/^# master.cf/,$p' "$w/printed" | grep -v '^#')
lab_master_add "${master_lines[@]}" || fail "lab_master_add"
# main.cf: the printed lines, the recipient restrictions with our entry only
mapfile -t main_lines < <(sed -n '1,/^$/p' "$w/printed" |
    grep -v -e '^#' -e '^$' -e '^smtpd_recipient_restrictions')
policy="check_policy_service unix:private/postern-policy"
lab_postconf "${main_lines[@]}" \
    "smtpd_recipient_restrictions = permit_mynetworks, $policy, reject_unauth_destination" ||
    fail "lab_postconf"
check "Postfix reloads with the printed lines" lab_postfix_reload

pfc --check
check "--check: no difference, exit 0" test "$rc" -eq 0
check "--check: says ok" grep -q '^ok: ' "$out"
[ "$rc" -eq 0 ] || show
pfc --check --json
check "--check --json: exit 0" test "$rc" -eq 0
check "--check --json: empty differences, both transports" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["differences"] == [], d["differences"]
assert sorted(t["transport"] for t in d["master_cf"]) == ["alpha-out", "beta-out"]
assert any(p["name"] == "smtpd_milters" for p in d["main_cf"])
' "$out"

# --- a transport removed ---------------------------------------------------------
cp "$LAB_PF_CONF/master.cf" "$w/master.cf.good"
sed -i '/^beta-out /d' "$LAB_PF_CONF/master.cf"
pfc --check
check "removed transport: exit 1" test "$rc" -eq 1
check "removed transport: reported missing" \
    has "master.cf: transport beta-out is missing, the rules want: $line_b ($rules/beta.yaml:5)"
check "removed transport: alpha-out not reported" sh -c "! grep -q alpha-out '$out'"
[ "$rc" -eq 1 ] || show

# --- a bind address changed -----------------------------------------------------
cp "$w/master.cf.good" "$LAB_PF_CONF/master.cf"
sed -i '/^alpha-out /s/smtp_bind_address=127.0.0.1/smtp_bind_address=127.0.0.3/' "$LAB_PF_CONF/master.cf"
pfc --check
check "changed bind address: exit 1" test "$rc" -eq 1
check "changed bind address: both values and the rule" \
    has_line "master.cf: transport alpha-out: smtp_bind_address is 127.0.0.3, the rules want 127.0.0.1 ($rules/alpha.yaml:3)"
check "changed bind address: one difference" grep -q '^1 difference ' "$out"
[ "$rc" -eq 1 ] || show
pfc --check --json
check "changed bind address: JSON have/want" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["differences"]
assert len(d) == 1, d
x = d[0]
assert (x["where"], x["name"], x["key"], x["have"], x["want"]) == \
    ("master.cf", "alpha-out", "smtp_bind_address", "127.0.0.3", "127.0.0.1"), x
' "$out"

# --- usage ---------------------------------------------------------------------
pfc extra
check "an operand: exit 2" test "$rc" -eq 2
pfc --bogus
check "an unknown option: exit 2" test "$rc" -eq 2

if [ "$failures" -gt 0 ]; then
    echo "FAIL: t_ctl_postfix.sh: $failures failure(s)"
    exit 1
fi
echo "PASS: t_ctl_postfix.sh"
