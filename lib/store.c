/* store.c: placeholder until the module lands. */
