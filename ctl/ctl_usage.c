/* ctl_usage.c: (being written) */
