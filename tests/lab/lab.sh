# shellcheck shell=bash
# lab.sh -- library for postern's integration tests: builds a hermetic mail
# "lab" in a private network namespace (a private Postfix instance, dnsmasq
# serving the test zones, smtp-sink playing "the Internet", Cyrus SASL logins)
# and tears it down again.  Source it from a test script, then call lab_up.
# See tests/lab/README.md for a walk-through.
#
# Layout inside the namespace ($LAB_NS):
#   127.0.0.1:53    dnsmasq (zones: tests/fixtures/lab/zones.conf + lab_dns_add)
#   127.0.0.1:25    Postfix smtpd, no AUTH; mynetworks = 127.0.0.0/8 may relay
#   127.0.0.1:587   Postfix smtpd with AUTH (PLAIN, LOGIN); relay only for
#                   authenticated clients
#   127.0.0.2..9    extra addresses for outbound binding (outN.lab.test in DNS)
#   127.0.0.10:25   smtp-sink (mx.lab.test): MX of every test domain; one dump
#                   file per message in $LAB_SINK_DIR, with X-Client-Addr
#                   (source IP of the delivery) and X-Helo-Args headers
#
# Test logins (Cyrus sasldb $LAB_SASLDB, password "secret" for all):
#   alice@corp.example  bob@corp.example  newsletter@acme.example
#   billing@bill.example
#
# Postfix runs in a PID namespace of its own as well (see "Postfix" below);
# PIDs in its maillog are the ones seen inside it.
#
# Host state: everything the lab writes lives in $LAB_DIR (mktemp -d) --
# except /etc/netns/$LAB_NS/resolv.conf, which `ip netns exec` bind-mounts
# over /etc/resolv.conf; lab_down removes it, its directory, and /etc/netns
# too if this lab created it and it is empty again.  iproute2 itself adds
# /run/netns/$LAB_NS while the lab is up (ip netns del removes it) and, the
# first time any namespace is created on a host, makes /run/netns a shared
# bind mount that stays.  The host's Postfix (/etc/postfix is only read),
# DNS and syslog are never touched.
#
# Needs: root, bash >= 5, iproute2, util-linux (unshare, nsenter), postfix,
# dnsmasq-base, swaks, sasl2-bin, libsasl2-modules, python3-dnspython.
#
# Public functions (details at each definition):
#   lab_up, lab_down, lab_exec, lab_pid,
#   lab_dns_add, lab_dns_restart, lab_dig,
#   lab_postconf, lab_master_add, lab_map, lab_postfix_reload, lab_postfix,
#   lab_send, lab_send_auth,
#   lab_wait_sink, lab_sink_files, lab_sink_count, lab_sink_header,
#   lab_wait_log, lab_ok, lab_fail,
#   lab_receiver_up, lab_receiver_down (a second Postfix as remote receiver)
#
# Environment knobs:
#   LAB_KEEP=1      keep $LAB_DIR after lab_down (processes are still stopped)
#   LAB_PAUSE=1     lab_down waits for Enter (on a terminal) before tearing
#                   down, so the running lab can be inspected
#   LAB_DEADLINE=N  default deadline in seconds for all waits (60)
#   LAB_ZONES=FILE  DNS fixture (default tests/fixtures/lab/zones.conf)
#
# All code here is safe under `set -euo pipefail` and works without it.

if [[ -n ${_LAB_SH_LOADED:-} ]]; then
    return 0
fi
_LAB_SH_LOADED=1

LAB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REPO_ROOT=$(cd "$LAB_LIB_DIR/../.." && pwd)
: "${LAB_ZONES:=$LAB_REPO_ROOT/tests/fixtures/lab/zones.conf}"
: "${LAB_DEADLINE:=60}"
: "${LAB_KEEP:=0}"
: "${LAB_PAUSE:=0}"

LAB_LOGINS=(alice@corp.example bob@corp.example newsletter@acme.example
    billing@bill.example)
LAB_PASSWORD=secret
LAB_SINK_ADDR=127.0.0.10

# Set by lab_up (kept after lab_down so a test can check the cleanup).
LAB_NS=""
LAB_DIR=""
LAB_PF_CONF=""      # Postfix config_directory (main.cf, master.cf, sasl/)
LAB_PF_QUEUE=""     # Postfix queue_directory
LAB_MAILLOG=""      # Postfix maillog_file
LAB_SINK_DIR=""     # smtp-sink dump files
LAB_SASLDB=""       # Cyrus sasldb
LAB_SWAKS_LOG=""    # transcript of the last lab_send / lab_send_auth

_LAB_STATE=""       # "" (never up), up, down
_LAB_DNS_EXTRA=()
_LAB_DNS_PID=""
_LAB_SINK_PID=""
_LAB_UNSHARE_PID="" # `unshare --pid` holding the Postfix PID namespace
_LAB_INIT_PID=""    # its init (a reaper), host PID
_LAB_MADE_ETC_NETNS=0

# ---------------------------------------------------------------------------
# small helpers (private)

_lab_err() { printf 'lab: %s\n' "$*" >&2; }

# Microseconds since the epoch, without forking.
_lab_now_us() { local t=${EPOCHREALTIME/./}; printf '%s' "${t/,/}"; }

# _lab_poll DEADLINE_S CMD...: run CMD every 0.1 s until it succeeds;
# return 1 when DEADLINE_S seconds have passed, or at once when CMD returns
# 99 (= "hopeless", e.g. the daemon we are waiting for has died).
_lab_poll() {
    local deadline_s=$1 rc
    shift
    local end=$(($(_lab_now_us) + deadline_s * 1000000))
    while :; do
        rc=0
        "$@" || rc=$?
        if ((rc == 0)); then
            return 0
        fi
        if ((rc == 99)) || (($(_lab_now_us) >= end)); then
            return 1
        fi
        sleep 0.1
    done
}

# A pid is gone when it does not exist or is a zombie nobody reaps yet.
_lab_pid_gone() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
    stat=${stat##*) }
    [[ ${stat%% *} == Z ]]
}

_lab_pid_alive() { ! _lab_pid_gone "$1"; }

_lab_ns_exists() {
    [[ -n $LAB_NS ]] && ip netns list 2>/dev/null | grep -q -- "^$LAB_NS\\( \\|\$\\)"
}

_lab_ns_pids() { ip netns pids "$LAB_NS" 2>/dev/null || true; }

_lab_ns_empty() {
    local p
    for p in $(_lab_ns_pids); do
        _lab_pid_alive "$p" && return 1
    done
    return 0
}

# _lab_smtp_ready ADDR PORT: a connection gets a "220" greeting.
_lab_smtp_ready() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    ip netns exec "$LAB_NS" timeout 10 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        IFS= read -r -t 8 line <&3 || exit 1
        printf "QUIT\r\n" >&3
        [[ $line == 220* ]]' _ "$1" "$2" 2>/dev/null
}

_lab_require_up() {
    if [[ $_LAB_STATE != up ]]; then
        _lab_err "${FUNCNAME[1]}: the lab is not up (call lab_up first)"
        return 1
    fi
}

_lab_tail_logs() {
    local f
    for f in "$LAB_MAILLOG" "$LAB_DIR/postfix-cmd.log" "$LAB_DIR/dnsmasq.log" \
        "$LAB_DIR/dnsmasq.out" "$LAB_DIR/sink.log" "$LAB_DIR/init.log"; do
        if [[ -s $f ]]; then
            printf -- '--- last lines of %s ---\n' "$f" >&2
            tail -n 25 "$f" >&2
        fi
    done
}

# ---------------------------------------------------------------------------
# lab_up: create the namespace and start dnsmasq, smtp-sink and Postfix.
# Installs traps on EXIT, INT, TERM and HUP that call lab_down (do not
# replace them; if a test needs its own cleanup, call lab_down from its trap).
lab_up() {
    if [[ $_LAB_STATE == up ]]; then
        _lab_err "lab_up: the lab is already up ($LAB_NS)"
        return 1
    fi
    local tool
    for tool in ip dnsmasq smtp-sink postfix postconf saslpasswd2 swaks; do
        if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$tool ]]; then
            _lab_err "lab_up: required tool '$tool' is missing"
            return 1
        fi
    done
    if ((EUID != 0)); then
        _lab_err "lab_up: must run as root (network namespaces, Postfix)"
        return 1
    fi
    if [[ ! -r $LAB_ZONES ]]; then
        _lab_err "lab_up: DNS fixture $LAB_ZONES not readable"
        return 1
    fi

    # Traps first: from here on, whatever fails, lab_down cleans up.
    trap '_lab_on_exit' EXIT
    trap '_lab_on_signal INT 130' INT
    trap '_lab_on_signal TERM 143' TERM
    trap '_lab_on_signal HUP 129' HUP
    _LAB_STATE=up
    _LAB_DNS_PID=""
    _LAB_SINK_PID=""
    _LAB_UNSHARE_PID=""
    _LAB_INIT_PID=""
    _LAB_MADE_ETC_NETNS=0
    LAB_NS=""

    LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/postern-lab.XXXXXXXX") || {
        _lab_err "lab_up: mktemp failed"
        return 1
    }
    if [[ $LAB_DIR == *[[:space:]]* ]]; then
        _lab_err "lab_up: \$TMPDIR must not contain white space ($LAB_DIR)"
        return 1
    fi
    # The daemons drop privileges (postfix, nobody) and must reach their files.
    chmod 0755 "$LAB_DIR"
    LAB_PF_CONF=$LAB_DIR/postfix/etc
    LAB_PF_QUEUE=$LAB_DIR/postfix/spool
    LAB_MAILLOG=$LAB_DIR/maillog
    LAB_SINK_DIR=$LAB_DIR/sink
    LAB_SASLDB=$LAB_DIR/sasldb2

    local i name
    for i in 1 2 3 4 5 6 7 8 9 10; do
        name=postern-lab-$$-$RANDOM
        if ip netns add "$name" 2>/dev/null; then
            LAB_NS=$name
            break
        fi
    done
    if [[ -z $LAB_NS ]]; then
        _lab_err "lab_up: cannot create a network namespace (ip netns add)"
        return 1
    fi
    printf '%s\n' "$LAB_NS" >"$LAB_DIR/netns"
    ip -n "$LAB_NS" link set lo up || return 1
    for i in 2 3 4 5 6 7 8 9 10; do
        ip -n "$LAB_NS" addr add "127.0.0.$i/8" dev lo || return 1
    done
    # lab_down removes /etc/netns again (when empty) if a lab created it:
    # it does not exist, or holds nothing but other labs' entries (with
    # concurrent labs, the creator is not always the last one to finish).
    if [[ ! -d /etc/netns ]]; then
        _LAB_MADE_ETC_NETNS=1
    elif [[ -n $(find /etc/netns -mindepth 1 -maxdepth 1 -print -quit 2>/dev/null) &&
        -z $(find /etc/netns -mindepth 1 -maxdepth 1 ! -name 'postern-lab-*' \
            -print -quit 2>/dev/null) ]]; then
        _LAB_MADE_ETC_NETNS=1
    fi
    # Retry: a concurrent lab may remove /etc/netns between the two mkdirs.
    for i in 1 2 3 4 5 6 7 8 9 10; do
        mkdir -p "/etc/netns/$LAB_NS" 2>/dev/null && break
    done
    printf 'nameserver 127.0.0.1\n' >"/etc/netns/$LAB_NS/resolv.conf" || return 1

    _lab_dns_start || return 1
    _lab_sink_start || return 1
    _lab_sasl_setup || return 1
    _lab_init_start || return 1
    _lab_postfix_write_config || return 1
    _lab_postfix_start || return 1
    return 0
}

_lab_on_exit() {
    local rc=$?
    if ! lab_down && ((rc == 0)); then
        _lab_err "teardown failed"
        rc=1
    fi
    exit "$rc"
}

_lab_on_signal() {
    trap '' INT TERM HUP # a second signal must not interrupt the teardown
    _lab_err "caught SIG$1, tearing the lab down"
    lab_down
    exit "$2"
}

# ---------------------------------------------------------------------------
# lab_down: stop every process in the namespace (Postfix gracefully first),
# delete the namespace, /etc/netns/$LAB_NS and $LAB_DIR (unless LAB_KEEP=1).
# Idempotent; runs from the EXIT/INT/TERM/HUP traps installed by lab_up.
lab_down() {
    [[ $_LAB_STATE == up ]] || return 0
    # No interruption half-way: a second Ctrl-C must not leave debris.
    trap '' INT TERM HUP
    local rc=0 p master=""

    if [[ $LAB_PAUSE == 1 && -t 0 && -n $LAB_NS ]]; then
        printf 'lab: LAB_PAUSE=1: lab %s is still running (LAB_DIR=%s).\n' \
            "$LAB_NS" "$LAB_DIR" >&2
        printf 'lab: e.g. ip netns exec %s bash; press Enter to tear down.\n' \
            "$LAB_NS" >&2
        read -r _ || true
    fi
    _LAB_STATE=down

    if _lab_ns_exists; then
        # The receiver of lab_receiver_up (if any) before the lab's Postfix.
        _lab_receiver_stop || true
        # Postfix first, the way `postfix stop` does it: SIGTERM to the master,
        # which passes it on to its children.
        master=$(_lab_master_pid)
        if [[ -n $master ]]; then
            kill -TERM "$master" 2>/dev/null || true
            _lab_poll 20 _lab_pid_gone "$master" ||
                _lab_err "lab_down: Postfix master $master ignored SIGTERM"
        fi
        # Killing the init of Postfix's PID namespace makes the kernel kill
        # (and reap) whatever is left in there.
        if [[ -n $_LAB_INIT_PID ]] && _lab_pid_alive "$_LAB_INIT_PID"; then
            kill -KILL "$_LAB_INIT_PID" 2>/dev/null || true
        fi
        # Then everything else that lives in the network namespace.
        for p in $(_lab_ns_pids); do
            kill -TERM "$p" 2>/dev/null || true
        done
        if ! _lab_poll 20 _lab_ns_empty; then
            for p in $(_lab_ns_pids); do
                kill -KILL "$p" 2>/dev/null || true
            done
            _lab_poll 20 _lab_ns_empty || {
                _lab_err "lab_down: processes survive in $LAB_NS: $(_lab_ns_pids | tr '\n' ' ')"
                rc=1
            }
        fi
        ip netns del "$LAB_NS" || rc=1
    fi
    # Reap our own background children (dnsmasq, smtp-sink, unshare).
    for p in $_LAB_DNS_PID $_LAB_SINK_PID $_LAB_UNSHARE_PID; do
        wait "$p" 2>/dev/null || true
    done
    _LAB_DNS_PID=""
    _LAB_SINK_PID=""
    _LAB_UNSHARE_PID=""
    _LAB_INIT_PID=""
    _LAB_RCV_UP=0

    if [[ -n $LAB_NS && -d /etc/netns/$LAB_NS ]]; then
        rm -f "/etc/netns/$LAB_NS/resolv.conf"
        rmdir "/etc/netns/$LAB_NS" || rc=1
    fi
    if [[ $_LAB_MADE_ETC_NETNS == 1 ]]; then
        rmdir /etc/netns 2>/dev/null || true
    fi

    if [[ -n $LAB_DIR && -d $LAB_DIR ]]; then
        if [[ $LAB_KEEP == 1 ]]; then
            printf 'lab: LAB_KEEP=1: kept %s\n' "$LAB_DIR" >&2
        elif [[ $LAB_DIR == */postern-lab.* ]]; then
            rm -rf -- "$LAB_DIR" || rc=1
        fi
    fi
    trap - INT TERM HUP EXIT
    return "$rc"
}

# ---------------------------------------------------------------------------
# lab_exec CMD...: run CMD inside the lab's namespace (it sees the lab's DNS).
lab_exec() {
    _lab_require_up || return 1
    ip netns exec "$LAB_NS" "$@"
}

# ---------------------------------------------------------------------------
# DNS

# lab_dns_add 'LINE'...: add dnsmasq configuration lines (txt-record=...,
# mx-host=..., address=/name/ip, ...) to the zones.  Call before lab_up, or
# call lab_dns_restart afterwards for them to take effect.
lab_dns_add() {
    local line
    for line in "$@"; do
        if [[ $line == *$'\n'* ]]; then
            _lab_err "lab_dns_add: one line per argument, please"
            return 1
        fi
        _LAB_DNS_EXTRA+=("$line")
    done
}

# lab_dns_restart: rewrite the dnsmasq configuration (fixture + lab_dns_add
# lines) and restart dnsmasq; returns when it answers again.
lab_dns_restart() {
    _lab_require_up || return 1
    if [[ -n $_LAB_DNS_PID ]]; then
        kill -TERM "$_LAB_DNS_PID" 2>/dev/null || true
        _lab_poll "$LAB_DEADLINE" _lab_pid_gone "$_LAB_DNS_PID" || {
            _lab_err "lab_dns_restart: dnsmasq $_LAB_DNS_PID does not stop"
            return 1
        }
        wait "$_LAB_DNS_PID" 2>/dev/null || true
        _LAB_DNS_PID=""
    fi
    _lab_dns_start
}

_lab_dns_write_conf() {
    {
        printf '# generated by tests/lab/lab.sh for %s\n' "$LAB_NS"
        printf '%s\n' no-resolv no-hosts listen-address=127.0.0.1 \
            bind-interfaces port=53 log-queries
        printf '\n# ---- %s\n' "$LAB_ZONES"
        cat "$LAB_ZONES"
        printf '\n# ---- lab_dns_add\n'
        if ((${#_LAB_DNS_EXTRA[@]})); then
            printf '%s\n' "${_LAB_DNS_EXTRA[@]}"
        fi
    } >"$LAB_DIR/dnsmasq.conf"
}

# Ready = answers a query itself (not via NSS, which might ask another
# resolver, e.g. nss-resolve).
_lab_dns_ready() {
    _lab_pid_alive "$_LAB_DNS_PID" || return 99
    _LAB_DIG_LIFETIME=2 lab_dig mx.lab.test A 2>/dev/null | grep -qxF "$LAB_SINK_ADDR"
}

_lab_dns_start() {
    _lab_dns_write_conf || return 1
    # --keep-in-foreground: dnsmasq stays our child, $! is its pid
    # (ip netns exec execs the command, it does not fork).
    ip netns exec "$LAB_NS" dnsmasq --keep-in-foreground \
        --conf-file="$LAB_DIR/dnsmasq.conf" \
        --pid-file="$LAB_DIR/dnsmasq.pid" \
        --log-facility="$LAB_DIR/dnsmasq.log" \
        --user=nobody --group=nogroup \
        </dev/null >>"$LAB_DIR/dnsmasq.out" 2>&1 &
    _LAB_DNS_PID=$!
    if ! _lab_poll "$LAB_DEADLINE" _lab_dns_ready; then
        _lab_err "dnsmasq did not come up (config $LAB_DIR/dnsmasq.conf)"
        _lab_tail_logs
        return 1
    fi
}

# lab_dig NAME [TYPE]: print the records the lab's DNS returns (TYPE A by
# default), one per line; returns 1 on NXDOMAIN/NODATA.  Uses dnspython
# (python3-dnspython, a dependency of python3-dkim).
lab_dig() {
    _lab_require_up || return 1
    ip netns exec "$LAB_NS" /usr/bin/python3 - "$1" "${2:-A}" \
        "${_LAB_DIG_LIFETIME:-10}" <<'EOF'
import sys
import dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.lifetime = float(sys.argv[3])
try:
    for rr in r.resolve(sys.argv[1], sys.argv[2]):
        print(rr.to_text())
except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as e:
    print(e, file=sys.stderr)
    sys.exit(1)
EOF
}

# ---------------------------------------------------------------------------
# smtp-sink ("the Internet")

_lab_sink_start() {
    mkdir -p "$LAB_SINK_DIR"
    chown postfix:postfix "$LAB_SINK_DIR"
    # -d TEMPLATE: one file per mail transaction, TEMPLATE (strftime) + a
    # random hex suffix.  NB: the file is created at MAIL FROM and written
    # while the message arrives (and unlinked if the transaction aborts), so
    # lab_sink_files only lists files smtp-sink no longer holds open.
    ip netns exec "$LAB_NS" smtp-sink -u postfix -h mx.lab.test \
        -d "$LAB_SINK_DIR/%Y%m%d-%H%M%S." "$LAB_SINK_ADDR:25" 256 \
        </dev/null >>"$LAB_DIR/sink.log" 2>&1 &
    _LAB_SINK_PID=$!
    printf '%s\n' "$_LAB_SINK_PID" >"$LAB_DIR/sink.pid"
    if ! _lab_poll "$LAB_DEADLINE" _lab_sink_ready; then
        _lab_err "smtp-sink did not come up on $LAB_SINK_ADDR:25"
        _lab_tail_logs
        return 1
    fi
}

_lab_sink_ready() {
    _lab_pid_alive "$_LAB_SINK_PID" || return 99
    _lab_smtp_ready "$LAB_SINK_ADDR" 25
}

# lab_sink_files: complete dump files in the sink, oldest first (by the time
# the message was completed).
lab_sink_files() {
    _lab_require_up || return 1
    local f list open
    # (No process substitution here: it is polled, and bash does not wait
    # for those children, which become zombies on hosts whose PID 1 does
    # not reap.)
    list=$(find "$LAB_SINK_DIR" -type f -printf '%T@ %p\n' |
        LC_ALL=C sort -n | cut -d' ' -f2-)
    [[ -n $list ]] || return 0
    # Listed first, checked for "open" second: a file that is not open any
    # more and still exists was completed (aborted ones are unlinked first).
    open=$(find "/proc/$_LAB_SINK_PID/fd" -lname "$LAB_SINK_DIR/*" -printf '%l\n' \
        2>/dev/null || true)
    while IFS= read -r f; do
        if [[ -n $open ]] && grep -qxF -- "$f" <<<"$open"; then
            continue
        fi
        if [[ -e $f ]]; then
            printf '%s\n' "$f"
        fi
    done <<<"$list"
}

# lab_sink_count: number of complete dump files.
lab_sink_count() {
    local out
    out=$(lab_sink_files) || return 1
    if [[ -z $out ]]; then
        printf '0\n'
    else
        printf '%s\n' "$out" | wc -l
    fi
}

_lab_sink_has() {
    local n
    n=$(lab_sink_count) || return 1
    ((n >= $1)) && return 0
    _lab_pid_alive "$_LAB_SINK_PID" || return 99
    return 1
}

# lab_sink_file_of RCPT: the dump file of the (first) message to RCPT
# (its X-Rcpt-Args); 1 when there is none.
lab_sink_file_of() {
    local f
    for f in $(lab_sink_files); do
        if lab_sink_header "$f" X-Rcpt-Args | grep -qF "<$1>"; then
            printf '%s\n' "$f"
            return 0
        fi
    done
    return 1
}

# lab_sink_has_rcpt RCPT: a message to RCPT is in the sink.
lab_sink_has_rcpt() { lab_sink_file_of "$1" >/dev/null; }

# lab_wait_sink N [DEADLINE_S]: wait until at least N messages are in the sink.
lab_wait_sink() {
    _lab_require_up || return 1
    local want=$1 deadline=${2:-$LAB_DEADLINE}
    if _lab_poll "$deadline" _lab_sink_has "$want"; then
        return 0
    fi
    _lab_err "lab_wait_sink: timed out after ${deadline}s waiting for $want" \
        "message(s) in $LAB_SINK_DIR (have $(lab_sink_count))"
    _lab_tail_logs
    return 1
}

# lab_sink_header FILE NAME: print the value(s) of header NAME (case-
# insensitive, unfolded; one line per occurrence) from a dump file's header
# section: smtp-sink's X-Client-Addr, X-Client-Proto, X-Helo-Args,
# X-Mail-Args, X-Rcpt-Args, Received, then the message's own headers.
# Returns 1 when there is no such header.
lab_sink_header() {
    local file=$1 name=$2
    awk -v want="$name" '
        function flush() { if (have) { print cur; found = 1 } have = 0; cur = "" }
        BEGIN { want = tolower(want) }
        /^$/ { exit }
        /^[ \t]/ { if (have) { sub(/^[ \t]+/, " "); cur = cur $0 } next }
        {
            flush()
            i = index($0, ":")
            if (i > 0 && tolower(substr($0, 1, i - 1)) == want) {
                v = substr($0, i + 1); sub(/^[ \t]+/, "", v)
                cur = v; have = 1
            }
        }
        END { flush(); exit(found ? 0 : 1) }' "$file"
}

# ---------------------------------------------------------------------------
# Cyrus SASL

_lab_sasl_setup() {
    local login
    mkdir -p "$LAB_PF_CONF/sasl"
    # Debian's Postfix reads Cyrus' smtpd.conf from $config_directory/sasl/.
    cat >"$LAB_PF_CONF/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $LAB_SASLDB
EOF
    for login in "${LAB_LOGINS[@]}"; do
        # Stored as user + realm; a client logging in as user@realm matches.
        printf '%s' "$LAB_PASSWORD" |
            saslpasswd2 -p -c -f "$LAB_SASLDB" -u "${login#*@}" "${login%@*}" || {
            _lab_err "saslpasswd2 failed for $login"
            return 1
        }
    done
    # smtpd reads it after dropping privileges to user postfix.
    chown postfix:postfix "$LAB_SASLDB"
    chmod 0600 "$LAB_SASLDB"
}

# ---------------------------------------------------------------------------
# Postfix
#
# The private instance is run with `postfix -c $LAB_PF_CONF`, which exports
# MAIL_CONFIG to postfix-script, master and all daemons.  For root a
# non-default config directory needs no alternate_config_directories entry in
# /etc/postfix/main.cf (only the set-gid postdrop/postqueue check that when
# run by other users), so nothing outside $LAB_DIR is written: no
# /etc/postfix/main.cf, no mounts.  meta_directory (/etc/postfix:
# postfix-files, post-install) is only read.  chroot = n on every service,
# so nothing is copied into the queue directory and the daemons see the
# namespace's /etc/resolv.conf.  Debian's init helper configure-instance.sh
# is never used.
#
# The master daemonizes, and `postfix reload` leaves a background postsuper
# behind; orphans like these are re-parented to PID 1, which on some hosts
# (containers, micro-VMs) reaps them late or never.  So Postfix runs in a PID
# namespace of its own whose init is a tiny reaper: no zombies, and killing
# that init makes the kernel kill everything that is left.  Postfix commands
# enter it with nsenter; pid/master.pid holds the PID as seen inside it.

# Init of the Postfix PID namespace: reap every child, exit on SIGTERM.
_LAB_REAPER_PY='
import os, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        signal.sigtimedwait([signal.SIGCHLD], 1.0)
'

_lab_init_found() {
    local kids p nspid
    _lab_pid_alive "$_LAB_UNSHARE_PID" || return 99
    kids=$(cat "/proc/$_LAB_UNSHARE_PID/task/$_LAB_UNSHARE_PID/children" 2>/dev/null) ||
        return 1
    for p in $kids; do
        nspid=$(_lab_nspid "$p")
        if [[ $nspid == 1 ]]; then
            _LAB_INIT_PID=$p
            return 0
        fi
    done
    return 1
}

_lab_init_start() {
    ip netns exec "$LAB_NS" unshare --pid --fork --kill-child \
        /usr/bin/python3 -c "$_LAB_REAPER_PY" \
        </dev/null >>"$LAB_DIR/init.log" 2>&1 &
    _LAB_UNSHARE_PID=$!
    if ! _lab_poll "$LAB_DEADLINE" _lab_init_found; then
        _lab_err "cannot start the init of Postfix's PID namespace (unshare --pid)"
        _lab_tail_logs
        return 1
    fi
}

# _lab_nspid HOSTPID: the PID of a process as seen in its own PID namespace.
_lab_nspid() {
    local line
    line=$(grep -m1 '^NSpid:' "/proc/$1/status" 2>/dev/null) || return 1
    printf '%s\n' "${line##*[[:space:]]}"
}

# _lab_master_pid: host PID of the running Postfix master (empty if none).
_lab_master_pid() {
    local nspid="" p pidns
    [[ -r $LAB_PF_QUEUE/pid/master.pid && -n $_LAB_INIT_PID ]] || return 0
    read -r nspid <"$LAB_PF_QUEUE/pid/master.pid" || true
    [[ $nspid =~ ^[0-9]+$ ]] || return 0
    pidns=$(readlink "/proc/$_LAB_INIT_PID/ns/pid" 2>/dev/null) || return 0
    for p in $(_lab_ns_pids); do
        if [[ $(readlink "/proc/$p/ns/pid" 2>/dev/null) == "$pidns" &&
            $(_lab_nspid "$p") == "$nspid" ]] && _lab_pid_alive "$p"; then
            printf '%s\n' "$p"
            return 0
        fi
    done
}

# lab_pid NAME: host PID of a lab process; NAME is master (Postfix),
# dnsmasq, smtp-sink or init (of Postfix's PID namespace).
lab_pid() {
    case $1 in
    master) _lab_master_pid ;;
    dnsmasq) printf '%s\n' "$_LAB_DNS_PID" ;;
    smtp-sink) printf '%s\n' "$_LAB_SINK_PID" ;;
    init) printf '%s\n' "$_LAB_INIT_PID" ;;
    *)
        _lab_err "lab_pid: unknown process name '$1'"
        return 1
        ;;
    esac
}

# Postfix re-reads main.cf -- and texthash: maps -- every 300 ms until the
# file's mtime is at least a second or two in the past ("let it cool down",
# util/dict_file.c:dict_load_file_xt, util/dict_thash.c).  Each program that
# opens a freshly written file (postfix, postconf, master, every new daemon)
# thus stalls ~2 s.  The lab backdates its configuration instead: all files
# under $LAB_PF_CONF, and map files under $LAB_DIR named in main.cf or
# master.cf (never anything in the queue directory or outside $LAB_DIR).
_lab_cool_config() {
    local t=$((EPOCHSECONDS - 10)) f maps
    find "$LAB_PF_CONF" -type f -exec touch -d "@$t" {} +
    maps=$(grep -ohE '[a-z0-9_]+:/[^[:space:],}]+' "$LAB_PF_CONF/main.cf" \
        "$LAB_PF_CONF/master.cf" 2>/dev/null | cut -d: -f2- | sort -u) || true
    while IFS= read -r f; do
        case $f in
        "$LAB_PF_QUEUE"/*) ;;
        "$LAB_DIR"/*)
            if [[ -f $f ]]; then
                touch -d "@$t" "$f"
            fi
            ;;
        esac
    done <<<"$maps"
    return 0
}

# lab_map NAME 'key value'...: write the lines to $LAB_PF_CONF/NAME and
# print "texthash:$LAB_PF_CONF/NAME" for use in lab_postconf, e.g.
#   lab_postconf "transport_maps = $(lab_map transport 'acme.example bind2:')"
lab_map() {
    [[ -n $LAB_PF_CONF && -d $LAB_PF_CONF ]] || {
        _lab_err "lab_map: no lab Postfix configuration (call lab_up first)"
        return 1
    }
    local name=$1
    shift
    if [[ $name == */* || -z $name ]]; then
        _lab_err "lab_map: NAME must be a plain file name"
        return 1
    fi
    printf '%s\n' "$@" >"$LAB_PF_CONF/$name" || return 1
    touch -d "@$((EPOCHSECONDS - 10))" "$LAB_PF_CONF/$name"
    printf 'texthash:%s\n' "$LAB_PF_CONF/$name"
}

_lab_postfix_write_config() {
    mkdir -p "$LAB_PF_CONF" "$LAB_PF_QUEUE" "$LAB_DIR/postfix/data"
    chown postfix:postfix "$LAB_DIR/postfix/data"
    cat >"$LAB_PF_CONF/main.cf" <<EOF
# Private Postfix instance of the postern lab $LAB_NS (generated by lab.sh).
compatibility_level = 3.6
queue_directory = $LAB_PF_QUEUE
data_directory = $LAB_DIR/postfix/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = $LAB_NS
# maillog_file needs the postlog service in master.cf, and its path must
# start with one of maillog_file_prefixes (default: /var, /dev/stdout).
maillog_file = $LAB_MAILLOG
maillog_file_prefixes = $LAB_DIR

myhostname = lab.postern.test
mydomain = postern.test
myorigin = \$myhostname
smtpd_banner = \$myhostname ESMTP postern-lab
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8

# Nothing is local; everything is relayed by DNS MX lookups (to smtp-sink).
mydestination =
relay_domains =
relayhost =
local_recipient_maps =
alias_maps =
alias_database =
local_transport = error:5.1.1 local delivery is disabled in the lab
smtp_host_lookup = dns
disable_dns_lookups = no
smtp_dns_support_level = enabled
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,
    reject_unauth_destination

# No TLS in the lab.
smtp_tls_security_level = none
smtpd_tls_security_level = none

# Cyrus SASL (enabled on the 587 listener only, see master.cf).
smtpd_sasl_auth_enable = no
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_security_options = noanonymous

# Fast and deterministic: no artificial delays, quick retries.
in_flow_delay = 0
smtpd_error_sleep_time = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 5s
delay_warning_time = 0
biff = no
append_dot_mydomain = no
EOF

    cat >"$LAB_PF_CONF/master.cf" <<EOF
# Private Postfix instance of the postern lab (generated by lab.sh).
# chroot = n everywhere.  Tests append transports with lab_master_add.
# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       n       -       -       smtpd
587       inet  n       -       n       -       -       smtpd
  -o syslog_name=$LAB_NS/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

_lab_postfix_cmd() {
    printf '+ postfix -c %s %s\n' "$LAB_PF_CONF" "$*" >>"$LAB_DIR/postfix-cmd.log"
    ip netns exec "$LAB_NS" nsenter --target "$_LAB_INIT_PID" --pid -- \
        postfix -c "$LAB_PF_CONF" "$@" \
        </dev/null >>"$LAB_DIR/postfix-cmd.log" 2>&1
}

# lab_postfix ARGS...: `postfix -c $LAB_PF_CONF ARGS` inside the lab's
# network and PID namespaces (commands that signal the master need the
# latter), e.g. `lab_postfix flush`.  For a reload use lab_postfix_reload.
# Queue tools need no PID namespace: lab_exec postqueue -c "$LAB_PF_CONF" -p
lab_postfix() {
    _lab_require_up || return 1
    ip netns exec "$LAB_NS" nsenter --target "$_LAB_INIT_PID" --pid -- \
        postfix -c "$LAB_PF_CONF" "$@"
}

_lab_postfix_ready() {
    [[ -n $(_lab_master_pid) ]] || return 99
    _lab_smtp_ready 127.0.0.1 25 && _lab_smtp_ready 127.0.0.1 587
}

_lab_postfix_start() {
    _lab_cool_config
    if ! _lab_postfix_cmd start; then
        _lab_err "postfix start failed"
        _lab_tail_logs
        return 1
    fi
    if ! _lab_poll "$LAB_DEADLINE" _lab_postfix_ready; then
        _lab_err "Postfix does not answer on 127.0.0.1:25 and :587"
        _lab_tail_logs
        return 1
    fi
}

# lab_postconf 'key = value'...: edit the lab's main.cf (postconf -e).
# Call lab_postfix_reload afterwards when the lab is up.
lab_postconf() {
    [[ -n $LAB_PF_CONF && -f $LAB_PF_CONF/main.cf ]] || {
        _lab_err "lab_postconf: no lab Postfix configuration (call lab_up first)"
        return 1
    }
    postconf -c "$LAB_PF_CONF" -e "$@" || return 1
    _lab_cool_config
}

# lab_master_add 'LINE'...: append lines to the lab's master.cf, e.g.
#   lab_master_add 'bind2 unix - - n - - smtp -o smtp_bind_address=127.0.0.2'
# Call lab_postfix_reload afterwards.
lab_master_add() {
    [[ -n $LAB_PF_CONF && -f $LAB_PF_CONF/master.cf ]] || {
        _lab_err "lab_master_add: no lab Postfix configuration (call lab_up first)"
        return 1
    }
    printf '%s\n' "$@" >>"$LAB_PF_CONF/master.cf"
}

_lab_reload_count() { grep -c -- ' reload -- version ' "$LAB_MAILLOG" 2>/dev/null || true; }

_lab_reload_seen() {
    (($(_lab_reload_count) > $1)) && return 0
    _lab_pid_alive "$2" || return 99
    return 1
}

# lab_postfix_reload: `postfix reload` and wait until the master has re-read
# its configuration and every daemon of the old configuration has exited, so
# that the next message is handled with the new settings.
lab_postfix_reload() {
    _lab_require_up || return 1
    local before master old p
    before=$(_lab_reload_count)
    master=$(_lab_master_pid)
    if [[ -z $master ]]; then
        _lab_err "lab_postfix_reload: Postfix is not running"
        return 1
    fi
    old=$(_lab_master_children "$master")
    _lab_cool_config
    if ! _lab_postfix_cmd reload; then
        _lab_err "postfix reload failed"
        _lab_tail_logs
        return 1
    fi
    if ! _lab_poll "$LAB_DEADLINE" _lab_reload_seen "$before" "$master"; then
        _lab_err "lab_postfix_reload: the master did not log the reload (or died)"
        _lab_tail_logs
        return 1
    fi
    for p in $old; do
        if ! _lab_poll "$LAB_DEADLINE" _lab_pid_gone "$p"; then
            _lab_err "lab_postfix_reload: old daemon $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)) is still running"
            return 1
        fi
    done
    if ! _lab_poll "$LAB_DEADLINE" _lab_postfix_ready; then
        _lab_err "Postfix does not answer after reload"
        _lab_tail_logs
        return 1
    fi
}

# Pids of the master's children (daemon processes).
_lab_master_children() {
    local p ppid rest
    for p in $(_lab_ns_pids); do
        { read -r rest <"/proc/$p/stat"; } 2>/dev/null || continue
        rest=${rest##*) }
        read -r _ ppid _ <<<"$rest"
        if [[ $ppid == "$1" ]]; then
            printf '%s\n' "$p"
        fi
    done
}

# ---------------------------------------------------------------------------
# Sending

# lab_send [swaks args...]: swaks inside the namespace to 127.0.0.1:25.
# Defaults (each can be overridden, later options win in swaks):
#   --from sender@acme.example --to someone@remote.example
#   --helo client.lab.test --timeout 60 --suppress-data
# Returns swaks' exit code; the transcript is in $LAB_SWAKS_LOG
# ($LAB_DIR/swaks.N.log).  (Note: when run in $(...), LAB_SWAKS_LOG is not
# updated in the calling shell.)
lab_send() {
    _lab_require_up || return 1
    local n=1 rc=0
    # O_EXCL-style numbering: parallel senders never share a transcript.
    while ! (set -C; : >"$LAB_DIR/swaks.$n.log") 2>/dev/null; do
        n=$((n + 1))
    done
    LAB_SWAKS_LOG=$LAB_DIR/swaks.$n.log
    # --config /dev/null: ignore a developer's ~/.swaksrc.
    ip netns exec "$LAB_NS" swaks --config /dev/null --server 127.0.0.1 --port 25 \
        --from sender@acme.example --to someone@remote.example \
        --helo client.lab.test --timeout 60 --suppress-data \
        "$@" </dev/null >"$LAB_SWAKS_LOG" 2>&1 || rc=$?
    return "$rc"
}

# lab_send_auth LOGIN PASS [swaks args...]: like lab_send, but to port 587
# with AUTH PLAIN as LOGIN (default --from LOGIN).
lab_send_auth() {
    local login=$1 pass=$2
    shift 2
    lab_send --port 587 --from "$login" \
        --auth PLAIN --auth-user "$login" --auth-password "$pass" "$@"
}

# ---------------------------------------------------------------------------
# Logs and results

_lab_log_has() {
    local n
    n=$(grep -c -E -- "$1" "$LAB_MAILLOG" 2>/dev/null) || n=0
    ((n >= $2))
}

# lab_wait_log REGEX [DEADLINE_S] [COUNT]: wait until the maillog has COUNT
# (default 1) lines matching the extended regular expression REGEX.
lab_wait_log() {
    _lab_require_up || return 1
    local re=$1 deadline=${2:-$LAB_DEADLINE} count=${3:-1}
    if _lab_poll "$deadline" _lab_log_has "$re" "$count"; then
        return 0
    fi
    _lab_err "lab_wait_log: timed out after ${deadline}s waiting for" \
        "$count line(s) matching /$re/ in $LAB_MAILLOG"
    _lab_tail_logs
    return 1
}

# lab_ok MSG: print "PASS: MSG".
# lab_use_milter SPEC [MAIN_CF_LINE...]: point smtpd and the local
# submission (non_smtpd_milters) at the milter SPEC (unix:PATH or
# inet:HOST:PORT; "" for none), with milter_default_action = tempfail and
# milter_protocol = 6, and reload Postfix.
# shellcheck disable=SC2016 # $smtpd_milters is for Postfix to expand
lab_use_milter() {
    local spec=$1
    shift
    lab_postconf "smtpd_milters = $spec" 'non_smtpd_milters = $smtpd_milters' \
        'milter_default_action = tempfail' 'milter_protocol = 6' "$@" || lab_fail "postconf failed"
    lab_postfix_reload || lab_fail "postfix reload failed"
}

# lab_milter_start BINARY CONF LOG: postern-milter BINARY -f -c CONF in the
# lab's network namespace, its output appended to LOG; waits (60 s) for
# its start line.  Sets LAB_MILTER_PID (lab_milter_stop ends it).
LAB_MILTER_PID=""
_lab_count_ge() { # _lab_count_ge FILE REGEX N
    local n
    n=$(grep -cE -- "$2" "$1" 2>/dev/null) || n=0
    ((n >= $3))
}
lab_milter_start() {
    local bin=$1 conf=$2 log=$3 n
    : >>"$log"
    n=$(grep -c 'event=start ' "$log" 2>/dev/null) || n=0
    ip netns exec "$LAB_NS" "$bin" -f -c "$conf" >>"$log" 2>&1 &
    LAB_MILTER_PID=$!
    lab_wait_for 60 _lab_count_ge "$log" 'event=start ' $((n + 1)) || {
        tail -20 "$log"
        lab_fail "postern-milter did not start with $conf"
    }
}
_lab_milter_gone() { ! kill -0 "$LAB_MILTER_PID" 2>/dev/null; }
# lab_milter_stop [SIGNAL]: SIGTERM (default) or SIGNAL to the milter of
# lab_milter_start, and wait for its end.  With SIGTERM Postfix lets go of
# it first (lab_use_milter ""): no session thread is left at the stop, so
# that the exit is clean under valgrind (libspf2 keeps a resolver state per
# session thread, closed when the thread ends).
lab_milter_stop() {
    local sig=${1:-TERM}
    [ -n "$LAB_MILTER_PID" ] || return 0
    [ "$sig" = TERM ] && lab_use_milter ""
    kill "-$sig" "$LAB_MILTER_PID" 2>/dev/null
    lab_wait_for 60 _lab_milter_gone || lab_fail "postern-milter ignored SIG$sig"
    wait "$LAB_MILTER_PID" 2>/dev/null
    LAB_MILTER_PID=
}

# lab_reply: the server's answer to the message of the last lab_send (in
# $LAB_SWAKS_LOG: the reply after the data, or the first error).
lab_reply() {
    local r
    r=$(awk '/^ -> (\.|[0-9]+ lines sent)$/{d=1; next} d && /^(<-|<\*\*) /{sub(/^(<-|<\*\*) +/, ""); print; exit}' \
        "$LAB_SWAKS_LOG")
    [ -n "$r" ] || r=$(grep -m1 -E '^<\*\* ' "$LAB_SWAKS_LOG" | sed -E 's/^<\*\* +//')
    printf '%s\n' "$r"
}

# lab_wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; 1
# after SECONDS (a condition, never a fixed sleep).
lab_wait_for() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS >= end)) && return 1
        sleep 0.1
    done
}

lab_ok() { printf 'PASS: %s\n' "$*"; }

# lab_fail MSG: print "FAIL: MSG" and exit 1 (the EXIT trap tears down).
lab_fail() {
    printf 'FAIL: %s\n' "$*"
    exit 1
}

# ---------------------------------------------------------------------------
# --- scanners (t_scan.sh, bench)
#
# clamd and spamd inside the lab's namespace, offline:
#   - clamd (clamav-daemon) on a unix socket ($LAB_CLAMD_SOCK, world
#     accessible) with a signature database of one line, the MD5 of the EICAR
#     test file (it also finds it base64-encoded inside a MIME message), no
#     freshclam;
#   - spamd (SpamAssassin) on 127.0.0.1:$LAB_SPAMD_PORT with the shipped
#     rules, a site configuration of its own (no Bayes, no DNS, no RBL):
#     GTUBE scores ~1000, a plain message ~0.
# Both run as the lab's children in its namespace (lab_down kills them
# anyway; the stop functions end them gracefully).  The EICAR string is
# assembled at run time (lab_eicar), so that no file of the tree holds it.
#
#   lab_clamd_start [LINE...]   start clamd (LINEs: more clamd.conf lines,
#                               e.g. 'LogClean yes'); returns when it PONGs
#   lab_clamd_stop              stop it (idempotent); the socket is gone after
#   lab_spamd_start [--no-wait] [PORT]
#                               start spamd (default port 7830); returns when it
#                               PONGs (~10 s), at once with --no-wait
#   lab_spamd_wait [S]          wait for a spamd started with --no-wait
#   lab_spamd_stop              stop it and its children (idempotent)
#   lab_clamd_scan FILE         print clamd's answer to FILE (INSTREAM)
#   lab_spamd_check FILE [USER] print spamd's answer to FILE (SYMBOLS)
#   lab_eicar                   print the EICAR test string (68 bytes, no newline)
#   lab_gtube                   print SpamAssassin's GTUBE string
#
# Variables: LAB_CLAMD_DIR LAB_CLAMD_SOCK LAB_CLAMD_LOG
#            LAB_SPAMD_DIR LAB_SPAMD_PORT LAB_SPAMD_LOG

LAB_CLAMD_DIR=""
LAB_CLAMD_SOCK=""
LAB_CLAMD_LOG=""
LAB_SPAMD_DIR=""
LAB_SPAMD_PORT=""
LAB_SPAMD_LOG=""
_LAB_CLAMD_PID=""
_LAB_SPAMD_PID=""

# The clients of both scanners, for readiness probes and lab_*_scan:
#   _LAB_SCAN_PY clamd ping|scan unix:/path|inet:host:port [FILE]
#   _LAB_SCAN_PY spamd ping|scan inet:host:port [FILE [USER]]
# Prints the answer; exit 1 when there is none (no connection, timeout).
_LAB_SCAN_PY='
import socket, struct, sys
kind, what, addr = sys.argv[1:4]
path = sys.argv[4] if len(sys.argv) > 4 else None
user = sys.argv[5] if len(sys.argv) > 5 else "lab"
try:
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(addr[5:])
    else:
        host, port = addr.split(":", 1)[1].rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=30)
    data = open(path, "rb").read() if path else b""
    if kind == "clamd" and what == "ping":
        s.sendall(b"zPING\0")
    elif kind == "clamd":
        s.sendall(b"zINSTREAM\0")
        for i in range(0, len(data), 65536):
            s.sendall(struct.pack(">I", len(data[i:i + 65536])) + data[i:i + 65536])
        s.sendall(struct.pack(">I", 0))
    elif what == "ping":
        s.sendall(b"PING SPAMC/1.5\r\n\r\n")
    else:
        s.sendall(b"SYMBOLS SPAMC/1.5\r\nContent-length: %d\r\nUser: %s\r\n\r\n" % (len(data), user.encode()) + data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
        if kind == "clamd" and out.endswith(b"\0"):
            break
except OSError as e:
    print("%s: %s" % (addr, e), file=sys.stderr)
    sys.exit(1)
if not out:
    sys.exit(1)
sys.stdout.write(out.rstrip(b"\0").decode("utf-8", "replace"))
if not out.endswith(b"\n"):
    sys.stdout.write("\n")
'

# lab_eicar: the EICAR anti-virus test string, assembled from pieces.
lab_eicar() {
    # shellcheck disable=SC2016 # literal dollars
    local a='X5O!P%@AP[4\PZX54(P^)7CC)7}$' b='EICAR-STANDARD-' c='ANTIVIRUS-TEST-FILE!$H+H*'
    printf '%s%s%s' "$a" "$b" "$c"
}

# lab_gtube: SpamAssassin's generic test for unsolicited bulk email.
lab_gtube() {
    printf '%s\n' 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
}

_lab_clamd_ready() {
    _lab_pid_alive "$_LAB_CLAMD_PID" || return 99
    [[ -S $LAB_CLAMD_SOCK ]] || return 1
    [[ $(/usr/bin/python3 -c "$_LAB_SCAN_PY" clamd ping "unix:$LAB_CLAMD_SOCK" 2>/dev/null) == PONG ]]
}

# lab_clamd_start [LINE...]: write $LAB_DIR/clamd/ (clamd.conf, db/test.hdb)
# and start clamd in the namespace, in the foreground as the lab's child.
# Returns once it answers PING on $LAB_CLAMD_SOCK (about 1 s).
lab_clamd_start() {
    _lab_require_up || return 1
    if [[ -n $_LAB_CLAMD_PID ]] && _lab_pid_alive "$_LAB_CLAMD_PID"; then
        _lab_err "lab_clamd_start: clamd is already running ($_LAB_CLAMD_PID)"
        return 1
    fi
    command -v clamd >/dev/null 2>&1 || [[ -x /usr/sbin/clamd ]] || {
        _lab_err "lab_clamd_start: clamd is missing (clamav-daemon; contrib/install-deps.sh)"
        return 1
    }
    LAB_CLAMD_DIR=$LAB_DIR/clamd
    LAB_CLAMD_SOCK=$LAB_CLAMD_DIR/clamd.sock
    LAB_CLAMD_LOG=$LAB_CLAMD_DIR/clamd.log
    mkdir -p "$LAB_CLAMD_DIR/db" || return 1
    chmod 0755 "$LAB_CLAMD_DIR"
    # MD5:size:name of the 68-byte EICAR file; clamd names it
    # Eicar-Test-Signature.UNOFFICIAL (not from the official databases).
    printf '%s\n' '44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature' >"$LAB_CLAMD_DIR/db/test.hdb"
    {
        printf '# clamd of the postern lab %s (generated by lab.sh)\n' "$LAB_NS"
        printf '%s\n' "LocalSocket $LAB_CLAMD_SOCK" "LocalSocketMode 666" \
            "DatabaseDirectory $LAB_CLAMD_DIR/db" "Foreground yes" "LogFile $LAB_CLAMD_LOG" "LogTime yes" \
            "PidFile $LAB_CLAMD_DIR/clamd.pid" "StreamMaxLength 1M" "User root"
        if (($#)); then
            printf '%s\n' "$@"
        fi
    } >"$LAB_CLAMD_DIR/clamd.conf"
    rm -f "$LAB_CLAMD_SOCK"
    ip netns exec "$LAB_NS" clamd -c "$LAB_CLAMD_DIR/clamd.conf" \
        </dev/null >>"$LAB_CLAMD_DIR/clamd.out" 2>&1 &
    _LAB_CLAMD_PID=$!
    if ! _lab_poll "$LAB_DEADLINE" _lab_clamd_ready; then
        _lab_err "clamd did not come up on $LAB_CLAMD_SOCK (config $LAB_CLAMD_DIR/clamd.conf)"
        tail -n 20 "$LAB_CLAMD_LOG" "$LAB_CLAMD_DIR/clamd.out" >&2 2>/dev/null
        return 1
    fi
}

# lab_clamd_stop: SIGTERM to clamd; returns once it is gone (and so is its
# socket, which clamd removes).  Nothing to do when it does not run.
lab_clamd_stop() {
    [[ -n $_LAB_CLAMD_PID ]] || return 0
    kill -TERM "$_LAB_CLAMD_PID" 2>/dev/null || true
    if ! _lab_poll "$LAB_DEADLINE" _lab_pid_gone "$_LAB_CLAMD_PID"; then
        _lab_err "lab_clamd_stop: clamd $_LAB_CLAMD_PID ignored SIGTERM"
        kill -KILL "$_LAB_CLAMD_PID" 2>/dev/null || true
    fi
    wait "$_LAB_CLAMD_PID" 2>/dev/null || true
    _LAB_CLAMD_PID=""
    rm -f "$LAB_CLAMD_SOCK"
}

_lab_spamd_ready() {
    _lab_pid_alive "$_LAB_SPAMD_PID" || return 99
    grep -q 'server started' "$LAB_SPAMD_LOG" 2>/dev/null || return 1
    ip netns exec "$LAB_NS" /usr/bin/python3 -c "$_LAB_SCAN_PY" spamd ping "inet:127.0.0.1:$LAB_SPAMD_PORT" \
        2>/dev/null | grep -q ' PONG'
}

# lab_spamd_start [--no-wait] [PORT]: write $LAB_DIR/spamd/site (Debian's
# *.pre plus a local.cf without Bayes, DNS or RBL checks) and start spamd
# on 127.0.0.1:PORT (default 7830) in the namespace, as the lab's child,
# its children running as nobody, at most 2 of them.  Returns once it
# answers PING (about 10 s), or at once with --no-wait (then lab_spamd_wait).
lab_spamd_start() {
    _lab_require_up || return 1
    local wait=1
    if [[ ${1:-} == --no-wait ]]; then
        wait=0
        shift
    fi
    if [[ -n $_LAB_SPAMD_PID ]] && _lab_pid_alive "$_LAB_SPAMD_PID"; then
        _lab_err "lab_spamd_start: spamd is already running ($_LAB_SPAMD_PID)"
        return 1
    fi
    command -v spamd >/dev/null 2>&1 || [[ -x /usr/sbin/spamd ]] || {
        _lab_err "lab_spamd_start: spamd is missing (spamd; contrib/install-deps.sh)"
        return 1
    }
    LAB_SPAMD_DIR=$LAB_DIR/spamd
    LAB_SPAMD_PORT=${1:-7830}
    LAB_SPAMD_LOG=$LAB_SPAMD_DIR/spamd.log
    mkdir -p "$LAB_SPAMD_DIR/site" || return 1
    chmod 0755 "$LAB_SPAMD_DIR" "$LAB_SPAMD_DIR/site"
    # --siteconfigpath replaces /etc/spamassassin as a whole: the plugin
    # loads (*.pre) are copied, local.cf is ours.
    cp /etc/spamassassin/*.pre "$LAB_SPAMD_DIR/site/" || return 1
    printf '%s\n' '# spamd of the postern lab (generated by lab.sh): offline, deterministic' \
        'use_bayes 0' 'bayes_auto_learn 0' 'skip_rbl_checks 1' 'dns_available no' \
        >"$LAB_SPAMD_DIR/site/local.cf"
    : >"$LAB_SPAMD_LOG"
    chown nobody "$LAB_SPAMD_LOG"
    ip netns exec "$LAB_NS" spamd -L --siteconfigpath="$LAB_SPAMD_DIR/site" -x -u nobody \
        -i 127.0.0.1 -p "$LAB_SPAMD_PORT" --max-children=2 --pidfile "$LAB_SPAMD_DIR/spamd.pid" \
        -s "$LAB_SPAMD_LOG" </dev/null >>"$LAB_SPAMD_DIR/spamd.out" 2>&1 &
    _LAB_SPAMD_PID=$!
    if ((wait)); then
        lab_spamd_wait "$LAB_DEADLINE"
    fi
}

# lab_spamd_wait [DEADLINE_S]: wait until the spamd of lab_spamd_start answers.
lab_spamd_wait() {
    _lab_require_up || return 1
    [[ -n $_LAB_SPAMD_PID ]] || {
        _lab_err "lab_spamd_wait: spamd was not started (lab_spamd_start)"
        return 1
    }
    if ! _lab_poll "${1:-$LAB_DEADLINE}" _lab_spamd_ready; then
        _lab_err "spamd did not come up on 127.0.0.1:$LAB_SPAMD_PORT"
        tail -n 20 "$LAB_SPAMD_LOG" "$LAB_SPAMD_DIR/spamd.out" >&2 2>/dev/null
        return 1
    fi
}

# lab_spamd_stop: SIGTERM to spamd (it ends its children); returns once
# it and its children are gone.  Nothing to do when it does not run.
lab_spamd_stop() {
    [[ -n $_LAB_SPAMD_PID ]] || return 0
    local kids p
    kids=$(cat "/proc/$_LAB_SPAMD_PID/task/$_LAB_SPAMD_PID/children" 2>/dev/null) || true
    kill -TERM "$_LAB_SPAMD_PID" 2>/dev/null || true
    for p in "$_LAB_SPAMD_PID" $kids; do
        if ! _lab_poll "$LAB_DEADLINE" _lab_pid_gone "$p"; then
            _lab_err "lab_spamd_stop: spamd process $p ignored SIGTERM"
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    wait "$_LAB_SPAMD_PID" 2>/dev/null || true
    _LAB_SPAMD_PID=""
}

# lab_clamd_scan FILE: print clamd's answer to FILE sent with INSTREAM
# ("stream: OK", "stream: Eicar-Test-Signature.UNOFFICIAL FOUND").
lab_clamd_scan() {
    _lab_require_up || return 1
    /usr/bin/python3 -c "$_LAB_SCAN_PY" clamd scan "unix:$LAB_CLAMD_SOCK" "$1"
}

# lab_spamd_check FILE [USER]: print spamd's whole answer to FILE sent with
# SYMBOLS ("SPAMD/1.1 0 EX_OK", "Spam: True ; 1000.0 / 5.0", the rules).
lab_spamd_check() {
    _lab_require_up || return 1
    ip netns exec "$LAB_NS" /usr/bin/python3 -c "$_LAB_SCAN_PY" spamd scan "inet:127.0.0.1:$LAB_SPAMD_PORT" \
        "$1" "${2:-lab}"
}

# ---------------------------------------------------------------------------
# --- the remote receiver (t_ctl_maillog.sh)
#
# A second, minimal Postfix instance in the lab's namespace playing a remote
# MX that answers per recipient: smtpd on $LAB_RCV_ADDR:25 (127.0.0.11,
# host name $LAB_RCV_HOST = mx2.lab.test in the lab's DNS), MX of the
# domains in $LAB_RCV_DOMAINS (default remote2.example).  RCPT TO is checked
# with check_recipient_access against a texthash map of the lines given to
# lab_receiver_up ('ADDRESS 550 5.1.1 text', 'ADDRESS 450 4.2.0 text', ...;
# see access(5)); every other recipient of those domains is accepted and
# delivered to discard:.  It has its own config, queue and data directories
# under $LAB_RCV_DIR and its own log $LAB_RCV_MAILLOG (the lab's
# $LAB_MAILLOG only shows the sending side).  It runs in the lab's Postfix
# PID namespace; lab_down stops it (gracefully, before the lab's Postfix).
#
#   lab_receiver_up 'ADDRESS REPLY'...   start it (after lab_up); also adds
#                                        the DNS records and restarts dnsmasq
#   lab_receiver_down                    stop it (idempotent)

LAB_RCV_ADDR=127.0.0.11
LAB_RCV_HOST=mx2.lab.test
: "${LAB_RCV_DOMAINS:=remote2.example}"
LAB_RCV_DIR=""      # its files: etc/ spool/ data/ maillog
LAB_RCV_CONF=""     # its config_directory
LAB_RCV_QUEUE=""    # its queue_directory
LAB_RCV_MAILLOG=""  # its maillog_file
_LAB_RCV_UP=0

# Host PID of the receiver's master (empty if none): like _lab_master_pid,
# for the receiver's queue directory.
_lab_rcv_master_pid() {
    local nspid="" p pidns
    [[ -n $LAB_RCV_QUEUE && -r $LAB_RCV_QUEUE/pid/master.pid && -n $_LAB_INIT_PID ]] || return 0
    read -r nspid <"$LAB_RCV_QUEUE/pid/master.pid" || true
    [[ $nspid =~ ^[0-9]+$ ]] || return 0
    pidns=$(readlink "/proc/$_LAB_INIT_PID/ns/pid" 2>/dev/null) || return 0
    for p in $(_lab_ns_pids); do
        if [[ $(readlink "/proc/$p/ns/pid" 2>/dev/null) == "$pidns" &&
            $(_lab_nspid "$p") == "$nspid" ]] && _lab_pid_alive "$p"; then
            printf '%s\n' "$p"
            return 0
        fi
    done
}

_lab_rcv_ready() {
    [[ -n $(_lab_rcv_master_pid) ]] || return 99
    _lab_smtp_ready "$LAB_RCV_ADDR" 25
}

_lab_rcv_dns_ready() {
    local d
    for d in $LAB_RCV_DOMAINS; do
        _LAB_DIG_LIFETIME=2 lab_dig "$d" MX 2>/dev/null | grep -qF " $LAB_RCV_HOST." || return 1
    done
    _LAB_DIG_LIFETIME=2 lab_dig "$LAB_RCV_HOST" A 2>/dev/null | grep -qxF "$LAB_RCV_ADDR"
}

_lab_rcv_write_config() {
    local t=$((EPOCHSECONDS - 10)) line
    mkdir -p "$LAB_RCV_CONF" "$LAB_RCV_QUEUE" "$LAB_RCV_DIR/data" || return 1
    chmod 0755 "$LAB_RCV_DIR"
    chown postfix:postfix "$LAB_RCV_DIR/data"
    for line in "$@"; do
        if [[ $line == *$'\n'* ]]; then
            _lab_err "lab_receiver_up: one access map line per argument, please"
            return 1
        fi
    done
    if (($#)); then
        printf '%s\n' "$@" >"$LAB_RCV_CONF/rcpt_access"
    else
        : >"$LAB_RCV_CONF/rcpt_access"
    fi
    cat >"$LAB_RCV_CONF/main.cf" <<EOF
# Remote receiver of the postern lab $LAB_NS (generated by lab.sh,
# lab_receiver_up): answers RCPT TO from rcpt_access, discards the rest.
compatibility_level = 3.6
queue_directory = $LAB_RCV_QUEUE
data_directory = $LAB_RCV_DIR/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = $LAB_NS/receiver
maillog_file = $LAB_RCV_MAILLOG
maillog_file_prefixes = $LAB_DIR

myhostname = $LAB_RCV_HOST
mydomain = lab.test
myorigin = \$myhostname
smtpd_banner = \$myhostname ESMTP postern-lab-receiver
inet_interfaces = $LAB_RCV_ADDR
inet_protocols = ipv4
mynetworks = $LAB_RCV_ADDR/32

mydestination =
relay_domains = ${LAB_RCV_DOMAINS// /, }
relay_recipient_maps =
local_recipient_maps =
alias_maps =
alias_database =
relay_transport = discard:remote receiver of the lab
default_transport = discard:remote receiver of the lab
local_transport = error:5.1.1 local delivery is disabled in the lab
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:$LAB_RCV_CONF/rcpt_access, permit
smtp_tls_security_level = none
smtpd_tls_security_level = none

in_flow_delay = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 5s
delay_warning_time = 0
biff = no
append_dot_mydomain = no
EOF
    cat >"$LAB_RCV_CONF/master.cf" <<EOF
# Remote receiver of the postern lab (generated by lab.sh).  chroot = n.
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    # Backdated, or each daemon stalls ~2 s on fresh files (_lab_cool_config).
    find "$LAB_RCV_CONF" -type f -exec touch -d "@$t" {} +
}

_lab_rcv_cmd() {
    printf '+ postfix -c %s %s\n' "$LAB_RCV_CONF" "$*" >>"$LAB_RCV_DIR/postfix-cmd.log"
    ip netns exec "$LAB_NS" nsenter --target "$_LAB_INIT_PID" --pid -- \
        postfix -c "$LAB_RCV_CONF" "$@" \
        </dev/null >>"$LAB_RCV_DIR/postfix-cmd.log" 2>&1
}

_lab_rcv_tail_logs() {
    local f
    for f in "$LAB_RCV_MAILLOG" "$LAB_RCV_DIR/postfix-cmd.log"; do
        if [[ -s $f ]]; then
            printf -- '--- last lines of %s ---\n' "$f" >&2
            tail -n 25 "$f" >&2
        fi
    done
}

# lab_receiver_up 'ADDRESS REPLY'...: start the remote receiver (see above)
# with these recipient access map lines, e.g.
#   lab_receiver_up 'gone@remote2.example 550 5.1.1 No such user here'
# and point the MX of $LAB_RCV_DOMAINS at it (lab_dns_add + lab_dns_restart).
# Returns once it greets on $LAB_RCV_ADDR:25 and the DNS answers.
lab_receiver_up() {
    _lab_require_up || return 1
    if ((_LAB_RCV_UP)); then
        _lab_err "lab_receiver_up: the receiver is already up"
        return 1
    fi
    local d
    LAB_RCV_DIR=$LAB_DIR/receiver
    LAB_RCV_CONF=$LAB_RCV_DIR/etc
    LAB_RCV_QUEUE=$LAB_RCV_DIR/spool
    LAB_RCV_MAILLOG=$LAB_RCV_DIR/maillog
    # Postfix wants inet_interfaces to be an address of an interface.
    if ! ip -n "$LAB_NS" -4 addr show dev lo | grep -qF " $LAB_RCV_ADDR/"; then
        ip -n "$LAB_NS" addr add "$LAB_RCV_ADDR/8" dev lo || return 1
    fi
    _lab_rcv_write_config "$@" || return 1
    lab_dns_add "host-record=$LAB_RCV_HOST,$LAB_RCV_ADDR" || return 1
    for d in $LAB_RCV_DOMAINS; do
        lab_dns_add "mx-host=$d,$LAB_RCV_HOST,10" || return 1
    done
    lab_dns_restart || return 1
    if ! _lab_poll "$LAB_DEADLINE" _lab_rcv_dns_ready; then
        _lab_err "lab_receiver_up: the lab's DNS does not name $LAB_RCV_HOST as MX of $LAB_RCV_DOMAINS"
        return 1
    fi
    _LAB_RCV_UP=1
    if ! _lab_rcv_cmd start; then
        _lab_err "lab_receiver_up: postfix start failed"
        _lab_rcv_tail_logs
        return 1
    fi
    if ! _lab_poll "$LAB_DEADLINE" _lab_rcv_ready; then
        _lab_err "lab_receiver_up: the receiver does not answer on $LAB_RCV_ADDR:25"
        _lab_rcv_tail_logs
        return 1
    fi
}

# SIGTERM to the receiver's master (it passes it on to its children); wait
# until the master and its children are gone.
_lab_receiver_stop() {
    ((_LAB_RCV_UP)) || return 0
    _LAB_RCV_UP=0
    local master p kids rc=0
    master=$(_lab_rcv_master_pid)
    [[ -n $master ]] || return 0
    kids=$(_lab_master_children "$master")
    kill -TERM "$master" 2>/dev/null || true
    for p in "$master" $kids; do
        if ! _lab_poll 20 _lab_pid_gone "$p"; then
            _lab_err "lab_receiver_down: receiver process $p ignored SIGTERM"
            rc=1
        fi
    done
    return "$rc"
}

# lab_receiver_down: stop the receiver of lab_receiver_up (idempotent; its
# files stay in $LAB_RCV_DIR until lab_down).
lab_receiver_down() {
    _lab_require_up || return 1
    _lab_receiver_stop
}
