/* latents_avx2.c: the latent stream of latents.c, 8 blocks of a row at a time in AVX2 lanes.
 *
 * The same operations as latents.c and runtime/ganpack/latents.py, lane by lane: exact integer
 * Philox rounds, then float32 multiplies, adds, a divide and a square root, each correctly
 * rounded and never fused (target "avx2" without "fma": no FMA can even be emitted here), so the
 * bits equal the plain C path's. AVX-512 stacks use this path too.
 */
#include "gp_isa.h"
#include "latents.h"

#ifdef GP_HAVE_X86
#include <immintrin.h>

#define LANES 8
#define GP_LAT_INLINE static inline __attribute__((always_inline, target("avx2")))

/* A group is 8 blocks in the 8 lanes: 8 consecutive blocks of one row, or the last blocks of
   up to 8 rows (a row's blocks % 8), so no lane is wasted on a row's end. Its two Box-Muller
   pairs go through every step side by side. */
#define PAIRS 2

/* ---------------------------------------------------------------- Philox4x32-10, 8 lanes */

/* hi and lo 32 bits of x * m for each of the 8 unsigned lanes */
GP_LAT_INLINE void mulhilo(__m256i x, __m256i m, __m256i *hi, __m256i *lo) {
    const __m256i even = _mm256_mul_epu32(x, m);                        /* lanes 0, 2, 4, 6 */
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);  /* lanes 1, 3, 5, 7 */
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

GP_LAT_INLINE void philox_avx2(__m256i x[4], uint32_t k0, uint32_t k1) {
    const __m256i m0 = _mm256_set1_epi32((int)GP_PHILOX_M0);
    const __m256i m1 = _mm256_set1_epi32((int)GP_PHILOX_M1);
#pragma GCC unroll 10
    for (int round = 0; round < 10; round++) {
        const __m256i key0 = _mm256_set1_epi32((int)(k0 + (uint32_t)round * GP_PHILOX_W0));
        const __m256i key1 = _mm256_set1_epi32((int)(k1 + (uint32_t)round * GP_PHILOX_W1));
        __m256i hi0, lo0, hi1, lo1;
        mulhilo(x[0], m0, &hi0, &lo0);
        mulhilo(x[2], m1, &hi1, &lo1);
        x[0] = _mm256_xor_si256(_mm256_xor_si256(hi1, x[1]), key0);
        x[1] = lo1;
        x[2] = _mm256_xor_si256(_mm256_xor_si256(hi0, x[3]), key1);
        x[3] = lo0;
    }
}

/* ---------------------------------------------------------------- the float32 transform */

GP_LAT_INLINE __m256 unit_avx2(__m256i word) { /* (w >> 8) 2^-24 in [0, 1) */
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(word, 8)),
                         _mm256_set1_ps(GP_LAT_TWO_M24));
}

/* p = p * s2 + c for each of the PAIRS chains, as a multiply then an add */
#define GP_LAT_STEP(p, s2, c)                                                                   \
    _Pragma("GCC unroll 4") for (int i = 0; i < PAIRS; i++) {                                   \
        p[i] = _mm256_add_ps(_mm256_mul_ps(p[i], s2[i]), _mm256_set1_ps(c));                    \
    }

/* radius = sqrt(-2 log u) of PAIRS vectors of u in (0, 1] (latents.c: log_unit, normal_pair) */
GP_LAT_INLINE void radius_avx2(const __m256 u[PAIRS], __m256 radius[PAIRS]) {
    __m256 s[PAIRS], s2[PAIRS], p[PAIRS], e[PAIRS];
#pragma GCC unroll 4
    for (int i = 0; i < PAIRS; i++) {
        const __m256i bits = _mm256_castps_si256(u[i]);
        __m256i exponent = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
        __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
            _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFF)), _mm256_set1_epi32(0x3F800000)));
        const __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(GP_LAT_SQRT2), _CMP_GT_OQ);
        m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
        exponent = _mm256_sub_epi32(exponent, _mm256_castps_si256(big)); /* big is -1: + 1 */
        e[i] = _mm256_cvtepi32_ps(exponent);
        const __m256 f = _mm256_sub_ps(m, _mm256_set1_ps(1.0f));
        s[i] = _mm256_div_ps(f, _mm256_add_ps(f, _mm256_set1_ps(2.0f)));
        s2[i] = _mm256_mul_ps(s[i], s[i]);
        p[i] = _mm256_set1_ps(GP_LAT_ATANH9);
    }
    GP_LAT_STEP(p, s2, GP_LAT_ATANH7)
    GP_LAT_STEP(p, s2, GP_LAT_ATANH5)
    GP_LAT_STEP(p, s2, GP_LAT_ATANH3)
    GP_LAT_STEP(p, s2, 1.0f)
#pragma GCC unroll 4
    for (int i = 0; i < PAIRS; i++) {
        const __m256 log_u = _mm256_add_ps(_mm256_mul_ps(e[i], _mm256_set1_ps(GP_LAT_LN2)),
                                           _mm256_mul_ps(_mm256_add_ps(s[i], s[i]), p[i]));
        radius[i] = _mm256_sqrt_ps(_mm256_mul_ps(log_u, _mm256_set1_ps(-2.0f)));
    }
}

/* cos and sin of 2 pi v for PAIRS vectors of v in [0, 1) (latents.c: cos_sin_turn) */
GP_LAT_INLINE void cos_sin_avx2(const __m256 v[PAIRS], __m256 cos_out[PAIRS],
                                __m256 sin_out[PAIRS]) {
    __m256 f[PAIRS], f2[PAIRS], sp[PAIRS], cp[PAIRS];
    __m256i quarter[PAIRS];
#pragma GCC unroll 4
    for (int i = 0; i < PAIRS; i++) {
        const __m256 t = _mm256_mul_ps(v[i], _mm256_set1_ps(4.0f));
        const __m256 q = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        quarter[i] = _mm256_cvtps_epi32(q); /* exact: q is an integer in [0, 4] */
        f[i] = _mm256_sub_ps(t, q);
        f2[i] = _mm256_mul_ps(f[i], f[i]);
        sp[i] = _mm256_set1_ps(GP_LAT_SIN9);
        cp[i] = _mm256_set1_ps(GP_LAT_COS10);
    }
    GP_LAT_STEP(sp, f2, GP_LAT_SIN7)
    GP_LAT_STEP(cp, f2, GP_LAT_COS8)
    GP_LAT_STEP(sp, f2, GP_LAT_SIN5)
    GP_LAT_STEP(cp, f2, GP_LAT_COS6)
    GP_LAT_STEP(sp, f2, GP_LAT_SIN3)
    GP_LAT_STEP(cp, f2, GP_LAT_COS4)
    GP_LAT_STEP(sp, f2, GP_LAT_SIN1)
    GP_LAT_STEP(cp, f2, GP_LAT_COS2)
    GP_LAT_STEP(cp, f2, 1.0f)
    const __m256i one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2);
#pragma GCC unroll 4
    for (int i = 0; i < PAIRS; i++) {
        const __m256 sin_a = _mm256_mul_ps(f[i], sp[i]), cos_a = cp[i];
        const __m256 odd = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(quarter[i], one), one));
        const __m256 c = _mm256_blendv_ps(cos_a, sin_a, odd);
        const __m256 s = _mm256_blendv_ps(sin_a, cos_a, odd);
        /* the sign bit, set for quarters 1 and 2 (cos) and 2 and 3 (sin) */
        const __m256i c_sign = _mm256_slli_epi32(_mm256_and_si256(_mm256_add_epi32(quarter[i], one), two), 30);
        const __m256i s_sign = _mm256_slli_epi32(_mm256_and_si256(quarter[i], two), 30);
        cos_out[i] = _mm256_xor_ps(c, _mm256_castsi256_ps(c_sign));
        sin_out[i] = _mm256_xor_ps(s, _mm256_castsi256_ps(s_sign));
    }
}

/* ---------------------------------------------------------------- groups and rows */

/* The 4 words of 8 blocks (counter (block, row lo, row hi, 0)) -> 4 vectors of values. */
GP_LAT_INLINE void group_avx2(__m256i block, __m256i row_lo, __m256i row_hi, uint32_t k0,
                              uint32_t k1, int distribution, __m256 scale, __m256 offset,
                              __m256 value[4]) {
    __m256i x[4] = {block, row_lo, row_hi, _mm256_setzero_si256()};
    philox_avx2(x, k0, k1);
    if (distribution == GP_LATENT_NORMAL) {
        __m256 u[PAIRS], v[PAIRS], radius[PAIRS], c[PAIRS], s[PAIRS];
        for (int i = 0; i < PAIRS; i++) { /* pair i: words 2i (radius) and 2i + 1 (angle) */
            u[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_srli_epi32(x[2 * i], 8),
                                                                     _mm256_set1_epi32(1))),
                                 _mm256_set1_ps(GP_LAT_TWO_M24)); /* (0, 1] */
            v[i] = unit_avx2(x[2 * i + 1]);
        }
        radius_avx2(u, radius);
        cos_sin_avx2(v, c, s);
        for (int i = 0; i < PAIRS; i++) {
            value[2 * i] = _mm256_mul_ps(radius[i], c[i]);
            value[2 * i + 1] = _mm256_mul_ps(radius[i], s[i]);
        }
    } else {
        for (int w = 0; w < 4; w++) value[w] = unit_avx2(x[w]);
    }
    for (int w = 0; w < 4; w++) value[w] = _mm256_add_ps(_mm256_mul_ps(value[w], scale), offset);
}

__attribute__((target("avx2")))
void gp_latents_avx2(uint64_t seed, int64_t first_row, int rows, int dim, int distribution,
                     float scale, float offset, float *z /* (rows, dim) */) {
    const int blocks = (dim + 3) / 4, whole = blocks / LANES * LANES; /* whole: in full groups */
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 scale_v = _mm256_set1_ps(scale), offset_v = _mm256_set1_ps(offset);
    __m256 value[4];
    /* full groups: 8 blocks of one row, stored with vector stores (whole <= blocks, so every
       word but the last ones of a short row lies inside the row) */
    for (int r = 0; r < rows; r++) {
        const uint64_t row = (uint64_t)first_row + (uint64_t)r;
        float *out = z + (size_t)r * (size_t)dim; /* (dim) */
        for (int b = 0; b < whole; b += LANES) {
            group_avx2(_mm256_add_epi32(_mm256_set1_epi32(b), lane), _mm256_set1_epi32((int)(uint32_t)row),
                       _mm256_set1_epi32((int)(uint32_t)(row >> 32)), k0, k1, distribution, scale_v,
                       offset_v, value);
            for (int w = 0; w < 4; w++) {
                const int start = w * blocks + b, valid = dim - start; /* value index of lane 0 */
                if (valid >= LANES) {
                    _mm256_storeu_ps(out + start, value[w]);
                } else if (valid > 0) {
                    _mm256_maskstore_ps(out + start, _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lane),
                                        value[w]);
                }
            }
        }
    }
    /* the rest: blocks [whole, blocks) of every row, 8 (row, block) pairs to a group */
    const int tail = blocks - whole;
    if (tail == 0) return;
    const long long pairs = (long long)rows * tail;
    for (long long first = 0; first < pairs; first += LANES) {
        int32_t block[LANES], lo[LANES], hi[LANES], row_of[LANES];
        const int count = pairs - first < LANES ? (int)(pairs - first) : LANES;
        for (int l = 0; l < LANES; l++) {
            const long long pair = first + (l < count ? l : 0);
            const int r = (int)(pair / tail);
            const uint64_t row = (uint64_t)first_row + (uint64_t)r;
            row_of[l] = r;
            block[l] = whole + (int)(pair % tail);
            lo[l] = (int32_t)(uint32_t)row;
            hi[l] = (int32_t)(uint32_t)(row >> 32);
        }
        group_avx2(_mm256_loadu_si256((const __m256i *)(const void *)block),
                   _mm256_loadu_si256((const __m256i *)(const void *)lo),
                   _mm256_loadu_si256((const __m256i *)(const void *)hi), k0, k1, distribution,
                   scale_v, offset_v, value);
        float lanes[4][LANES];
        for (int w = 0; w < 4; w++) _mm256_storeu_ps(lanes[w], value[w]);
        for (int l = 0; l < count; l++) {
            float *out = z + (size_t)row_of[l] * (size_t)dim; /* (dim) */
            for (int w = 0; w < 4; w++) {
                const int j = w * blocks + block[l];
                if (j < dim) out[j] = lanes[w][l];
            }
        }
    }
}

#else
typedef int gp_latents_avx2_unused; /* ISO C wants a non-empty translation unit */
#endif /* GP_HAVE_X86 */
