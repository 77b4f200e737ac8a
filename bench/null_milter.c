/* null_milter.c: a milter that does nothing, for bench/run-milter.sh: it
 * negotiates what postern-milter negotiates (no reply for the stages that
 * always continue, the same steps skipped) and lets every message through
 * untouched, so that its run measures what any milter costs Postfix here
 * (smtpd and cleanup talking the milter protocol, libmilter's threads),
 * before any work of the milter's own.  Built by the benchmark script:
 *   cc -O2 -o null-milter bench/null_milter.c -lmilter -lpthread
 * usage: null-milter SOCKET   (libmilter's syntax: unix:/path, inet:port@host) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <libmilter/mfapi.h>

#define NOREPLY \
    (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY)

static sfsistat nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2, unsigned long f3,
                             unsigned long *pf0, unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
    (void)ctx;
    (void)f2;
    (void)f3;
    *pf0 = f0 & SMFIF_ADDHDRS;
    *pf1 = f1 & (NOREPLY | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_HDR_LEADSPC);
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

static sfsistat nm_noreply(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_NOREPLY;
}

static sfsistat nm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    (void)host;
    (void)addr;
    return nm_noreply(ctx);
}

static sfsistat nm_one(SMFICTX *ctx, char *s)
{
    (void)s;
    return nm_noreply(ctx);
}

static sfsistat nm_args(SMFICTX *ctx, char **argv)
{
    (void)argv;
    return nm_noreply(ctx);
}

static sfsistat nm_header(SMFICTX *ctx, char *name, char *value)
{
    (void)name;
    (void)value;
    return nm_noreply(ctx);
}

static sfsistat nm_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
    (void)data;
    (void)len;
    return nm_noreply(ctx);
}

static sfsistat nm_continue(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

int main(int argc, char **argv)
{
    struct smfiDesc d = {
        .xxfi_name = "null-milter",
        .xxfi_version = SMFI_VERSION,
        .xxfi_flags = SMFIF_ADDHDRS,
        .xxfi_connect = nm_connect,
        .xxfi_helo = nm_one,
        .xxfi_envfrom = nm_args,
        .xxfi_envrcpt = nm_args,
        .xxfi_header = nm_header,
        .xxfi_eoh = nm_noreply,
        .xxfi_body = nm_body,
        .xxfi_eom = nm_continue,
        .xxfi_abort = nm_continue,
        .xxfi_close = nm_continue,
        .xxfi_negotiate = nm_negotiate,
    };
    if (argc != 2) {
        fprintf(stderr, "usage: null-milter SOCKET\n");
        return 2;
    }
    umask(0); /* a unix socket Postfix's processes can connect to */
    if (smfi_register(d) != MI_SUCCESS || smfi_setconn(argv[1]) != MI_SUCCESS || smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "null-milter: cannot listen on %s\n", argv[1]);
        return 1;
    }
    fprintf(stderr, "null-milter: event=start listen=%s\n", argv[1]);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
