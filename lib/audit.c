/* audit.c: placeholder until the module lands. */
