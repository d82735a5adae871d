/* test_check.h: the pass / fail tally the C test programs share (test_kernel.c, test_pool.c).
 * Each ends by printing "N passed, M failed", the line tests/test_kernel.py reads. */
#ifndef GANPACK_TEST_CHECK_H
#define GANPACK_TEST_CHECK_H

#include <stdio.h>

typedef struct {
    int passed;
    int failed;
} test_counts;

static void check(test_counts *counts, int ok, const char *what) {
    if (ok) {
        counts->passed++;
    } else {
        counts->failed++;
        printf("FAIL: %s\n", what);
    }
}

#endif /* GANPACK_TEST_CHECK_H */
