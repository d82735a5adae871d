/* dense_stack_internal.h: what dense_stack.c shares with the per-ISA files. Not part of the API.
 *
 * Every ISA path implements the same interface: one layer, y = act(x W^T + b), over `rows` rows.
 * The weights arrive repacked for that path (see gp_layer). The math constants shared by the
 * tanh / sigmoid approximations of every path live here too, so the paths agree.
 */
#ifndef GANPACK_DENSE_STACK_INTERNAL_H
#define GANPACK_DENSE_STACK_INTERNAL_H

#include "ganpack_kernel.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The x86 SIMD paths need GCC/Clang function-level target attributes and <immintrin.h>.
   Elsewhere (ARM64, ...) and with -DGP_PORTABLE_ONLY (make test-portable) their files compile
   to nothing and the portable path is the only one. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(GP_PORTABLE_ONLY)
#define GP_HAVE_X86 1
#endif

/* The target attribute of the AVX-512 path's functions. Empty in the emulated test build
   (-DGP_AVX512_SIMDE, `make test-avx512-emulated`): there SIMDe supplies the intrinsics as AVX2
   code, and target("avx512f") would let the compiler emit real AVX-512 instructions. */
#ifdef GP_AVX512_SIMDE
#define GP_TARGET_AVX512
#else
#define GP_TARGET_AVX512 __attribute__((target("avx512f")))
#endif

/* 1 when this CPU (and this build) can run `isa` (a gp_isa other than GP_ISA_AUTO). */
int gp_isa_supported(int isa);

/* The path gp_best_isa picks on a CPU with these features (each 0 or 1), in this build: the rule
   alone, so that tests can ask what a CPU without AVX2 would get (the portable path). */
int gp_isa_for_features(int avx512f, int avx2, int fma);

/* 1 when a stack of `isa` may use the AVX2 helpers (latents, uint8 conversion, range checks):
   its own path is AVX2, or AVX-512, and every AVX-512 CPU has AVX2. */
static inline int gp_isa_has_avx2(int isa) {
#ifdef GP_HAVE_X86
    return isa == GP_ISA_AVX2_FMA || isa == GP_ISA_AVX512;
#else
    (void)isa;
    return 0;
#endif
}

/* The range GP_F32_IMAGE inputs must lie in: [-1, 1] and a float rounding's worth around it. */
#define GP_IMAGE_MIN (-1.000001f)
#define GP_IMAGE_MAX 1.000001f

/* Outputs per packed panel (= floats per vector; the portable path's 8 are two 16-byte baseline
   vectors, SSE2 or Advanced SIMD, as its compiler vectorizes them). */
#define GP_PANEL_PORTABLE 8
#define GP_PANEL_AVX2 8
#define GP_PANEL_AVX512 16

/* One layer, as the hot loops read it. Set by gp_stack_set_layer(_precision), read-only afterwards.
   Panel p holds output columns [p * V, p * V + V) for every input k: packed_weight[p][k][j] =
   W[p * V + j][k], zero for columns >= out_width, so the hot loop never needs a column mask.
   The weights are float32, or with GP_PRECISION_BF16 bfloat16 (gp_bf16_round) with the panels in
   pairs: pair q = panels 2q and 2q + 1 as (K, V) 32-bit words, word[k][j] = bf16 of panel 2q's
   weight | bf16 of panel 2q + 1's << 16 (a zero panel pads an odd count). One load then gives
   two vectors of float32 weights, each in one exact instruction: word << 16 (the even panel) and
   word & 0xFFFF0000 (the odd one). A run's panel range starts at an even panel (threads split
   at even panels), so the AVX2 and AVX-512 tiles (steps of 2, 4 or 8 panels) always start at
   the even panel of a pair; the portable path's full tiles of 3 panels may start at an odd one. */
typedef struct {
    int in_width;          /* K */
    int out_width;         /* N */
    int panel_width;       /* V, one of GP_PANEL_* */
    int activation;        /* gp_activation */
    float alpha;           /* leaky_relu slope, 0 otherwise */
    int precision;         /* gp_precision of packed_weight */
    void *packed_weight;   /* float (ceil(N / V), K, V), or bf16 pairs uint32_t
                              (ceil(N / 2V), K, V); 64-byte aligned */
    float *bias;           /* (ceil(N / V) * V), zero padded, 64-byte aligned */
    void *allocation;      /* the one malloc block both point into; NULL while unset */
    /* Layer 0 of a conditional stack only (gp_stack_set_class_bias), kept when the layer is
       replaced: row c is the bias of rows labelled c, laid out as `bias`. */
    int n_classes;         /* 0: no table */
    float *class_bias;     /* (n_classes, ceil(N / V) * V), zero padded, 64-byte aligned */
    void *class_allocation;
} gp_layer;

/* Panel p of a layer's packed weights: (K, V) floats, or with bf16 weights the pair holding
   panel p (panels p and p + 1 for an even p, p - 1 and p for an odd one), (K, V) words. */
static inline const void *gp_panel(const gp_layer *layer, int p) {
    const size_t panel = (size_t)layer->in_width * (size_t)layer->panel_width; /* K V */
    if (layer->precision == GP_PRECISION_BF16) {
        return (const uint32_t *)layer->packed_weight + (size_t)(p / 2) * panel;
    }
    return (const float *)layer->packed_weight + (size_t)p * panel;
}

/* float32 -> bfloat16 bits, round to nearest, ties to even (as numpy's reference in
   runtime/ganpack/precision.py and PyTorch's .to(torch.bfloat16)): a value too large for bf16
   becomes an infinity, a NaN stays a (quiet) NaN. Widening back is exact: bits << 16. */
static inline uint16_t gp_bf16_round(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

/* Floats per row of a layer's bias and class-bias table: N rounded up to whole panels. */
static inline size_t gp_padded_width(const gp_layer *layer) {
    const size_t panel = (size_t)layer->panel_width;
    return ((size_t)layer->out_width + panel - 1) / panel * panel;
}

/* Where row r of a forward call starts its accumulators: the layer's bias, or with labels
   (rows) the class-bias row of its label. Read once per tile and row, outside the hot loop. */
static inline const float *gp_row_bias(const gp_layer *layer, const int32_t *labels, int r) {
    return labels == NULL ? layer->bias
                          : layer->class_bias + (size_t)labels[r] * gp_padded_width(layer);
}

/* ---- the tile driver of the AVX2 and portable paths ----
   Both run a layer as tiles of rows x panels, each shape a compile-time constant inside its
   path's tile function: full tiles of full_rows x full_panels, panel-major (those panels,
   K V floats each, stay hot in cache across all row blocks), then the rows left (a lone row is
   batch 1) with more panels per tile (1 x 8, 2 x 4, 3 x 2), so that enough independent
   accumulator chains hide the latency of each multiply-add. GP_TILE_SHAPES(X) lists every shape
   the driver can ask for, for the paths' dispatch switches. full_rows is 1 to 4 and divides 4
   (threads split rows at multiples of 4); full_panels is at most 4 / full_rows * 2. */
#define GP_TILE_SHAPES(X) \
    X(4, 1); X(4, 2); X(3, 1); X(3, 2); X(2, 1); X(2, 2); X(2, 3); X(2, 4); \
    X(1, 1); X(1, 2); X(1, 3); X(1, 4); X(1, 5); X(1, 6); X(1, 7); X(1, 8)

/* One tile: rows x panels panels of outputs from x (rows, K), the packed panels (panels, K, V)
   of the layer's precision starting at output column col, into y (rows, N); labels (rows) or
   NULL. */
typedef void (*gp_tile_fn)(int rows, int panels, const gp_layer *layer, const float *x,
                           const int32_t *labels, const void *packed, int col, void *y,
                           int y_dtype);

/* The panels [panel_begin, panel_end) of one layer over `rows` rows, tile by tile (see above). */
static inline void gp_forward_tiles(gp_tile_fn tile, int full_rows, int full_panels,
                                    const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                                    const int32_t *labels /* (rows) or NULL */,
                                    void *y /* (rows, N) */, int y_dtype, int panel_begin,
                                    int panel_end) {
    const size_t K = (size_t)layer->in_width, N = (size_t)layer->out_width;
    const size_t V = (size_t)layer->panel_width;
    const size_t y_row = N * (y_dtype == GP_U8 ? 1 : sizeof(float)); /* bytes per output row */
    const int whole = rows / full_rows * full_rows; /* rows in full tiles */
    for (int p = panel_begin; p < panel_end && whole > 0; p += full_panels) {
        const int panels = panel_end - p < full_panels ? panel_end - p : full_panels;
        const void *packed = gp_panel(layer, p);
        for (int r = 0; r < whole; r += full_rows) {
            tile(full_rows, panels, layer, x + (size_t)r * K, labels == NULL ? NULL : labels + r,
                 packed, p * (int)V, (char *)y + (size_t)r * y_row, y_dtype);
        }
    }
    const int left = rows - whole;
    if (left == 0) return;
    const int step = left == 1 ? 8 : left == 2 ? 4 : 2;
    for (int p = panel_begin; p < panel_end; p += step) {
        const int panels = panel_end - p < step ? panel_end - p : step;
        tile(left, panels, layer, x + (size_t)whole * K, labels == NULL ? NULL : labels + whole,
             gp_panel(layer, p), p * (int)V, (char *)y + (size_t)whole * y_row,
             y_dtype);
    }
}

/* y = act(x W^T + b) for one layer, rows >= 1, x and y row-major and contiguous, but only the
   output columns of panels [panel_begin, panel_end) (0 <= begin < end <= ceil(N / V)); y keeps
   its full row stride N. labels: NULL, or (rows) labels already checked against the layer's
   class-bias table, whose rows then replace b row by row (gp_row_bias). y_dtype GP_F32: y is float; GP_U8: y is uint8 and each activated value
   v is stored as clip(rint((v + 1) * 127.5), 0, 255) in float32 (the float path's value,
   then exactly numpy's mapping of it). The layer must have been packed for the same path.
   Every output is bias + x_0 w_0 + x_1 w_1 + ... fused in this order, whatever the number of rows
   or panels around it, so a row's result never depends on its batch or on how work is split. */
void gp_layer_forward_portable(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                               const int32_t *labels /* (rows) or NULL */,
                               void *y /* (rows, N) */, int y_dtype, int panel_begin,
                               int panel_end);
void gp_u8_to_f32_portable(const unsigned char *u /* (count) */, size_t count,
                           float *x /* (count) */);
/* 1 when every x lies in [low, high] (NaN does not), else 0. */
int gp_in_range_portable(const float *x /* (count) */, size_t count, float low, float high);
#ifdef GP_HAVE_X86
void gp_layer_forward_avx2(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                           const int32_t *labels /* (rows) or NULL */,
                           void *y /* (rows, N) */, int y_dtype, int panel_begin, int panel_end);
void gp_layer_forward_avx512(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                             const int32_t *labels /* (rows) or NULL */,
                             void *y /* (rows, N) */, int y_dtype, int panel_begin,
                             int panel_end);
void gp_u8_to_f32_avx2(const unsigned char *u /* (count) */, size_t count,
                       float *x /* (count) */);
int gp_in_range_avx2(const float *x /* (count) */, size_t count, float low, float high);
#endif

/* ---- typed I/O and latents (latents.c, latents_avx2.c) ----
   A uint8 pixel u as the first layer reads it: u / 127.5f - 1.0f (float32 divide, then
   subtract), by gp_u8_to_f32_* above. */

/* The float32 latents of rows [first_row, first_row + rows) of stream `seed` (see
   ganpack_kernel.h); every path gives the same bits. The AVX2 path serves AVX-512 stacks too. */
void gp_latents_portable(uint64_t seed, int64_t first_row, int rows, int dim, int distribution,
                         float scale, float offset, float *z /* (rows, dim) */);
#ifdef GP_HAVE_X86
void gp_latents_avx2(uint64_t seed, int64_t first_row, int rows, int dim, int distribution,
                     float scale, float offset, float *z /* (rows, dim) */);
#endif
void gp_latents_isa(int isa, uint64_t seed, int64_t first_row, int rows, int dim,
                    int distribution, float scale, float offset, float *z /* (rows, dim) */);
/* The checks gp_latents and gp_stack_sample share: rows [first_row, first_row + rows) within
   [0, 2^63) (GP_ERR_SHAPE), a known distribution, a finite scale and offset (GP_ERR_ARGUMENT). */
gp_status gp_check_latent_args(int64_t first_row, int rows, int distribution, float scale,
                               float offset);

/* Philox4x32-10 and the float32 constants of the latent transform, shared by every path
   (runtime/ganpack/latents.py holds the same values). */
#define GP_PHILOX_M0 0xD2511F53u
#define GP_PHILOX_M1 0xCD9E8D57u
#define GP_PHILOX_W0 0x9E3779B9u
#define GP_PHILOX_W1 0xBB67AE85u
#define GP_LAT_TWO_M24 0x1p-24f
#define GP_LAT_SQRT2 0x1.6a09e6p+0f
#define GP_LAT_LN2 0x1.62e430p-1f
#define GP_LAT_ATANH9 0x1.c71c72p-4f /* 1/9 */
#define GP_LAT_ATANH7 0x1.24924ap-3f /* 1/7 */
#define GP_LAT_ATANH5 0x1.99999ap-3f /* 1/5 */
#define GP_LAT_ATANH3 0x1.555556p-2f /* 1/3 */
#define GP_LAT_SIN9 0x1.507834p-13f  /* (pi/2)^9 / 9! */
#define GP_LAT_SIN7 (-0x1.32d2ccp-8f)
#define GP_LAT_SIN5 0x1.466bc6p-4f
#define GP_LAT_SIN3 (-0x1.4abbcep-1f)
#define GP_LAT_SIN1 0x1.921fb6p+0f   /* pi/2 */
#define GP_LAT_COS10 (-0x1.a6d1f2p-16f) /* -(pi/2)^10 / 10! */
#define GP_LAT_COS8 0x1.e1f506p-11f
#define GP_LAT_COS6 (-0x1.55d3c8p-6f)
#define GP_LAT_COS4 0x1.03c1f0p-2f
#define GP_LAT_COS2 (-0x1.3bd3ccp+0f)

/* ---- the worker pool (dense_stack_pool.c) ----
   Where a run's input rows come from: a float32 or uint8 array (batch, widths[0]), or the
   latent stream (rows first_row + i). */
enum { GP_SOURCE_F32 = 0, GP_SOURCE_U8 = 1, GP_SOURCE_LATENT = 2, GP_SOURCE_F32_IMAGE = 3,
       GP_SOURCE_F32_FINITE = 4 };
typedef struct {
    int kind;                   /* GP_SOURCE_* */
    const void *data;           /* F32, U8, F32_IMAGE, F32_FINITE: (batch, widths[0]) */
    uint64_t seed;              /* LATENT: the stream, its first row, distribution, scale, offset */
    int64_t first_row;
    int distribution;
    float scale, offset;
    const int32_t *labels;      /* NULL, or (batch) checked labels: layer 0's class-bias rows */
} gp_source;

/* A part is one slice of a run: rows [row_begin, row_end) of the batch, and of the last layer
   only the output panels [panel_begin, panel_end). Hidden layers are always computed whole for
   the part's rows. The pool runs one part on the calling thread and one on each worker. */
typedef struct {
    const struct gp_stack *stack;
    const gp_source *source;
    void *output;       /* (batch, widths[n_layers]) of output_dtype */
    int output_dtype;   /* GP_F32 or GP_U8 */
    int row_begin, row_end;
    int panel_begin, panel_end;
    gp_status status;   /* set by the part's runner */
} gp_part;

/* CLOCK_MONOTONIC in nanoseconds (dense_stack_pool.c; fma_ceiling.c times its loops with it). */
long long gp_now_ns(void);

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

/* tanh, rational form (the AVX2 path): a = min(|x|, GP_TANH_R_CLAMP), s = a * a,
   P(s) = 1 + s (P1 + s (P2 + s (P3 + s P4))), Q(s) = 1 + s (Q1 + s (Q2 + s (Q3 + s Q4))), each
   by Horner with fused multiply-adds, tanh(x) = copysign(min((a * P) / Q, 1), x) with a true
   (IEEE) division. A [9/8] minimax fit (linear programming on [0, 9], P(0) = Q(0) = 1 so small
   outputs stay relatively accurate, constrained to reach 1 at the clamp so |x| >= 9 gives
   exactly +-1). Max |error| 4.8e-7 in float (2.1e-7 in exact arithmetic). */
#define GP_TANH_R_CLAMP 9.0f
#define GP_TANH_P1 1.323425472e-01f
#define GP_TANH_P2 3.327681683e-03f
#define GP_TANH_P3 1.814053212e-05f
#define GP_TANH_P4 1.053931964e-08f
#define GP_TANH_Q1 4.656744897e-01f
#define GP_TANH_Q2 2.522107214e-02f
#define GP_TANH_Q3 3.023337922e-04f
#define GP_TANH_Q4 6.494107083e-07f

#endif /* GANPACK_DENSE_STACK_INTERNAL_H */
