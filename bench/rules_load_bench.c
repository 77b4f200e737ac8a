/* rules_load_bench.c: loads a rules directory (see gen-tenants.sh) and
 * reports the load time, the peak memory of the process, and the cost of
 * the identification lookups (login, sender domain, client address) over
 * the loaded index.  usage: rules_load_bench DIR [LOOKUPS] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "ptime.h"
#include "rules.h"
#include "rules_index.h"
#include "rules_load.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: rules_load_bench DIR [LOOKUPS]\n");
        return 2;
    }
    long lookups = argc > 2 ? atol(argv[2]) : 1000000;
    struct diags d;
    struct rusage ru;
    diags_init(&d);
    int64_t t0 = clock_mono_us();
    struct rules *r = rules_load(argv[1], &d, NULL);
    int64_t t1 = clock_mono_us();
    if (r == NULL) {
        diags_print(&d, stderr);
        return 1;
    }
    getrusage(RUSAGE_SELF, &ru);
    size_t accounts = 0;
    for (size_t i = 0; i < r->n_tenants; i++)
        accounts += r->tenants[i].n_accounts;
    printf("tenants=%zu accounts=%zu load_s=%.3f peak_rss_mb=%.1f\n", r->n_tenants, accounts,
           (double)(t1 - t0) / 1e6, (double)ru.ru_maxrss / 1024.0);

    /* Keys are prepared first, so only the lookups are timed. */
    enum { KEYS = 4096 };
    static char logins[KEYS][64];
    static struct ipaddr addrs[KEYS];
    for (size_t i = 0; i < KEYS; i++) {
        size_t t = (i * 7919) % r->n_tenants;
        char ip[64];
        snprintf(logins[i], sizeof logins[i], "user%zu@t%05zu.example", 1 + i % 8, t);
        snprintf(ip, sizeof ip, "10.%zu.%zu.%zu", t / 4096, (t / 16) % 256, (t % 16) * 16 + 3);
        ipaddr_parse(ip, &addrs[i]);
    }
    size_t found = 0;
    int64_t t2 = clock_mono_us();
    for (long i = 0; i < lookups; i++)
        found += rules_find_login(r, logins[i % KEYS]) != NULL;
    int64_t t3 = clock_mono_us();
    for (long i = 0; i < lookups; i++)
        found += rules_find_client(r, &addrs[i % KEYS]) != NULL;
    int64_t t4 = clock_mono_us();
    printf("lookups=%ld found=%zu login_ns=%.0f client_ns=%.0f\n", lookups, found,
           (double)(t3 - t2) * 1000.0 / (double)lookups, (double)(t4 - t3) * 1000.0 / (double)lookups);
    rules_unref(r);
    diags_free(&d);
    return 0;
}
