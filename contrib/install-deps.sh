#!/usr/bin/env bash
# install-deps.sh: installs, with apt-get, the Debian packages postern needs:
#   build  compilers, autotools and the -dev libraries
#   lab    the real peers of the integration lab (Postfix, dnsmasq, swaks,
#          Cyrus SASL tools, dkimverify, openssl for test keys, clamd and
#          spamd) and valgrind
#   all    both (default)
# Packages already installed are not touched.  Services are not started:
# Postfix is installed with "No configuration" when it is new, and a
# temporary policy-rc.d keeps maintainer scripts from starting daemons.
set -euo pipefail

build_pkgs=(autoconf automake make gcc pkg-config libc6-dev
    libyaml-dev libjansson-dev libsqlite3-dev zlib1g-dev libevent-dev libssl-dev check tzdata
    libmilter-dev libopendkim-dev libspf2-dev libopendmarc-dev publicsuffix
    clang libclang-rt-14-dev)
lab_pkgs=(postfix dnsmasq-base swaks time sasl2-bin libsasl2-modules iproute2 procps
    util-linux python3 python3-dnspython python3-dkim python3-nacl sqlite3 valgrind openssl
    clamav-daemon spamd)

want=()
case "${1:-all}" in
    build) want=("${build_pkgs[@]}") ;;
    lab) want=("${lab_pkgs[@]}") ;;
    all) want=("${build_pkgs[@]}" "${lab_pkgs[@]}") ;;
    *) echo "usage: $0 [build|lab|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
fi
guard=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from postern install-deps.sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
fi
cleanup() { [ -n "$guard" ] && rm -f "$guard"; }
trap cleanup EXIT
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
