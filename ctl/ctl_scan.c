/* ctl_scan.c: posternctl scanners: is each scanner postern.yaml names
 * there and answering?  clamd's VERSION and spamd's PING over a connection
 * of their own (milter/scanner.c), with the configured timeouts; exit 1
 * when a configured scanner does not answer, so that a monitoring check
 * can run it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "scanner.h"

static long long ctl_scan_ms(const struct timespec *a, const struct timespec *b)
{
    return (long long)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

int ctl_scanners(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },         { "config", required_argument, NULL, 'c' },
        { "rules", required_argument, NULL, 'r' },  { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool json = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
        if (ch == 'j') {
            json = true;
        } else if (ch == 'h') {
            printf("usage: posternctl %s\n", c->usage);
            return 0;
        } else if (!ctl_common_option(c, ch, optarg)) {
            return ctl_bad_usage(c);
        }
    }
    if (argc != optind)
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    const struct conf_scanner *cs[2] = { &c->conf.clamd, &c->conf.spamd };
    int rc = 0;
    if (json)
        fputs("[", stdout);
    for (int i = 0; i < 2; i++) {
        const char *name = i == 0 ? "clamd" : "spamd", *status = "off";
        char answer[256] = "";
        struct buf err;
        buf_init(&err);
        long long ms = 0;
        if (cs[i]->socket != NULL) {
            struct scanner_cfg sc = { i == 0 ? SCANNER_CLAMD : SCANNER_SPAMD, cs[i]->socket,
                                      cs[i]->connect_timeout_ms, cs[i]->timeout_ms, 1, 0 };
            struct scanner *s = scanner_new(&sc, &err);
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            bool ok = s != NULL && scanner_ping(s, answer, sizeof answer, &err);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            ms = ctl_scan_ms(&t0, &t1);
            scanner_free(s);
            status = ok ? "ok" : "down";
            if (!ok)
                rc = 1;
        }
        if (json) {
            printf("%s\n  {\"scanner\": \"%s\", \"socket\": ", i ? "," : "", name);
            ctl_put_json(stdout, cs[i]->socket);
            printf(", \"status\": \"%s\", \"ms\": %lld, \"answer\": ", status, ms);
            ctl_put_json(stdout, answer[0] ? answer : NULL);
            fputs(", \"error\": ", stdout);
            ctl_put_json(stdout, err.len ? err.data : NULL);
            fputs("}", stdout);
        } else if (cs[i]->socket == NULL) {
            printf("%s  not configured (no %s scanning)\n", name, i == 0 ? "anti-virus" : "anti-spam");
        } else {
            printf("%s  %s  %s  %lld ms  ", name, cs[i]->socket, status, ms);
            ctl_put_field(stdout, err.len ? err.data : answer);
            fputc('\n', stdout);
        }
        buf_free(&err);
    }
    if (json)
        fputs("\n]\n", stdout);
    return rc;
}
