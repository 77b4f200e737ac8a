/* ctl_audit.c: (being written) */
