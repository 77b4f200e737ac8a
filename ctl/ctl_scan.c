/* ctl_scan.c: posternctl scanners: is each scanner postern.yaml names
 * there and answering?  clamd's VERSION and spamd's PING over a connection
 * of their own (milter/scanner.c), with the configured timeouts; exit 1
 * when a configured scanner does not answer, so that a monitoring check
 * can run it. */
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "ctl.h"
#include "ptime.h"
#include "scanner.h"

int ctl_scanners(struct ctl *c, int argc, char **argv)
{
    bool json;
    int rc = ctl_json_opts(c, argc, argv, &json);
    if (rc >= 0)
        return rc;
    if (argc != optind)
        return ctl_bad_usage(c);
    if (ctl_load_conf(c) != 0)
        return 1;
    const struct conf_scanner *cs[2] = { &c->conf.clamd, &c->conf.spamd };
    rc = 0;
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
            int64_t t0 = clock_mono_us();
            bool ok = s != NULL && scanner_ping(s, answer, sizeof answer, &err);
            ms = (long long)((clock_mono_us() - t0) / 1000);
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
