/* counters_sqlite.c: placeholder */
