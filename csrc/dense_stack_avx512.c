/* dense_stack_avx512.c: the x86 AVX-512F path, 16 floats per vector.
 *
 * Compiled without -mavx512f: every function carries target("avx512f") (GP_TARGET_AVX512) and
 * only AVX-512F intrinsics are used (no DQ/BW/VL), so any AVX-512 CPU runs it; dense_stack.c
 * calls in only after __builtin_cpu_supports("avx512f"). 32 zmm registers allow bigger tiles than
 * AVX2: 4 rows x 4 panels (16 accumulators); the store is masked by an opmask.
 * `make test-avx512-emulated` runs this file on CPUs without AVX-512: the same code, its
 * intrinsics from SIMDe (tests/simde_avx512.h, -DGP_AVX512_SIMDE), the attribute empty.
 */
#include "dense_stack_layer.h"
#include "gp_isa.h"
#include "gp_math.h"

#ifdef GP_HAVE_X86
#ifdef GP_AVX512_SIMDE
#include "simde_avx512.h" /* csrc/tests/, on the include path of that build only */
#else
#include <immintrin.h>
#endif

#define V GP_PANEL_AVX512
#define MAX_ROWS 4   /* rows per tile */
#define MAX_PANELS 4 /* panels per tile */
#define GP_AVX512_INLINE static inline __attribute__((always_inline)) GP_TARGET_AVX512

/* ---------------------------------------------------------------- activations */

GP_AVX512_INLINE __m512 exp_avx512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(GP_EXP_MIN)), _mm512_set1_ps(GP_EXP_MAX));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(GP_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(GP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(GP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(GP_EXP_C7);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(GP_EXP_C6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(GP_EXP_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(GP_EXP_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(GP_EXP_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(GP_EXP_C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n); /* p * 2^n, n integral in [-126, 127] */
}

GP_AVX512_INLINE __m512 tanh_avx512(__m512 x) {
    const __m512i sign_bit = _mm512_set1_epi32((int)0x80000000u);
    const __m512i x_bits = _mm512_castps_si512(x);
    const __m512 ax = _mm512_castsi512_ps(_mm512_andnot_epi32(sign_bit, x_bits)); /* |x| */
    const __m512 x2 = _mm512_mul_ps(ax, ax);
    __m512 small = _mm512_fmadd_ps(x2, _mm512_set1_ps(GP_TANH_C7), _mm512_set1_ps(GP_TANH_C5));
    small = _mm512_fmadd_ps(x2, small, _mm512_set1_ps(GP_TANH_C3));
    small = _mm512_fmadd_ps(_mm512_mul_ps(ax, x2), small, ax);
    const __m512 clamped = _mm512_min_ps(ax, _mm512_set1_ps(GP_TANH_CLAMP));
    const __m512 e2 = exp_avx512(_mm512_add_ps(clamped, clamped)); /* exp(2|x|) */
    const __m512 large = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                                       _mm512_div_ps(_mm512_set1_ps(2.0f),
                                                     _mm512_add_ps(e2, _mm512_set1_ps(1.0f))));
    const __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(GP_TANH_SMALL), _CMP_LT_OQ);
    const __m512 t = _mm512_mask_blend_ps(is_small, large, small);
    /* tanh is odd: put the sign back */
    return _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(t),
                                               _mm512_and_epi32(sign_bit, x_bits)));
}

GP_AVX512_INLINE __m512 sigmoid_avx512(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

GP_AVX512_INLINE __m512 activate_avx512(__m512 v, int activation, float alpha) {
    const __m512 zero = _mm512_setzero_ps();
    switch (activation) {
    case GP_ACT_LEAKY_RELU: /* v >= 0 ? v : alpha * v */
        return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v,
                                  _mm512_set1_ps(alpha));
    case GP_ACT_RELU: /* v < 0 ? 0 : v */
        return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);
    case GP_ACT_TANH: return tanh_avx512(v);
    case GP_ACT_SIGMOID: return sigmoid_avx512(v);
    default: return v;
    }
}

/* Activated values -> 8-bit pixels, the lanes of `mask` stored: clip(rint((v + 1) * 127.5), 0,
   255) in float32 steps (round half to even: the default MXCSR mode), then vpmovdb. */
GP_AVX512_INLINE void store_u8_avx512(unsigned char *dst, __m512 v, __mmask16 mask) {
    __m512 s = _mm512_mul_ps(_mm512_add_ps(v, _mm512_set1_ps(1.0f)), _mm512_set1_ps(127.5f));
    s = _mm512_min_ps(_mm512_max_ps(s, _mm512_setzero_ps()), _mm512_set1_ps(255.0f)); /* NaN -> 0 */
    _mm512_mask_cvtepi32_storeu_epi8(dst, mask, _mm512_cvtps_epi32(s));
}

/* ---------------------------------------------------------------- the hot loop */

/* A tile's sums (ROWS x PANELS vectors) activated and stored to y (ROWS, N) at column col, masked
   to the valid columns (floats, or uint8 pixels when y_dtype is GP_U8). */
GP_AVX512_INLINE void store_tile_avx512(const int ROWS, const int PANELS, const gp_layer *layer,
                                        __m512 acc[MAX_ROWS][MAX_PANELS], int col, void *y,
                                        int y_dtype) {
    const int N = layer->out_width;
#pragma GCC unroll 4
    for (int p = 0; p < PANELS; p++) {
        const int n_valid = N - (col + p * V); /* >= 1: every panel has a real column */
        const __mmask16 mask = (__mmask16)(n_valid >= V ? 0xFFFFu : (1u << n_valid) - 1u);
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) {
            const __m512 out = activate_avx512(acc[r][p], layer->activation, layer->alpha);
            const size_t at = (size_t)r * (size_t)N + (size_t)(col + p * V);
            if (y_dtype == GP_U8) store_u8_avx512((unsigned char *)y + at, out, mask);
            else _mm512_mask_storeu_ps((float *)y + at, mask, out);
        }
    }
}

#ifdef GP_AVX512_SIMDE
/* The tiles store through this out-of-line copy in the SIMDe build only: there each inline store
   is ten times the code, and the file took 3 minutes of CPU to compile instead of 8 s; what the
   tiles compute is the same either way. */
__attribute__((noinline)) GP_TARGET_AVX512
static void store_tile_avx512_out_of_line(int rows, int panels, const gp_layer *layer,
                                          __m512 acc[MAX_ROWS][MAX_PANELS], int col, void *y,
                                          int y_dtype) {
    store_tile_avx512(rows, panels, layer, acc, col, y, y_dtype);
}
#endif

/* THE HOT LOOP of the AVX-512 path: ROWS x PANELS vectors of outputs, accumulated in registers
   over all K inputs (one broadcast of x and PANELS weight loads feed ROWS * PANELS FMAs per k),
   then bias (the accumulators start from it: the layer's, or each row's class-bias row when
   labels are given), activation and a store masked to the valid columns (floats, or uint8
   pixels when y_dtype is GP_U8). ROWS and PANELS are constants at every call site, so acc stays
   in zmm registers. Every output is its own chain of K FMAs in k order, whatever ROWS and
   PANELS are. */
GP_AVX512_INLINE void tile_avx512(const int ROWS, const int PANELS, const gp_layer *layer,
                                  const float *x /* (ROWS, K) */,
                                  const int32_t *labels /* (ROWS) or NULL */,
                                  const float *panels /* (PANELS, K, V) */, int col,
                                  void *y /* (ROWS, N) */, int y_dtype) {
    const int K = layer->in_width;
    const size_t panel_stride = (size_t)K * V;
    __m512 acc[MAX_ROWS][MAX_PANELS];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; r++) {
        const float *bias = gp_row_bias(layer, labels, r) + col;
#pragma GCC unroll 4
        for (int p = 0; p < PANELS; p++) acc[r][p] = _mm512_load_ps(bias + p * V);
    }
    for (int k = 0; k < K; k++) {
        __m512 w[MAX_PANELS];
#pragma GCC unroll 4
        for (int p = 0; p < PANELS; p++) {
            w[p] = _mm512_load_ps(panels + (size_t)p * panel_stride + (size_t)k * V);
        }
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) {
            const __m512 xv = _mm512_set1_ps(x[(size_t)r * (size_t)K + (size_t)k]);
#pragma GCC unroll 4
            for (int p = 0; p < PANELS; p++) acc[r][p] = _mm512_fmadd_ps(xv, w[p], acc[r][p]);
        }
    }
#ifdef GP_AVX512_SIMDE
    __m512 sums[MAX_ROWS][MAX_PANELS]; /* a copy: acc's address never escapes */
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; r++) {
#pragma GCC unroll 4
        for (int p = 0; p < PANELS; p++) sums[r][p] = acc[r][p];
    }
    store_tile_avx512_out_of_line(ROWS, PANELS, layer, sums, col, y, y_dtype);
#else
    store_tile_avx512(ROWS, PANELS, layer, acc, col, y, y_dtype);
#endif
}

/* ROWS rows across panels [begin, end), PANELS (= MAX_PANELS) at a time, then the tail. */
GP_AVX512_INLINE void row_block_avx512(const int ROWS, const int PANELS, const gp_layer *layer,
                                       const float *x /* (ROWS, K) */,
                                       const int32_t *labels /* (ROWS) or NULL */,
                                       void *y /* (ROWS, N) */, int y_dtype, int begin, int end) {
    int p = begin;
    for (; p + PANELS <= end; p += PANELS) {
        tile_avx512(ROWS, PANELS, layer, x, labels, gp_panel(layer, p), p * V, y, y_dtype);
    }
    const float *packed = gp_panel(layer, p); /* (end - p, K, V) */
    switch (end - p) {
    case 0: break;
    case 1: tile_avx512(ROWS, 1, layer, x, labels, packed, p * V, y, y_dtype); break;
    case 2: tile_avx512(ROWS, 2, layer, x, labels, packed, p * V, y, y_dtype); break;
    default: tile_avx512(ROWS, 3, layer, x, labels, packed, p * V, y, y_dtype); break;
    }
}

GP_TARGET_AVX512
void gp_layer_forward_avx512(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                             const int32_t *labels /* (rows) or NULL */,
                             void *y /* (rows, N) */, int y_dtype, int panel_begin,
                             int panel_end) {
    const size_t K = (size_t)layer->in_width;
    const size_t y_row = (size_t)layer->out_width * (y_dtype == GP_U8 ? 1 : sizeof(float));
    char *y_bytes = (char *)y; /* (rows, y_row) */
    /* Row blocks outer: a block's inputs stay in L1 while the weights stream from L2 (about
       16 bytes per cycle at 4 x 4, well within L2 bandwidth). A lone row is bound by that
       bandwidth instead (~100 bytes/ns measured, every weight used once): 1 x 4 gives 4
       independent FMA chains and 4 weight streams, measured a little faster than 1 x 2 or 1 x 8. */
    int r = 0;
    for (; r + MAX_ROWS <= rows; r += MAX_ROWS) {
        row_block_avx512(MAX_ROWS, 4, layer, x + (size_t)r * K, labels == NULL ? NULL : labels + r,
                         y_bytes + (size_t)r * y_row, y_dtype, panel_begin, panel_end);
    }
    const int32_t *rest = labels == NULL ? NULL : labels + r; /* (rows - r) */
    switch (rows - r) {
    case 0: break;
    case 1: row_block_avx512(1, 4, layer, x + (size_t)r * K, rest, y_bytes + (size_t)r * y_row,
                             y_dtype, panel_begin, panel_end); break;
    case 2: row_block_avx512(2, 4, layer, x + (size_t)r * K, rest, y_bytes + (size_t)r * y_row,
                             y_dtype, panel_begin, panel_end); break;
    default: row_block_avx512(3, 4, layer, x + (size_t)r * K, rest, y_bytes + (size_t)r * y_row,
                              y_dtype, panel_begin, panel_end); break;
    }
}

#else
typedef int gp_dense_stack_avx512_unused; /* ISO C wants a non-empty translation unit */
#endif /* GP_HAVE_X86 */
