/* ctl_stats.c: posternctl stats (placeholder, being written). */
#include "ctl.h"

int ctl_stats(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "posternctl: stats: not built yet\n");
    return ctl_bad_usage(c);
}
