/* test_pool.c: the worker pool survives a lost wake-up (dense_stack_pool.c, "Waiting:").
 *
 * White-box: it includes dense_stack_pool.c itself and breaks the hand-off on purpose, the way a
 * machine that reorders a store and a later load (qemu-aarch64 7.2) can: once the caller's
 * signal to a sleeping worker is skipped, once the worker's signal to the sleeping caller. Each
 * run must still finish, within a bound far below a hang; a pool whose sleeps are unbounded waits
 * forever, and the watchdog fails the test after GP_TEST_WATCHDOG_S instead of hanging.
 * Standalone (nothing else of the library is linked), from csrc/:
 *   cc -std=c11 -O2 -I. tests/test_pool.c -pthread -o build/test_pool && ./build/test_pool
 * Last line: "N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L
#include "../dense_stack_pool.c"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "test_check.h" /* test_counts, check */

#define GP_TEST_WATCHDOG_S 20u          /* a run this late is a hang */
#define GP_TEST_LATE_NS 1000000000LL    /* a run this late fails (the longest nap is 128 ms) */
#define GP_TEST_SETTLE_NS 20000000L     /* 20 ms: long enough for a sleeper to be in its wait */


static void sleep_ns(long ns) {
    const struct timespec t = {0, ns};
    nanosleep(&t, NULL);
}

static void on_watchdog(int signal_number) {
    (void)signal_number;
    static const char message[] = "FAIL: a pool run hung (a lost wake-up was never recovered)\n";
    if (write(STDOUT_FILENO, message, sizeof message - 1) < 0) _exit(1);
    _exit(1);
}

/* What a part sees: the pool (to break the caller's wake-up from inside the worker's part) and
   how many parts ran. Passed through part->output, which no part here writes. */
typedef struct {
    gp_pool *pool;
    int drop_caller_wakeup;
    atomic_int parts_run;
} test_context;

/* The worker's part (row_begin 1) may, once the caller is about to sleep and has had time to
   get there, clear caller_sleeping: the worker then skips the signal, as if it had read a stale
   0. */
static void run_part(gp_part *part) {
    test_context *context = part->output;
    if (part->row_begin == 1 && context->drop_caller_wakeup) {
        while (!atomic_load(&context->pool->caller_sleeping)) cpu_relax();
        sleep_ns(GP_TEST_SETTLE_NS);
        atomic_store(&context->pool->caller_sleeping, 0);
    }
    atomic_fetch_add(&context->parts_run, 1);
}

/* One run of two parts (one here, one on the worker); returns its wall time in ns. */
static long long timed_run(gp_pool *pool, test_context *context) {
    gp_part parts[2];
    memset(parts, 0, sizeof parts);
    for (int i = 0; i < 2; i++) {
        parts[i].output = context;
        parts[i].row_begin = i;
        parts[i].row_end = i + 1;
    }
    const long long start = gp_now_ns();
    if (!gp_pool_try_acquire(pool)) return -1;
    gp_pool_run(pool, parts, 2);
    gp_pool_release(pool);
    return gp_now_ns() - start;
}

/* Runs the pool once, timed, and checks that both parts ran in time although `whose` wake-up
   signal was lost; frees the pool. */
static void check_run_finishes(test_counts *counts, test_context *context, const char *whose) {
    const long long elapsed = timed_run(context->pool, context);
    char what[128];
    snprintf(what, sizeof what, "%s wake-up lost: the run took %.1f ms, %d of 2 parts ran", whose,
             1e-6 * (double)elapsed, atomic_load(&context->parts_run));
    check(counts, elapsed >= 0 && elapsed < GP_TEST_LATE_NS && atomic_load(&context->parts_run) == 2, what);
    printf("%s\n", what);
    gp_pool_free(context->pool);
}

/* The caller posts to a sleeping worker but reads `awake` as 1 (stale), so it sends no signal. */
static void test_lost_worker_wakeup(test_counts *counts) {
    test_context context = {NULL, 0, 0};
    check(counts, gp_pool_create(1, run_part, &context.pool) == GP_OK, "create");
    if (context.pool == NULL) return;
    gp_worker *worker = &context.pool->workers[0];
    while (atomic_load(&worker->awake)) sleep_ns(1000000L); /* its 100 us spin ends, it sleeps */
    sleep_ns(GP_TEST_SETTLE_NS);
    atomic_store(&worker->awake, 1);
    check_run_finishes(counts, &context, "worker's");
}

/* The worker finishes while the caller sleeps but reads caller_sleeping as 0, so it sends no
   signal. */
static void test_lost_caller_wakeup(test_counts *counts) {
    test_context context = {NULL, 1, 0};
    check(counts, gp_pool_create(1, run_part, &context.pool) == GP_OK, "create");
    if (context.pool == NULL) return;
    check_run_finishes(counts, &context, "caller's");
}

int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_watchdog;
    sigaction(SIGALRM, &action, NULL);
    alarm(GP_TEST_WATCHDOG_S);
    test_counts counts = {0, 0};
    test_lost_worker_wakeup(&counts);
    test_lost_caller_wakeup(&counts);
    printf("%d passed, %d failed\n", counts.passed, counts.failed);
    return counts.failed == 0 ? 0 : 1;
}
