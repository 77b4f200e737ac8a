/* conf.c: placeholder until the module lands. */
