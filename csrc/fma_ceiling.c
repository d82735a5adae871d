/* fma_ceiling.c: gp_fma_ceiling, the fp32 FLOP/s this machine really reaches.
 *
 * The "% of peak" of a benchmark needs a peak. cores x clock x FMA pipes x lanes is the ISA's
 * figure on paper; a virtual machine's nominal clock, a turbo that drops with more active cores,
 * or a core that splits 512-bit operations put the truth elsewhere. So measure it: a loop of
 * independent FMA chains that touches nothing but registers, on every thread at once.
 *
 * The hot loops: GP_FMA_CHAINS accumulators, each c = c * m + a per iteration. With FMA
 * latency 4-5 cycles and 2 FMA pipes, 8-10 chains in flight fill both pipes; 12 leave margin
 * and still fit AVX2's 16 ymm registers with the two constants. The accumulators are separate
 * named variables, not an array: an array of __m256 in a loop was kept in memory (a load and a
 * store per FMA) and measured 4x too low. Check with objdump -d that the loop body is
 * 12 vfmadd instructions, an add, a compare and a branch. m < 1 and a > 0 keep every chain
 * near a / (1 - m), far from denormals (which are slow on some cores).
 */
#define _POSIX_C_SOURCE 200809L /* sysconf, clock_gettime */
#include "dense_stack_pool.h" /* gp_now_ns */
#include "gp_isa.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifdef GP_HAVE_X86
#include <immintrin.h>
#endif

#define GP_FMA_CHAINS 12
#define GP_FMA_MAX_THREADS 64
#define GP_FMA_MIN_SECONDS 0.01
#define GP_FMA_MAX_SECONDS 10.0
#define GP_FMA_CALIBRATE_NS 2000000LL /* calibrate until one timed loop takes 2 ms */
#define GP_FMA_M 0.999999f
#define GP_FMA_A 1e-6f

/* One statement per chain: c_i = STEP(c_i). */
#define GP_FMA_BODY(STEP) \
    c0 = STEP(c0); c1 = STEP(c1); c2 = STEP(c2); c3 = STEP(c3); c4 = STEP(c4); c5 = STEP(c5); \
    c6 = STEP(c6); c7 = STEP(c7); c8 = STEP(c8); c9 = STEP(c9); c10 = STEP(c10); c11 = STEP(c11)

/* Runs `iterations` iterations of GP_FMA_CHAINS FMAs; returns the sum of the chains, so the
   compiler cannot drop the loop. */
typedef float (*gp_fma_loop_fn)(int64_t iterations);

/* ---------------------------------------------------------------- the loops (hot) */

#ifdef GP_HAVE_X86
__attribute__((target("avx512f"))) static float fma_loop_avx512(int64_t iterations) {
    const __m512 m = _mm512_set1_ps(GP_FMA_M), a = _mm512_set1_ps(GP_FMA_A);
    /* distinct starting values, so no two chains are the same computation */
    __m512 c0 = _mm512_set1_ps(0.00f), c1 = _mm512_set1_ps(0.01f), c2 = _mm512_set1_ps(0.02f);
    __m512 c3 = _mm512_set1_ps(0.03f), c4 = _mm512_set1_ps(0.04f), c5 = _mm512_set1_ps(0.05f);
    __m512 c6 = _mm512_set1_ps(0.06f), c7 = _mm512_set1_ps(0.07f), c8 = _mm512_set1_ps(0.08f);
    __m512 c9 = _mm512_set1_ps(0.09f), c10 = _mm512_set1_ps(0.10f), c11 = _mm512_set1_ps(0.11f);
#define GP_STEP512(c) _mm512_fmadd_ps(c, m, a)
    for (int64_t i = 0; i < iterations; i++) {
        GP_FMA_BODY(GP_STEP512);
    }
#undef GP_STEP512
    const __m512 sum = _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                      _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7))),
        _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"))) static float fma_loop_avx2(int64_t iterations) {
    const __m256 m = _mm256_set1_ps(GP_FMA_M), a = _mm256_set1_ps(GP_FMA_A);
    __m256 c0 = _mm256_set1_ps(0.00f), c1 = _mm256_set1_ps(0.01f), c2 = _mm256_set1_ps(0.02f);
    __m256 c3 = _mm256_set1_ps(0.03f), c4 = _mm256_set1_ps(0.04f), c5 = _mm256_set1_ps(0.05f);
    __m256 c6 = _mm256_set1_ps(0.06f), c7 = _mm256_set1_ps(0.07f), c8 = _mm256_set1_ps(0.08f);
    __m256 c9 = _mm256_set1_ps(0.09f), c10 = _mm256_set1_ps(0.10f), c11 = _mm256_set1_ps(0.11f);
#define GP_STEP256(c) _mm256_fmadd_ps(c, m, a)
    for (int64_t i = 0; i < iterations; i++) {
        GP_FMA_BODY(GP_STEP256);
    }
#undef GP_STEP256
    const __m256 sum = _mm256_add_ps(
        _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                      _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7))),
        _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}
#endif

/* Portable: plain C, shaped as the portable path's hot loop is (dense_stack_portable.c): each
   chain is GP_FMA_PORTABLE_LANES floats updated by a loop over its lanes, which the compiler
   turns into the target's baseline vectors (SSE2 on x86-64, Advanced SIMD on ARM64) without any
   -m flag. A multiply and an add per lane (C11 does not contract them), or one fmaf where the
   target has a fast one (FP_FAST_FMAF), as the portable path does. So this is the ceiling of
   what the portable path can reach on this machine, not the hardware's peak. */
#define GP_FMA_PORTABLE_LANES 4
#if defined(FP_FAST_FMAF)
#define GP_PORTABLE_STEP(c) fmaf((c), m, a)
#else
#define GP_PORTABLE_STEP(c) ((c) * m + a)
#endif
static float fma_loop_portable(int64_t iterations) {
    const float m = GP_FMA_M, a = GP_FMA_A;
    float c[GP_FMA_CHAINS][GP_FMA_PORTABLE_LANES];
    for (int chain = 0; chain < GP_FMA_CHAINS; chain++) {
        for (int j = 0; j < GP_FMA_PORTABLE_LANES; j++) c[chain][j] = 0.01f * (float)chain + 0.001f * (float)j;
    }
    for (int64_t i = 0; i < iterations; i++) {
#pragma GCC unroll 12
        for (int chain = 0; chain < GP_FMA_CHAINS; chain++) {
            for (int j = 0; j < GP_FMA_PORTABLE_LANES; j++) c[chain][j] = GP_PORTABLE_STEP(c[chain][j]);
        }
    }
    float sum = 0.0f;
    for (int chain = 0; chain < GP_FMA_CHAINS; chain++) {
        for (int j = 0; j < GP_FMA_PORTABLE_LANES; j++) sum += c[chain][j];
    }
    return sum;
}

/* ---------------------------------------------------------------- ISA choice */

/* The loop for a supported isa, and its FLOPs per iteration (chains x lanes x 2). */
static gp_fma_loop_fn loop_for_isa(int isa, double *flops_per_iteration) {
#ifdef GP_HAVE_X86
    if (isa == GP_ISA_AVX512) {
        *flops_per_iteration = GP_FMA_CHAINS * 16 * 2;
        return fma_loop_avx512;
    }
    if (isa == GP_ISA_AVX2_FMA) {
        *flops_per_iteration = GP_FMA_CHAINS * 8 * 2;
        return fma_loop_avx2;
    }
#else
    (void)isa;
#endif
    *flops_per_iteration = GP_FMA_CHAINS * GP_FMA_PORTABLE_LANES * 2;
    return fma_loop_portable;
}

/* ---------------------------------------------------------------- threads */

/* What every thread waits on: state 0 = wait, 1 = go, -1 = give up (a thread failed to start). */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int state;
} gp_start_gate;

typedef struct {
    gp_start_gate *gate;
    gp_fma_loop_fn loop;
    int64_t iterations;
    long long begin_ns, end_ns; /* when this thread's loop began and ended */
    float sink;                 /* the loop's result, kept so the loop is not optimized away */
} gp_fma_worker;

static void *fma_worker_main(void *arg) {
    gp_fma_worker *worker = arg;
    gp_start_gate *gate = worker->gate;
    pthread_mutex_lock(&gate->lock);
    while (gate->state == 0) pthread_cond_wait(&gate->changed, &gate->lock);
    const int go = gate->state == 1;
    pthread_mutex_unlock(&gate->lock);
    if (!go) return NULL;
    worker->begin_ns = gp_now_ns();
    worker->sink = worker->loop(worker->iterations);
    worker->end_ns = gp_now_ns();
    return NULL;
}

static void open_gate(gp_start_gate *gate, int state) {
    pthread_mutex_lock(&gate->lock);
    gate->state = state;
    pthread_cond_broadcast(&gate->changed);
    pthread_mutex_unlock(&gate->lock);
}

/* Iterations per second of `loop` on this thread: doubles the count until one run takes
   GP_FMA_CALIBRATE_NS (the first runs also warm the core up to its vector clock). */
static double calibrate(gp_fma_loop_fn loop, float *sink) {
    for (int64_t iterations = 1024;; iterations *= 2) {
        const long long begin = gp_now_ns();
        *sink += loop(iterations);
        const long long elapsed = gp_now_ns() - begin;
        if (elapsed >= GP_FMA_CALIBRATE_NS) return (double)iterations * 1e9 / (double)elapsed;
    }
}

/* ---------------------------------------------------------------- API */

/* *gflops is 0 after any error. Takes about `seconds` plus a few ms of calibration. */
gp_status gp_fma_ceiling(int isa, int n_threads, double seconds, double *gflops) {
    if (gflops == NULL) return GP_ERR_NULL;
    *gflops = 0.0;
    if (n_threads < 0 || n_threads > GP_FMA_MAX_THREADS) return GP_ERR_SHAPE;
    if (!(seconds >= GP_FMA_MIN_SECONDS && seconds <= GP_FMA_MAX_SECONDS)) return GP_ERR_SHAPE;
    if (isa == GP_ISA_AUTO) isa = gp_best_isa();
    if (!gp_isa_supported(isa)) return GP_ERR_UNSUPPORTED_ISA;
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    const int cpus = online >= 1 ? (int)(online < 4096 ? online : 4096) : 1;
    if (n_threads == 0) n_threads = cpus; /* the whole machine (not capped at 64) */

    double flops_per_iteration = 0.0;
    const gp_fma_loop_fn loop = loop_for_isa(isa, &flops_per_iteration);
    float sink = 0.0f;
    /* More threads than CPUs share them: shorten each thread's share so the run stays about
       `seconds` long. */
    const double share = n_threads > cpus ? (double)cpus / n_threads : 1.0;
    double planned = calibrate(loop, &sink) * seconds * share;
    if (planned < 1.0) planned = 1.0;
    const int64_t iterations = (int64_t)planned;

    gp_fma_worker *workers = calloc((size_t)n_threads, sizeof *workers);
    pthread_t *threads = calloc((size_t)n_threads, sizeof *threads);
    gp_start_gate gate;
    gate.state = 0;
    int have_lock = 0, have_cond = 0;
    gp_status status = GP_OK;
    if (workers == NULL || threads == NULL) status = GP_ERR_NOMEM;
    if (status == GP_OK) {
        have_lock = pthread_mutex_init(&gate.lock, NULL) == 0;
        have_cond = have_lock && pthread_cond_init(&gate.changed, NULL) == 0;
        if (!have_cond) status = GP_ERR_THREAD;
    }
    int started = 0;
    for (; status == GP_OK && started < n_threads; started++) {
        workers[started] = (gp_fma_worker){.gate = &gate, .loop = loop, .iterations = iterations};
        if (pthread_create(&threads[started], NULL, fma_worker_main, &workers[started]) != 0) {
            status = GP_ERR_THREAD;
            break;
        }
    }
    if (have_cond) {
        open_gate(&gate, status == GP_OK ? 1 : -1);
        for (int i = 0; i < started; i++) pthread_join(threads[i], NULL);
    }
    if (status == GP_OK) {
        /* wall time: from the first thread's start to the last thread's end */
        long long first = workers[0].begin_ns, last = workers[0].end_ns;
        for (int i = 0; i < n_threads; i++) {
            if (workers[i].begin_ns < first) first = workers[i].begin_ns;
            if (workers[i].end_ns > last) last = workers[i].end_ns;
            sink += workers[i].sink;
        }
        const double wall = (double)(last - first > 0 ? last - first : 1) * 1e-9;
        /* sink is finite by construction; the comparison only keeps it alive */
        *gflops = sink == sink ? flops_per_iteration * (double)iterations * n_threads / wall / 1e9
                               : 0.0;
    }
    if (have_cond) pthread_cond_destroy(&gate.changed);
    if (have_lock) pthread_mutex_destroy(&gate.lock);
    free(threads);
    free(workers);
    return status;
}
