/* dense_stack_pool.c: the persistent worker threads of a threaded stack (gp_stack_create_threads).
 *
 * Each stack owns its own pool (no global state). A worker is started once, at create time, and
 * lives until gp_stack_free. Hand-off per run: the caller writes a part into the worker's slot,
 * bumps the slot's `posted` counter, runs its own part, then waits until `finished` catches up.
 *
 * Waiting: a worker that has just finished a part spins (pause instruction) for GP_WORKER_SPIN_NS
 * watching `posted`, so back-to-back runs hand off in well under a microsecond; after that it
 * sleeps on a condition variable. The caller likewise spins up to GP_CALLER_SPIN_NS for its
 * workers, then sleeps. `posted` / `finished` and the "about to sleep" flags are sequentially
 * consistent C11 atomics, so the part a worker reads is the one the caller wrote, and a signal is
 * sent exactly when the other side may be asleep; one mutex pairs with the two condition variables.
 * That signal rests on one ordering argument (each side stores its flag, then loads the other's),
 * and not every machine keeps it: qemu-aarch64 7.2 lets such a load pass the store before it (a
 * store-buffering litmus test: 144 forbidden outcomes in 200,000 runs, 0 natively on x86), and
 * the ARM64 suite under it lost a wake-up and hung about once in ten runs. So no sleep is
 * unbounded: each is a timed wait (CLOCK_MONOTONIC where the condition variable takes it) that
 * re-checks its condition every GP_NAP_NS, and a lost wake-up costs a couple of milliseconds once,
 * never a hang. An idle worker doubles its nap up to GP_IDLE_NAP_MAX_NS, so a pool nobody uses
 * wakes each worker about 8 times a second, not 500.
 *
 * Concurrency: `busy` is taken with trylock by the one caller using the workers; a second caller
 * that finds it taken runs single-threaded instead of queueing. After fork() the child has no
 * workers: the pool remembers the creating process and refuses itself in any other.
 */
#define _POSIX_C_SOURCE 200809L
#include "dense_stack_pool.h"
#include "gp_isa.h" /* GP_HAVE_X86: the pause instruction */

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define GP_WORKER_SPIN_NS 100000 /* 100 us awake after each part, then sleep */
#define GP_CALLER_SPIN_NS 50000  /* the caller's own wait for its workers, then sleep */
/* The safety net under every sleep: a sleeper re-checks its condition at least this often, so a
   lost wake-up costs at most this, once. Far above a wake-up's cost (a few microseconds), far
   below anything a caller would take for a hang. */
#define GP_NAP_NS 2000000LL
/* An idle worker's longest nap (2 ms doubled six times). A wake-up can be lost only as the
   worker falls asleep (later, its `awake` = 0 is long visible), which the first, short nap covers. */
#define GP_IDLE_NAP_MAX_NS (GP_NAP_NS << 6)

typedef struct {
    pthread_t thread;
    struct gp_pool *pool;
    gp_part *part;            /* the current part; written by the caller before `posted` */
    atomic_uint posted;       /* parts handed to this worker so far */
    atomic_uint finished;     /* parts this worker has completed */
    atomic_int awake;         /* 0 from just before it blocks on pool->wake until it wakes */
    gp_part empty_part;       /* no rows: what gp_pool_wake hands this worker */
} gp_worker;

struct gp_pool {
    int n_workers;
    int n_started;             /* workers whose thread exists (joined by gp_pool_free) */
    pid_t owner;               /* the process that started the workers */
    gp_part_fn run;
    atomic_int stop;
    atomic_int caller_sleeping; /* the caller waits (or is about to) on `done` */
    pthread_mutex_t busy;      /* held by the one caller using the workers */
    pthread_mutex_t lock;
    clockid_t nap_clock;       /* the clock of the two condition variables' deadlines */
    pthread_cond_t wake;       /* workers sleep here */
    pthread_cond_t done;       /* the caller sleeps here */
    gp_worker *workers;        /* (n_workers) */
};

long long gp_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline void cpu_relax(void) {
#ifdef GP_HAVE_X86
    __builtin_ia32_pause();
#endif
}

/* With pool->lock held: sleeps on `cond` until signalled or nap_ns pass. The caller re-checks its
   condition either way (a timeout, a spurious wake-up or a signal look the same). */
static void nap(gp_pool *pool, pthread_cond_t *cond, long long nap_ns) {
    struct timespec deadline;
    clock_gettime(pool->nap_clock, &deadline);
    const long long nsec = deadline.tv_nsec + nap_ns;
    deadline.tv_sec += (time_t)(nsec / 1000000000LL);
    deadline.tv_nsec = (long)(nsec % 1000000000LL);
    pthread_cond_timedwait(cond, &pool->lock, &deadline);
}

/* Spins until *counter != not_this (returns 1) or spin_ns pass (returns 0). */
static int spin_until_changed(atomic_uint *counter, unsigned not_this, const atomic_int *stop,
                              long long spin_ns) {
    long long deadline = 0;
    for (unsigned spins = 0;; spins++) {
        if (atomic_load_explicit(counter, memory_order_acquire) != not_this) return 1;
        if (stop != NULL && atomic_load_explicit(stop, memory_order_relaxed)) return 0;
        if ((spins & 63u) == 0) { /* read the clock now and then only */
            const long long t = gp_now_ns();
            if (deadline == 0) deadline = t + spin_ns;
            else if (t > deadline) return 0;
        }
        cpu_relax();
    }
}

static void *worker_main(void *arg) {
    gp_worker *worker = arg;
    gp_pool *pool = worker->pool;
    unsigned seen = 0; /* parts taken so far */
    for (;;) {
        if (!spin_until_changed(&worker->posted, seen, &pool->stop, GP_WORKER_SPIN_NS)) {
            /* Store awake = 0, then read posted; the caller stores posted, then reads awake
               (all sequentially consistent): one of the two sees the other's write, so either
               the new part is seen here or the caller signals. The lock closes the gap between
               the check and the wait; the nap's timeout covers a machine that breaks the
               ordering (see "Waiting:" above). */
            pthread_mutex_lock(&pool->lock);
            atomic_store(&worker->awake, 0);
            long long nap_ns = GP_NAP_NS;
            while (atomic_load(&worker->posted) == seen &&
                   !atomic_load_explicit(&pool->stop, memory_order_relaxed)) {
                nap(pool, &pool->wake, nap_ns);
                if (nap_ns < GP_IDLE_NAP_MAX_NS) nap_ns *= 2;
            }
            atomic_store(&worker->awake, 1);
            pthread_mutex_unlock(&pool->lock);
        }
        const unsigned posted = atomic_load_explicit(&worker->posted, memory_order_acquire);
        if (posted == seen) break; /* stopped with nothing to do */
        seen = posted;
        pool->run(worker->part);
        atomic_store(&worker->finished, seen); /* same pairing as awake / posted above */
        if (atomic_load(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_broadcast(&pool->done);
            pthread_mutex_unlock(&pool->lock);
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- create / free */

gp_status gp_pool_create(int n_workers, gp_part_fn run, gp_pool **out) {
    *out = NULL;
    gp_pool *pool = calloc(1, sizeof *pool);
    gp_worker *workers = calloc((size_t)n_workers, sizeof *workers);
    if (pool == NULL || workers == NULL) {
        free(pool);
        free(workers);
        return GP_ERR_NOMEM;
    }
    pool->n_workers = n_workers;
    pool->owner = getpid();
    pool->run = run;
    pool->workers = workers;
    atomic_init(&pool->stop, 0);
    atomic_init(&pool->caller_sleeping, 0);
    pthread_condattr_t cond_attr;
    const int have_attr = pthread_condattr_init(&cond_attr) == 0;
    pool->nap_clock = CLOCK_REALTIME; /* every POSIX condition variable's default */
#if defined(_POSIX_CLOCK_SELECTION) && _POSIX_CLOCK_SELECTION >= 0
    /* Monotonic where it can be had, so that setting the wall clock cannot stretch a nap. */
    if (have_attr && pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC) == 0) {
        pool->nap_clock = CLOCK_MONOTONIC;
    }
#endif
    int ok = have_attr && pthread_mutex_init(&pool->busy, NULL) == 0;
    ok = ok && pthread_mutex_init(&pool->lock, NULL) == 0;
    ok = ok && pthread_cond_init(&pool->wake, &cond_attr) == 0;
    ok = ok && pthread_cond_init(&pool->done, &cond_attr) == 0;
    if (have_attr) pthread_condattr_destroy(&cond_attr);
    if (!ok) { /* glibc never fails these with these attributes; other libcs may */
        free(workers);
        free(pool);
        return GP_ERR_THREAD;
    }
    for (int i = 0; i < n_workers; i++) {
        gp_worker *worker = &workers[i];
        worker->pool = pool;
        atomic_init(&worker->posted, 0u);
        atomic_init(&worker->finished, 0u);
        atomic_init(&worker->awake, 1);
        if (pthread_create(&worker->thread, NULL, worker_main, worker) != 0) {
            gp_pool_free(pool); /* joins the ones already started */
            return GP_ERR_THREAD;
        }
        pool->n_started++;
    }
    *out = pool;
    return GP_OK;
}

void gp_pool_free(gp_pool *pool) {
    if (pool == NULL) return;
    pthread_mutex_lock(&pool->lock);
    atomic_store_explicit(&pool->stop, 1, memory_order_relaxed);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    /* In a forked child the threads do not exist; joining them would be undefined. */
    if (getpid() == pool->owner) {
        for (int i = 0; i < pool->n_started; i++) pthread_join(pool->workers[i].thread, NULL);
    }
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->busy);
    free(pool->workers);
    free(pool);
}

/* ---------------------------------------------------------------- run */

/* Sleeps until worker->finished == posted. Pairs with the end of worker_main: store
   caller_sleeping, then read finished here; store finished, then read caller_sleeping there.
   It waits no longer than one part runs, so its nap stays at GP_NAP_NS. */
static void wait_finished(gp_pool *pool, gp_worker *worker, unsigned posted) {
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->caller_sleeping, 1);
    while (atomic_load(&worker->finished) != posted) nap(pool, &pool->done, GP_NAP_NS);
    atomic_store(&pool->caller_sleeping, 0);
    pthread_mutex_unlock(&pool->lock);
}

int gp_pool_try_acquire(gp_pool *pool) {
    if (pthread_mutex_trylock(&pool->busy) != 0) return 0;
    if (getpid() != pool->owner) { /* forked child: no workers here */
        pthread_mutex_unlock(&pool->busy);
        return 0;
    }
    return 1;
}

void gp_pool_release(gp_pool *pool) {
    pthread_mutex_unlock(&pool->busy);
}

int gp_pool_workers_awake(gp_pool *pool) {
    for (int i = 0; i < pool->n_workers; i++) {
        if (!atomic_load_explicit(&pool->workers[i].awake, memory_order_relaxed)) return 0;
    }
    return 1;
}

/* Hands `part` to a worker whose previous part is done (waits for that first if need be). */
static void post(gp_pool *pool, gp_worker *worker, gp_part *part) {
    const unsigned posted = atomic_load_explicit(&worker->posted, memory_order_relaxed);
    if (atomic_load(&worker->finished) != posted) { /* a gp_pool_wake part not taken yet */
        spin_until_changed(&worker->finished, posted - 1u, NULL, GP_CALLER_SPIN_NS);
        wait_finished(pool, worker, posted);
    }
    worker->part = part;
    atomic_store(&worker->posted, posted + 1u);
    if (!atomic_load(&worker->awake)) { /* a spinning worker sees `posted` by itself */
        pthread_mutex_lock(&pool->lock);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->lock);
    }
}

void gp_pool_wake(gp_pool *pool) {
    for (int i = 0; i < pool->n_workers; i++) {
        gp_worker *worker = &pool->workers[i];
        const unsigned posted = atomic_load_explicit(&worker->posted, memory_order_relaxed);
        if (!atomic_load(&worker->awake) && atomic_load(&worker->finished) == posted) {
            post(pool, worker, &worker->empty_part);
        }
    }
}

void gp_pool_run(gp_pool *pool, gp_part *parts, int n_parts) {
    for (int i = 1; i < n_parts; i++) post(pool, &pool->workers[i - 1], &parts[i]);
    pool->run(&parts[0]);
    for (int i = 1; i < n_parts; i++) {
        gp_worker *worker = &pool->workers[i - 1];
        const unsigned posted = atomic_load_explicit(&worker->posted, memory_order_relaxed);
        if (spin_until_changed(&worker->finished, posted - 1u, NULL, GP_CALLER_SPIN_NS)) continue;
        wait_finished(pool, worker, posted);
    }
}
