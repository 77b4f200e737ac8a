/* decide.c: (being written) */
