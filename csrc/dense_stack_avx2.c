/* dense_stack_avx2.c: the x86 AVX2 + FMA3 path, 8 floats per vector.
 *
 * The file is compiled without -mavx2: every function carries target("avx2,fma"), and
 * dense_stack.c calls in only after __builtin_cpu_supports said yes. The tile is 4 rows x
 * 2 panels (8 accumulators of 8 outputs), the remainders use the same code with fewer.
 */
#include "dense_stack_tiles.h"
#include "gp_isa.h"
#include "gp_math.h"

#ifdef GP_HAVE_X86
#include <immintrin.h>

#define V GP_PANEL_AVX2
#define MAX_ROWS 4
#define MAX_TILE_PANELS 8 /* panels of a short tile: 1 row x 8, 2 x 4, 3 x 2 (gp_forward_tiles) */
#define GP_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* ---------------------------------------------------------------- activations */

GP_AVX2_INLINE __m256 exp_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(GP_EXP_MIN)), _mm256_set1_ps(GP_EXP_MAX));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(GP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(GP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(GP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(GP_EXP_C7);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(GP_EXP_C6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(GP_EXP_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(GP_EXP_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(GP_EXP_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(GP_EXP_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    /* 2^n through the exponent field; n in [-126, 127] */
    const __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

/* tanh: the rational form of gp_math.h (about 20 vector ops, no exp). */
GP_AVX2_INLINE __m256 tanh_avx2(__m256 x) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    const __m256 a = _mm256_min_ps(_mm256_andnot_ps(sign_bit, x), _mm256_set1_ps(GP_TANH_R_CLAMP));
    const __m256 s = _mm256_mul_ps(a, a);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(GP_TANH_P4), s, _mm256_set1_ps(GP_TANH_P3));
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(GP_TANH_Q4), s, _mm256_set1_ps(GP_TANH_Q3));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(GP_TANH_P2));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(GP_TANH_Q2));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(GP_TANH_P1));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(GP_TANH_Q1));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.0f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(1.0f));
    const __m256 t = _mm256_min_ps(_mm256_div_ps(_mm256_mul_ps(a, p), q), _mm256_set1_ps(1.0f));
    return _mm256_or_ps(t, _mm256_and_ps(sign_bit, x)); /* tanh is odd: put the sign back */
}

GP_AVX2_INLINE __m256 sigmoid_avx2(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

GP_AVX2_INLINE __m256 activate_avx2(__m256 v, int activation, float alpha) {
    const __m256 zero = _mm256_setzero_ps();
    switch (activation) {
    case GP_ACT_LEAKY_RELU: /* v >= 0 ? v : alpha * v */
        return _mm256_blendv_ps(_mm256_mul_ps(v, _mm256_set1_ps(alpha)), v,
                                _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
    case GP_ACT_RELU: /* v < 0 ? 0 : v */
        return _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    case GP_ACT_TANH: return tanh_avx2(v);
    case GP_ACT_SIGMOID: return sigmoid_avx2(v);
    default: return v;
    }
}

/* Activated values -> 8-bit pixels, stored: clip(rint((v + 1) * 127.5), 0, 255) in float32
   steps (round half to even: the default MXCSR mode), n_valid (1..8) of them. */
GP_AVX2_INLINE void store_u8_avx2(unsigned char *dst, __m256 v, int n_valid) {
    __m256 s = _mm256_mul_ps(_mm256_add_ps(v, _mm256_set1_ps(1.0f)), _mm256_set1_ps(127.5f));
    s = _mm256_min_ps(_mm256_max_ps(s, _mm256_setzero_ps()), _mm256_set1_ps(255.0f)); /* NaN -> 0 */
    const __m256i i32 = _mm256_cvtps_epi32(s);
    const __m128i i16 = _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
    const __m128i u8 = _mm_packus_epi16(i16, i16); /* bytes 0..7 are the 8 pixels */
    if (n_valid >= V) {
        _mm_storel_epi64((__m128i *)(void *)dst, u8);
    } else {
        unsigned char bytes[16];
        _mm_storeu_si128((__m128i *)(void *)bytes, u8);
        for (int j = 0; j < n_valid; j++) dst[j] = bytes[j];
    }
}

/* ---------------------------------------------------------------- the hot loop */

/* A tile's sums (ROWS x PANELS vectors) activated and stored to y (ROWS, N) at column col, masked
   to the valid columns (floats, or uint8 pixels when y_dtype is GP_U8). */
GP_AVX2_INLINE void store_tile_avx2(const int ROWS, const int PANELS, const gp_layer *layer,
                                    __m256 acc[MAX_ROWS][MAX_TILE_PANELS], int col, void *y,
                                    int y_dtype) {
    const int N = layer->out_width;
#pragma GCC unroll 8
    for (int p = 0; p < PANELS; p++) {
        const int n_valid = N - (col + p * V); /* >= 1: every panel has a real column */
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n_valid),
                                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) {
            const __m256 out = activate_avx2(acc[r][p], layer->activation, layer->alpha);
            const size_t at = (size_t)r * (size_t)N + (size_t)(col + p * V);
            if (y_dtype == GP_U8) {
                store_u8_avx2((unsigned char *)y + at, out, n_valid);
            } else {
                float *dst = (float *)y + at;
                if (n_valid >= V) _mm256_storeu_ps(dst, out);
                else _mm256_maskstore_ps(dst, mask, out);
            }
        }
    }
}

/* THE HOT LOOP of the AVX2 path: ROWS x PANELS vectors of outputs, accumulated in registers over
   all K inputs (one broadcast of x and PANELS weight loads feed ROWS * PANELS FMAs per k), then
   bias (the accumulators start from it: the layer's, or each row's class-bias row when labels
   are given), activation and a store masked to the valid columns (floats, or uint8 pixels when
   y_dtype is GP_U8).
   ROWS and PANELS are constants at every call site, so the loops unroll and acc stays in ymm. */
GP_AVX2_INLINE void tile_avx2(const int ROWS, const int PANELS, const gp_layer *layer,
                              const float *x /* (ROWS, K) */, const int32_t *labels /* (ROWS) */,
                              const float *panels /* (PANELS, K, V) */, int col,
                              void *y /* (ROWS, N) */, int y_dtype) {
    const int K = layer->in_width;
    const size_t panel_stride = (size_t)K * V;
    __m256 acc[MAX_ROWS][MAX_TILE_PANELS];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; r++) {
        const float *bias = gp_row_bias(layer, labels, r) + col;
#pragma GCC unroll 8
        for (int p = 0; p < PANELS; p++) acc[r][p] = _mm256_load_ps(bias + p * V);
    }
    for (int k = 0; k < K; k++) {
        __m256 w[MAX_TILE_PANELS];
#pragma GCC unroll 8
        for (int p = 0; p < PANELS; p++) {
            w[p] = _mm256_load_ps(panels + (size_t)p * panel_stride + (size_t)k * V);
        }
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) {
            const __m256 xv = _mm256_broadcast_ss(x + (size_t)r * (size_t)K + (size_t)k);
#pragma GCC unroll 8
            for (int p = 0; p < PANELS; p++) acc[r][p] = _mm256_fmadd_ps(xv, w[p], acc[r][p]);
        }
    }
    store_tile_avx2(ROWS, PANELS, layer, acc, col, y, y_dtype);
}

/* Every (rows, panels) shape gp_forward_tiles asks for, each with constant loop bounds. */
__attribute__((target("avx2,fma")))
static void tile_avx2_dispatch(int rows, int panels, const gp_layer *layer,
                               const float *x /* (rows, K) */, const int32_t *labels /* (rows) */,
                               const float *packed /* (panels, K, V) */, int col,
                               void *y /* (rows, N) */, int y_dtype) {
#define GP_TILE(R, P) case (R) * 16 + (P): \
    tile_avx2(R, P, layer, x, labels, packed, col, y, y_dtype); \
    break
    switch (rows * 16 + panels) {
    GP_TILE_SHAPES(GP_TILE);
    default: break; /* never: gp_forward_tiles asks only for GP_TILE_SHAPES */
    }
#undef GP_TILE
}

/* Full tiles of 4 rows x 2 panels; the 1 to 3 rows left take short tiles of 1 x 8, 2 x 4 or
   3 x 2 panels (gp_forward_tiles): one FMA chain per output is a latency of K x 5 cycles, so a
   short tile keeps 6 to 8 chains in flight. Each output is still the same chain in k order. */
__attribute__((target("avx2,fma")))
void gp_layer_forward_avx2(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                           const int32_t *labels /* (rows) or NULL */,
                           void *y /* (rows, N) */, int y_dtype, int panel_begin, int panel_end) {
    gp_forward_tiles(tile_avx2_dispatch, 4, 2, layer, x, rows, labels, y, y_dtype, panel_begin,
                     panel_end);
}

/* uint8 pixels -> u / 127.5f - 1.0f, 8 at a time (a true divide: the same bits as numpy's). */
__attribute__((target("avx2,fma")))
void gp_u8_to_f32_avx2(const unsigned char *u /* (count) */, size_t count, float *x /* (count) */) {
    const __m256 half_range = _mm256_set1_ps(127.5f), one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m256i wide = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(u + i)));
        _mm256_storeu_ps(x + i, _mm256_sub_ps(_mm256_div_ps(_mm256_cvtepi32_ps(wide), half_range), one));
    }
    for (; i < count; i++) x[i] = (float)u[i] / 127.5f - 1.0f;
}

/* 1 when every x lies in [low, high]; ordered compares, so NaN fails. */
__attribute__((target("avx2,fma")))
int gp_in_range_avx2(const float *x /* (count) */, size_t count, float low_value, float high_value) {
    const __m256 low = _mm256_set1_ps(low_value), high = _mm256_set1_ps(high_value);
    __m256 ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        ok = _mm256_and_ps(ok, _mm256_and_ps(_mm256_cmp_ps(v, low, _CMP_GE_OQ),
                                             _mm256_cmp_ps(v, high, _CMP_LE_OQ)));
    }
    int all = _mm256_movemask_ps(ok) == 0xFF;
    for (; i < count; i++) all &= x[i] >= low_value && x[i] <= high_value;
    return all;
}

#else
typedef int gp_dense_stack_avx2_unused; /* ISO C wants a non-empty translation unit */
#endif /* GP_HAVE_X86 */
