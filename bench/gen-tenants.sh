#!/usr/bin/env bash
# gen-tenants.sh: writes N tenant rule files with A accounts each into DIR,
# shaped like real ones (2 domains, 2 client networks, an outbound pool,
# 2 DKIM keys, limits, a paced account, a "*" account), for load benchmarks.
# usage: bench/gen-tenants.sh DIR N [ACCOUNTS=10]
set -euo pipefail
dir=${1:?usage: gen-tenants.sh DIR N [ACCOUNTS]} n=${2:?} accounts=${3:-10}
mkdir -p "$dir"
awk -v dir="$dir" -v n="$n" -v na="$accounts" 'BEGIN {
    for (i = 0; i < n; i++) {
        f = sprintf("%s/t%05d.yaml", dir, i)
        d = sprintf("t%05d.example", i)
        printf "tenant: t%05d\n", i > f
        printf "domains: [%s, news.%s]\n", d, d > f
        # two networks per tenant: an IPv4 /28 and an IPv6 /56, all disjoint
        printf "clients: [10.%d.%d.%d/28, \"2001:db8:%x:%x00::/56\"]\n", int(i / 4096), int(i / 16) % 256, (i % 16) * 16, int(i / 256), i % 256 > f
        printf "outbound: {transport: t%05d-out, ips: [100.%d.%d.1], helo: mx.%s}\n", i, int(i / 256), i % 256, d > f
        printf "dkim:\n  - {domain: %s, selector: s2026, key: /etc/postern/keys/%s.rsa.pem}\n", d, d > f
        printf "  - {domain: %s, selector: e2026, key: /etc/postern/keys/%s.ed25519.pem}\n", d, d > f
        printf "limits: {messages: [2000/hour, 20000/day], recipients: 100000/day, bytes: 5G/day, message_size: 25M, recipients_per_message: 200}\n" > f
        printf "accounts:\n" > f
        printf "  news@news.%s: {pace: {rate: 600/hour, burst: 50, mode: hold}, limits: {messages: unlimited}}\n", d > f
        for (a = 1; a < na - 1; a++)
            printf "  user%d@%s: {limits: {messages: 500/day, recipients: 2000/day}}\n", a, d > f
        printf "  \"*\": {limits: {messages: 200/day}}\n" > f
        close(f)
    }
}'
