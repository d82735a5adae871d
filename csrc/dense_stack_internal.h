/* dense_stack_internal.h: what dense_stack.c shares with the per-ISA files. Not part of the API.
 *
 * Every ISA path implements the same interface: one layer, y = act(x W^T + b), over `rows` rows.
 * The weights arrive repacked for that path (see gp_layer). The math constants shared by the
 * tanh / sigmoid approximations of every path live here too, so the paths agree.
 */
#ifndef GANPACK_DENSE_STACK_INTERNAL_H
#define GANPACK_DENSE_STACK_INTERNAL_H

#include "ganpack_kernel.h"

/* The x86 SIMD paths need GCC/Clang function-level target attributes and <immintrin.h>. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define GP_HAVE_X86 1
#endif

/* Outputs per packed panel (= floats per vector, the portable path mimics 8-wide vectors). */
#define GP_PANEL_PORTABLE 8
#define GP_PANEL_AVX2 8
#define GP_PANEL_AVX512 16

/* One layer, as the hot loops read it. Set by gp_stack_set_layer, read-only afterwards.
   Panel p holds output columns [p * V, p * V + V) for every input k: packed_weight[p][k][j] =
   W[p * V + j][k], zero for columns >= out_width, so the hot loop never needs a column mask. */
typedef struct {
    int in_width;          /* K */
    int out_width;         /* N */
    int panel_width;       /* V, one of GP_PANEL_* */
    int activation;        /* gp_activation */
    float alpha;           /* leaky_relu slope, 0 otherwise */
    float *packed_weight;  /* (ceil(N / V), K, V), 64-byte aligned */
    float *bias;           /* (ceil(N / V) * V), zero padded, 64-byte aligned */
    void *allocation;      /* the one malloc block both point into; NULL while unset */
} gp_layer;

/* y = act(x W^T + b) for one layer, rows >= 1, x and y row-major and contiguous, but only the
   output columns of panels [panel_begin, panel_end) (0 <= begin < end <= ceil(N / V)); y keeps
   its full row stride N. The layer must have been packed for the same path (panel_width).
   Every output is bias + x_0 w_0 + x_1 w_1 + ... fused in this order, whatever the number of rows
   or panels around it, so a row's result never depends on its batch or on how work is split. */
void gp_layer_forward_portable(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                               float *y /* (rows, N) */, int panel_begin, int panel_end);
#ifdef GP_HAVE_X86
void gp_layer_forward_avx2(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                           float *y /* (rows, N) */, int panel_begin, int panel_end);
void gp_layer_forward_avx512(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                             float *y /* (rows, N) */, int panel_begin, int panel_end);
#endif

/* ---- the worker pool (dense_stack_pool.c) ----
   A part is one slice of a gp_stack_run: rows [row_begin, row_end) of the batch, and of the last
   layer only the output panels [panel_begin, panel_end). Hidden layers are always computed whole
   for the part's rows. The pool runs one part on the calling thread and one on each worker. */
typedef struct {
    const struct gp_stack *stack;
    const float *input; /* (batch, widths[0]) */
    float *output;      /* (batch, widths[n_layers]) */
    int row_begin, row_end;
    int panel_begin, panel_end;
    gp_status status;   /* set by the part's runner */
} gp_part;

typedef void (*gp_part_fn)(gp_part *part);
typedef struct gp_pool gp_pool;

/* Starts n_workers >= 1 threads that wait for parts and run them with `run`. */
gp_status gp_pool_create(int n_workers, gp_part_fn run, gp_pool **out);
/* Stops and joins the workers; NULL is a no-op. No call may be using the pool. */
void gp_pool_free(gp_pool *pool);
/* Takes the pool for one run; 0 if another thread holds it (or this is a forked child, which
   has no workers): run single-threaded then. */
int gp_pool_try_acquire(gp_pool *pool);
void gp_pool_release(gp_pool *pool);
/* 1 while every worker is awake (spinning right after a part), so a hand-off costs well under
   a microsecond; asleep, waking one costs a futex call. Advisory, read without the lock. */
int gp_pool_workers_awake(gp_pool *pool);
/* With the pool held: wakes the sleeping workers (with an empty part) without waiting, so that
   they are awake for the next run. */
void gp_pool_wake(gp_pool *pool);
/* With the pool held: parts[1 .. n_parts - 1] go to workers, parts[0] runs here, returns when
   all are done. 1 <= n_parts <= n_workers + 1. */
void gp_pool_run(gp_pool *pool, gp_part *parts /* (n_parts) */, int n_parts);

/* ---- constants of the tanh / sigmoid approximations (every path uses the same math) ----
   exp(x): clamp x to [GP_EXP_MIN, GP_EXP_MAX] so 2^n stays a normal float, write x = n ln2 + r
   with n = round(x / ln2) and |r| <= ln2 / 2 (ln2 split in a short high part, exact when
   multiplied by n, and a low correction), then exp(r) by its degree-7 Taylor polynomial
   (truncation error < 6e-9 relative on |r| <= 0.35), then scale by 2^n through the exponent.
   sigmoid(x) = 1 / (1 + exp(-x)).
   tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)), |x| clamped to GP_TANH_CLAMP (tanh(10) rounds
   to 1 in float, as does this formula at 10); below GP_TANH_SMALL the odd Taylor series
   x - x^3/3 + 2x^5/15 - 17x^7/315 instead (truncation < 2e-10 there), which keeps small
   outputs relatively accurate too, where 1 - 2 / (e + 1) would cancel. */
#define GP_EXP_MIN (-87.0f)
#define GP_EXP_MAX 88.0f
#define GP_LOG2E 1.44269504088896341f
#define GP_LN2_HI 0.693359375f     /* 355 / 512: 9 significant bits */
#define GP_LN2_LO (-2.12194440e-4f) /* ln2 - GP_LN2_HI */
#define GP_EXP_C2 (1.0f / 2.0f)
#define GP_EXP_C3 (1.0f / 6.0f)
#define GP_EXP_C4 (1.0f / 24.0f)
#define GP_EXP_C5 (1.0f / 120.0f)
#define GP_EXP_C6 (1.0f / 720.0f)
#define GP_EXP_C7 (1.0f / 5040.0f)
#define GP_TANH_CLAMP 10.0f
#define GP_TANH_SMALL 0.125f
#define GP_TANH_C3 (-1.0f / 3.0f)
#define GP_TANH_C5 (2.0f / 15.0f)
#define GP_TANH_C7 (-17.0f / 315.0f)

#endif /* GANPACK_DENSE_STACK_INTERNAL_H */
