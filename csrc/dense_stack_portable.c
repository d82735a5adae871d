/* dense_stack_portable.c: the plain C path, for any CPU (ARM64, x86 without AVX2, anything a C11
 * compiler targets). No intrinsics, no -march, no fast-math: every loop the time goes into is
 * shaped so that the compiler's auto-vectorizer turns it into vector code at the baseline of the
 * target (SSE2 on x86-64, Advanced SIMD on ARM64) with the summation order unchanged:
 *
 * - The hot loop is an axpy, not a dot product: for each input k, one x value times a row of V
 *   packed weights is added to a row of V accumulators. The innermost loop runs over output
 *   columns, so lane j of a vector is output column j and no sum is ever reordered (a dot
 *   product's reduction over k could only be vectorized by reassociating it, which -ffast-math
 *   allows and we do not).
 * - A tile is ROWS x PANELS panels of V columns with both counts compile-time constants at every
 *   call (a dispatch switch, as in the AVX2 path), so the accumulators are a fixed-size array the
 *   compiler keeps in vector registers, and a lone row takes 8 panels: 16 independent chains.
 * - Bias, activation and the store work on the tile's accumulators with branch-free loops, so
 *   they vectorize too. tanh is the AVX2 path's rational form (no exp: it halved the cost of the
 *   generator's last layer's epilogue here too), sigmoid 1 / (1 + exp(-x)) with the shared exp.
 *
 * Where the target has a fast fused multiply-add (ARM64: FP_FAST_FMAF), each step is one fmaf,
 * which the vectorizer turns into a vector FMA; elsewhere (x86-64's baseline has none) it is a
 * multiply and an add. Results stay within the tolerance of ganpack_kernel.h either way.
 */
#include "dense_stack_tiles.h"
#include "gp_math.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define V GP_PANEL_PORTABLE
#define MAX_ROWS 4
#define MAX_TILE_PANELS 8 /* of a short tile: 1 row x 8 (gp_forward_tiles) */

/* Full tiles: their accumulators (2 vectors of 4 floats per row and panel, at the 16-byte
   vectors every baseline has) and the weights in flight must fit the vector registers. ARM64
   has 32: 4 rows x 2 panels (16 accumulators). x86-64 (and anything else) has 16: 2 rows x 3
   panels (12), which measured 15% faster there than 4 x 2 (whose accumulators spill) and than
   4 x 1 or 1 x 6; see csrc/README.md. */
#if defined(__aarch64__)
#define FULL_ROWS 4
#define FULL_PANELS 2
#else
#define FULL_ROWS 2
#define FULL_PANELS 3
#endif

#if defined(__GNUC__)
#define GP_PORTABLE_INLINE static inline __attribute__((always_inline))
#else
#define GP_PORTABLE_INLINE static inline
#endif

#if defined(FP_FAST_FMAF)
#define GP_MADD(a, b, c) fmaf((a), (b), (c)) /* one instruction on this target */
#else
#define GP_MADD(a, b, c) ((a) * (b) + (c))   /* -ffp-contract=off keeps it two roundings */
#endif

/* ---------------------------------------------------------------- activations, V lanes */

/* The lane functions below keep every choice (?:) in a loop of its own that only selects
   between values already in arrays or constants and stores the result. Such a loop is
   if-converted into vector selects; arithmetic before or after a choice in the same loop is
   moved into its arms by the compiler, which then may not execute them speculatively (a
   floating-point operation can trap, as far as it knows) and leaves a scalar branch. */

/* exp of V lanes in place: the range reduction and polynomial of gp_math.h. */
GP_PORTABLE_INLINE void exp_lanes(float *v /* (V) */) {
    int32_t bits[V];
    float x[V], p[V], scale[V];
    for (int j = 0; j < V; j++) {
        const float low = v[j] < GP_EXP_MIN ? GP_EXP_MIN : v[j];
        x[j] = low > GP_EXP_MAX ? GP_EXP_MAX : low;
    }
    for (int j = 0; j < V; j++) {
        const float t = x[j] * GP_LOG2E;
        const int32_t n = (int32_t)(t + copysignf(0.5f, t)); /* round half away; |n| <= 127 */
        const float nf = (float)n;
        const float r = (x[j] - nf * GP_LN2_HI) - nf * GP_LN2_LO; /* n * GP_LN2_HI is exact */
        float q = GP_EXP_C7;
        q = q * r + GP_EXP_C6;
        q = q * r + GP_EXP_C5;
        q = q * r + GP_EXP_C4;
        q = q * r + GP_EXP_C3;
        q = q * r + GP_EXP_C2;
        q = q * r + 1.0f;
        p[j] = q * r + 1.0f;
        bits[j] = (n + 127) * (1 << 23); /* 2^n, n in [-126, 127]: a normal float */
    }
    memcpy(scale, bits, sizeof scale);
    for (int j = 0; j < V; j++) v[j] = p[j] * scale[j];
}

/* tanh of V lanes in place: the rational form of gp_math.h (the AVX2 path's), a
   multiply and an add per Horner step where the target has no fast FMA. */
GP_PORTABLE_INLINE void tanh_lanes(float *v /* (V) */) {
    float a[V], t[V];
    for (int j = 0; j < V; j++) a[j] = fabsf(v[j]);
    for (int j = 0; j < V; j++) a[j] = a[j] < GP_TANH_R_CLAMP ? a[j] : GP_TANH_R_CLAMP;
    for (int j = 0; j < V; j++) {
        const float s = a[j] * a[j];
        float p = GP_MADD(GP_TANH_P4, s, GP_TANH_P3), q = GP_MADD(GP_TANH_Q4, s, GP_TANH_Q3);
        p = GP_MADD(p, s, GP_TANH_P2);
        q = GP_MADD(q, s, GP_TANH_Q2);
        p = GP_MADD(p, s, GP_TANH_P1);
        q = GP_MADD(q, s, GP_TANH_Q1);
        p = GP_MADD(p, s, 1.0f);
        q = GP_MADD(q, s, 1.0f);
        t[j] = (a[j] * p) / q;
    }
    for (int j = 0; j < V; j++) t[j] = t[j] < 1.0f ? t[j] : 1.0f;
    for (int j = 0; j < V; j++) v[j] = copysignf(t[j], v[j]);
}

GP_PORTABLE_INLINE void sigmoid_lanes(float *v /* (V) */) {
    float e[V];
    for (int j = 0; j < V; j++) e[j] = -v[j];
    exp_lanes(e);
    for (int j = 0; j < V; j++) v[j] = 1.0f / (1.0f + e[j]);
}

GP_PORTABLE_INLINE void activate_lanes(float *v /* (V) */, int activation, float alpha) {
    float scaled[V];
    switch (activation) {
    case GP_ACT_LEAKY_RELU:
        for (int j = 0; j < V; j++) scaled[j] = alpha * v[j];
        for (int j = 0; j < V; j++) v[j] = v[j] >= 0.0f ? v[j] : scaled[j];
        break;
    case GP_ACT_RELU:
        for (int j = 0; j < V; j++) v[j] = v[j] < 0.0f ? 0.0f : v[j];
        break;
    case GP_ACT_TANH: tanh_lanes(v); break;
    case GP_ACT_SIGMOID: sigmoid_lanes(v); break;
    default: break;
    }
}

/* V activated values as 8-bit pixels: clip(rint((v + 1) * 127.5), 0, 255) in float32 steps.
   rint of s in [0, 255] is (s + 2^23) - 2^23 in the default rounding mode (half to even, as
   numpy's rint), which vectorizes where rintf may not. */
GP_PORTABLE_INLINE void store_u8_lanes(unsigned char *dst, const float *v /* (V) */, int n_valid) {
    float s[V];
    unsigned char bytes[V];
    for (int j = 0; j < V; j++) s[j] = (v[j] + 1.0f) * 127.5f;
    for (int j = 0; j < V; j++) {
        const float low = s[j] > 0.0f ? s[j] : 0.0f; /* NaN -> 0 */
        s[j] = low < 255.0f ? low : 255.0f;
    }
    int32_t level[V];
    for (int j = 0; j < V; j++) level[j] = (int32_t)((s[j] + 0x1p23f) - 0x1p23f);
    for (int j = 0; j < V; j++) bytes[j] = (unsigned char)level[j];
    if (n_valid == V) memcpy(dst, bytes, sizeof bytes);
    else for (int j = 0; j < n_valid; j++) dst[j] = bytes[j];
}

/* ---------------------------------------------------------------- the hot loop */

/* A tile's sums (ROWS, PANELS, V) activated and stored to y (ROWS, N) at column col (floats, or
   uint8 pixels when y_dtype is GP_U8). */
GP_PORTABLE_INLINE void store_tile(const int ROWS, const int PANELS, const gp_layer *layer,
                                   float sums[MAX_ROWS][MAX_TILE_PANELS][V], int col, void *y,
                                   int y_dtype) {
    const int N = layer->out_width;
    for (int r = 0; r < ROWS; r++) {
        for (int p = 0; p < PANELS; p++) {
            const int first = col + p * V, n_valid = N - first < V ? N - first : V; /* >= 1 */
            activate_lanes(sums[r][p], layer->activation, layer->alpha);
            const size_t at = (size_t)r * (size_t)N + (size_t)first;
            if (y_dtype == GP_U8) store_u8_lanes((unsigned char *)y + at, sums[r][p], n_valid);
            else if (n_valid == V) memcpy((float *)y + at, sums[r][p], sizeof sums[r][p]);
            else for (int j = 0; j < n_valid; j++) ((float *)y)[at + (size_t)j] = sums[r][p][j];
        }
    }
}

/* THE HOT LOOP of the portable path: ROWS x PANELS panels of V outputs, accumulated over all K
   inputs (for each k: ROWS x values, PANELS rows of V weights, ROWS * PANELS * V multiply-adds
   into the accumulators), then activation and the store of the valid columns (floats, or uint8
   pixels when y_dtype is GP_U8). The accumulators start from the bias, or from each row's
   class-bias row when labels (ROWS) are given. ROWS and PANELS are constants at every call. */
GP_PORTABLE_INLINE void tile_portable(const int ROWS, const int PANELS, const gp_layer *layer,
                                      const float *x /* (ROWS, K) */,
                                      const int32_t *labels /* (ROWS) or NULL */,
                                      const float *panels /* (PANELS, K, V) */, int col,
                                      void *y /* (ROWS, N) */, int y_dtype) {
    const int K = layer->in_width;
    const size_t panel_stride = (size_t)K * V;
    float acc[MAX_ROWS][MAX_TILE_PANELS][V];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; r++) {
        const float *bias = gp_row_bias(layer, labels, r) + col;
#pragma GCC unroll 8
        for (int p = 0; p < PANELS; p++) {
            for (int j = 0; j < V; j++) acc[r][p][j] = bias[p * V + j];
        }
    }
    for (int k = 0; k < K; k++) {
        const float *w[MAX_TILE_PANELS]; /* (PANELS, V): the panels' row k */
#pragma GCC unroll 8
        for (int p = 0; p < PANELS; p++) w[p] = panels + (size_t)p * panel_stride + (size_t)k * V;
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) {
            const float xv = x[(size_t)r * (size_t)K + (size_t)k];
#pragma GCC unroll 8
            for (int p = 0; p < PANELS; p++) {
                for (int j = 0; j < V; j++) acc[r][p][j] = GP_MADD(xv, w[p][j], acc[r][p][j]);
            }
        }
    }
    store_tile(ROWS, PANELS, layer, acc, col, y, y_dtype);
}

/* Every (rows, panels) shape gp_forward_tiles asks for, each with constant loop bounds. */
static void tile_portable_dispatch(int rows, int panels, const gp_layer *layer,
                                   const float *x /* (rows, K) */,
                                   const int32_t *labels /* (rows) or NULL */,
                                   const float *packed /* (panels, K, V) */, int col,
                                   void *y /* (rows, N) */, int y_dtype) {
#define GP_TILE(R, P) case (R) * 16 + (P): \
    tile_portable(R, P, layer, x, labels, packed, col, y, y_dtype); \
    break
    switch (rows * 16 + panels) {
    GP_TILE_SHAPES(GP_TILE);
    default: break; /* never: gp_forward_tiles asks only for GP_TILE_SHAPES */
    }
#undef GP_TILE
}

void gp_layer_forward_portable(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                               const int32_t *labels /* (rows) or NULL */,
                               void *y /* (rows, N) */, int y_dtype, int panel_begin,
                               int panel_end) {
    gp_forward_tiles(tile_portable_dispatch, FULL_ROWS, FULL_PANELS, layer, x, rows, labels, y,
                     y_dtype, panel_begin, panel_end);
}

void gp_u8_to_f32_portable(const unsigned char *u /* (count) */, size_t count,
                           float *x /* (count) */) {
    for (size_t i = 0; i < count; i++) x[i] = (float)u[i] / 127.5f - 1.0f;
}

int gp_in_range_portable(const float *x /* (count) */, size_t count, float low, float high) {
    int ok = 1;
    for (size_t i = 0; i < count; i++) ok &= (x[i] >= low) & (x[i] <= high);
    return ok;
}
