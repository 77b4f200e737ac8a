# ctl_lib.sh: what the tests of posternctl's commands (tests/ctl_*.sh)
# share, sourced by each: the binary under test, a temporary directory,
# and the check/run assertions of the scripts written in that style.
#
# ctl_lib_binary NAME [BUILD_DIR]: sets top (the source tree) and ctl
# (the posternctl to test: BUILD_DIR's, else $POSTERN_BUILD's, else
# $POSTERNCTL (make check sets it), else build/werror's); exits 99 when the
# binary is missing, 77 (skipped) without sqlite3 or python3.
# shellcheck shell=bash
ctl_lib_binary() {
    CTL_LIB_NAME=$1
    top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ $# -ge 2 ]; then
        ctl=$2/ctl/posternctl
    elif [ -n "${POSTERN_BUILD:-}" ]; then
        ctl=$POSTERN_BUILD/ctl/posternctl
    elif [ -n "${POSTERNCTL:-}" ]; then
        ctl=$POSTERNCTL
    else
        ctl=$top/build/werror/ctl/posternctl
    fi
    [ -x "$ctl" ] || { echo "$CTL_LIB_NAME: no $ctl (build first)"; exit 99; }
    command -v sqlite3 >/dev/null || { echo "$CTL_LIB_NAME: sqlite3 is needed"; exit 77; }
    command -v python3 >/dev/null || { echo "$CTL_LIB_NAME: python3 is needed"; exit 77; }
}

# ctl_lib_init NAME [BUILD_DIR]: ctl_lib_binary, and tmp (a directory
# removed at exit).
ctl_lib_init() {
    ctl_lib_binary "$@"
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064 # $tmp is fixed now
    trap "rm -rf '$tmp'" EXIT
}

# check DESCRIPTION CMD...: count CMD's success or failure; a failure
# shows the last run's output.
passed=0 failed=0
check() {
    local what=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        printf 'FAIL: %s\n' "$what"
        [ -f "$tmp/out" ] && sed 's/^/  out: /' "$tmp/out" | head -30
        [ -f "$tmp/err" ] && sed 's/^/  err: /' "$tmp/err" | head -5
    fi
    return 0
}
# run STATUS ARGS...: posternctl -c $conf ARGS into $tmp/out and $tmp/err;
# true when it exits with STATUS.
# shellcheck disable=SC2154 # conf: the calling script's postern.yaml
run() {
    local want=$1 rc=0
    shift
    "$ctl" -c "$conf" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" = "$want" ]
}
has() { grep -qE -- "$1" "$tmp/out"; }
err_has() { grep -qE -- "$1" "$tmp/err"; }
# ctl_lib_done: the summary line; the script's status.
ctl_lib_done() {
    printf '%s: %d passed, %d failed\n' "$CTL_LIB_NAME" "$passed" "$failed"
    [ "$failed" = 0 ]
}
