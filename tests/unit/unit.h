/* unit.h: the common frame of postern's Check-based unit tests: each test
 * file defines its suite with UNIT_MAIN(name, add_tests) and runs as its
 * own program under "make check" (with ASan/UBSan in tests/run). */
#ifndef POSTERN_UNIT_H
#define POSTERN_UNIT_H
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Remove a file or a directory tree (a test's temporary files). */
static inline void unit_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char child[512];
        if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child)
            continue;
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
            unit_rm_tree(child);
        else
            unlink(child);
    }
    closedir(d);
    rmdir(path);
}

#define UNIT_MAIN(name, adder)                                        \
    int main(void)                                                    \
    {                                                                 \
        Suite *s = suite_create(name);                                \
        TCase *tc = tcase_create("core");                             \
        tcase_set_timeout(tc, 60);                                    \
        adder(tc);                                                    \
        suite_add_tcase(s, tc);                                       \
        SRunner *sr = srunner_create(s);                              \
        srunner_run_all(sr, CK_NORMAL);                               \
        int failed = srunner_ntests_failed(sr);                       \
        srunner_free(sr);                                             \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;             \
    }

#endif
