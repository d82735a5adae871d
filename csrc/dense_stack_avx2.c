/* dense_stack_avx2.c: the x86 AVX2 + FMA3 path, 8 floats per vector.
 *
 * The file is compiled without -mavx2: every function carries target("avx2,fma"), and
 * dense_stack.c calls in only after __builtin_cpu_supports said yes. The tile is 4 rows x
 * 2 panels (8 accumulators of 8 outputs), the remainders use the same code with fewer.
 */
#include "dense_stack_internal.h"

#ifdef GP_HAVE_X86
#include <immintrin.h>

#define V GP_PANEL_AVX2
#define MAX_ROWS 4
#define MAX_PANELS 2
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

GP_AVX2_INLINE __m256 tanh_avx2(__m256 x) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    const __m256 ax = _mm256_andnot_ps(sign_bit, x); /* |x| */
    const __m256 x2 = _mm256_mul_ps(ax, ax);
    __m256 small = _mm256_fmadd_ps(x2, _mm256_set1_ps(GP_TANH_C7), _mm256_set1_ps(GP_TANH_C5));
    small = _mm256_fmadd_ps(x2, small, _mm256_set1_ps(GP_TANH_C3));
    small = _mm256_fmadd_ps(_mm256_mul_ps(ax, x2), small, ax);
    const __m256 clamped = _mm256_min_ps(ax, _mm256_set1_ps(GP_TANH_CLAMP));
    const __m256 e2 = exp_avx2(_mm256_add_ps(clamped, clamped)); /* exp(2|x|) */
    const __m256 large = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                                       _mm256_div_ps(_mm256_set1_ps(2.0f),
                                                     _mm256_add_ps(e2, _mm256_set1_ps(1.0f))));
    const __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(GP_TANH_SMALL), _CMP_LT_OQ);
    const __m256 t = _mm256_blendv_ps(large, small, is_small);
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

/* ---------------------------------------------------------------- the hot loop */

/* THE HOT LOOP of the AVX2 path: ROWS x PANELS vectors of outputs, accumulated in registers over
   all K inputs (one broadcast of x and PANELS weight loads feed ROWS * PANELS FMAs per k), then
   bias (the accumulators start from it), activation and a store masked to the valid columns.
   ROWS and PANELS are constants at every call site, so the loops unroll and acc stays in ymm. */
GP_AVX2_INLINE void tile_avx2(const int ROWS, const int PANELS, const gp_layer *layer,
                              const float *x /* (ROWS, K) */,
                              const float *panels /* (PANELS, K, V) */, int col,
                              float *y /* (ROWS, N) */) {
    const int K = layer->in_width, N = layer->out_width;
    const size_t panel_stride = (size_t)K * V;
    __m256 acc[MAX_ROWS][MAX_PANELS];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; r++) {
#pragma GCC unroll 2
        for (int p = 0; p < PANELS; p++) acc[r][p] = _mm256_load_ps(layer->bias + col + p * V);
    }
    for (int k = 0; k < K; k++) {
        __m256 w[MAX_PANELS];
#pragma GCC unroll 2
        for (int p = 0; p < PANELS; p++) {
            w[p] = _mm256_load_ps(panels + (size_t)p * panel_stride + (size_t)k * V);
        }
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) {
            const __m256 xv = _mm256_broadcast_ss(x + (size_t)r * (size_t)K + (size_t)k);
#pragma GCC unroll 2
            for (int p = 0; p < PANELS; p++) acc[r][p] = _mm256_fmadd_ps(xv, w[p], acc[r][p]);
        }
    }
#pragma GCC unroll 2
    for (int p = 0; p < PANELS; p++) {
        const int n_valid = N - (col + p * V); /* >= 1: every panel has a real column */
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n_valid),
                                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) {
            const __m256 out = activate_avx2(acc[r][p], layer->activation, layer->alpha);
            float *dst = y + (size_t)r * (size_t)N + (size_t)(col + p * V);
            if (n_valid >= V) _mm256_storeu_ps(dst, out);
            else _mm256_maskstore_ps(dst, mask, out);
        }
    }
}

/* Every (rows, panels) shape the driver can ask for, each with constant loop bounds. */
__attribute__((target("avx2,fma")))
static void tile_avx2_dispatch(int rows, int panels, const gp_layer *layer,
                               const float *x /* (rows, K) */,
                               const float *packed /* (panels, K, V) */, int col,
                               float *y /* (rows, N) */) {
    switch ((rows - 1) * MAX_PANELS + (panels - 1)) {
    case 0: tile_avx2(1, 1, layer, x, packed, col, y); break;
    case 1: tile_avx2(1, 2, layer, x, packed, col, y); break;
    case 2: tile_avx2(2, 1, layer, x, packed, col, y); break;
    case 3: tile_avx2(2, 2, layer, x, packed, col, y); break;
    case 4: tile_avx2(3, 1, layer, x, packed, col, y); break;
    case 5: tile_avx2(3, 2, layer, x, packed, col, y); break;
    case 6: tile_avx2(4, 1, layer, x, packed, col, y); break;
    default: tile_avx2(4, 2, layer, x, packed, col, y); break;
    }
}

__attribute__((target("avx2,fma")))
void gp_layer_forward_avx2(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                           float *y /* (rows, N) */, int panel_begin, int panel_end) {
    const size_t K = (size_t)layer->in_width, N = (size_t)layer->out_width;
    /* panel-major: a pair of panels (2 * K * V floats) stays hot in cache across all row blocks */
    for (int p = panel_begin; p < panel_end; p += MAX_PANELS) {
        const int panels = panel_end - p < MAX_PANELS ? panel_end - p : MAX_PANELS;
        const float *packed = layer->packed_weight + (size_t)p * K * V;
        for (int r = 0; r < rows; r += MAX_ROWS) {
            const int block = rows - r < MAX_ROWS ? rows - r : MAX_ROWS;
            tile_avx2_dispatch(block, panels, layer, x + (size_t)r * K, packed, p * V,
                               y + (size_t)r * N);
        }
    }
}

#else
typedef int gp_dense_stack_avx2_unused; /* ISO C wants a non-empty translation unit */
#endif /* GP_HAVE_X86 */
