/* counters.c: placeholder until the module lands. */
