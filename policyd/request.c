/* request.c: (being written) */
