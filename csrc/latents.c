/* latents.c: the latent stream "ganpack-philox/1" (see ganpack_kernel.h), plain C path, the
 * public gp_latents and the choice of path. runtime/ganpack/latents.py is the reference: every
 * float32 operation below is the one it does, in the same order, never fused (the build passes
 * -ffp-contract=off), so C and numpy give the same bits.
 *
 * Per block of a row: Philox4x32-10 of counter (block, row lo, row hi, 0) under key (seed lo,
 * seed hi) gives words w0..w3. normal: (w0, w1) and (w2, w3) are Box-Muller pairs; uniform:
 * each word is (w >> 8) 2^-24. Value j of a row is word j / blocks of block j % blocks.
 */
#include "dense_stack_internal.h"

#include <math.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* gcc: -std=c11 and -ffp-contract=off already say so */
#endif

/* ---------------------------------------------------------------- Philox4x32-10 */

static void philox4x32_10(uint32_t x[4], uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += GP_PHILOX_W0;
            k1 += GP_PHILOX_W1;
        }
        const uint64_t p0 = (uint64_t)GP_PHILOX_M0 * x[0];
        const uint64_t p1 = (uint64_t)GP_PHILOX_M1 * x[2];
        const uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k0;
        const uint32_t y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k1;
        x[0] = y0;
        x[1] = (uint32_t)p1;
        x[2] = y2;
        x[3] = (uint32_t)p0;
    }
}

/* ---------------------------------------------------------------- the float32 transform */

static float bits_to_float(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static uint32_t float_to_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/* log u for u in (0, 1]: u = m 2^e, m in [sqrt(2)/2, sqrt(2)), log m = 2 atanh((m-1)/(m+1)). */
static float log_unit(float u) {
    const uint32_t bits = float_to_bits(u);
    int exponent = (int)(bits >> 23) - 127;
    float m = bits_to_float((bits & 0x7FFFFFu) | 0x3F800000u);
    if (m > GP_LAT_SQRT2) {
        m = m * 0.5f;
        exponent += 1;
    }
    const float f = m - 1.0f;
    const float s = f / (f + 2.0f);
    const float s2 = s * s;
    float p = GP_LAT_ATANH9;
    p = p * s2 + GP_LAT_ATANH7;
    p = p * s2 + GP_LAT_ATANH5;
    p = p * s2 + GP_LAT_ATANH3;
    p = p * s2 + 1.0f;
    return (float)exponent * GP_LAT_LN2 + (s + s) * p;
}

/* cos and sin of 2 pi v, v in [0, 1): 4v = q + f, q = nearest (half to even), |f| <= 1/2. */
static void cos_sin_turn(float v, float *cos_out, float *sin_out) {
    const float t = v * 4.0f;
    const float q = rintf(t); /* half to even, as numpy's rint, in the default rounding mode */
    const float f = t - q;
    const float f2 = f * f;
    float sp = GP_LAT_SIN9;
    sp = sp * f2 + GP_LAT_SIN7;
    sp = sp * f2 + GP_LAT_SIN5;
    sp = sp * f2 + GP_LAT_SIN3;
    sp = sp * f2 + GP_LAT_SIN1;
    const float sin_a = f * sp;
    float cp = GP_LAT_COS10;
    cp = cp * f2 + GP_LAT_COS8;
    cp = cp * f2 + GP_LAT_COS6;
    cp = cp * f2 + GP_LAT_COS4;
    cp = cp * f2 + GP_LAT_COS2;
    const float cos_a = cp * f2 + 1.0f;
    const int quarter = (int)q;
    float c = (quarter & 1) ? sin_a : cos_a;
    float s = (quarter & 1) ? cos_a : sin_a;
    if ((quarter + 1) & 2) c = -c; /* quarters 1 and 2 */
    if (quarter & 2) s = -s;       /* quarters 2 and 3 */
    *cos_out = c;
    *sin_out = s;
}

static float unit(uint32_t word) { /* [0, 1), exact */
    return (float)(word >> 8) * GP_LAT_TWO_M24;
}

/* Box-Muller of one pair of words. */
static void normal_pair(uint32_t radius_word, uint32_t angle_word, float *a, float *b) {
    const float u = (float)((radius_word >> 8) + 1u) * GP_LAT_TWO_M24; /* (0, 1] */
    const float radius = sqrtf(log_unit(u) * -2.0f);
    float c, s;
    cos_sin_turn(unit(angle_word), &c, &s);
    *a = radius * c;
    *b = radius * s;
}

/* ---------------------------------------------------------------- rows */

void gp_latents_portable(uint64_t seed, int64_t first_row, int rows, int dim, int distribution,
                         float scale, float offset, float *z /* (rows, dim) */) {
    const int blocks = (dim + 3) / 4;
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < rows; r++) {
        const uint64_t row = (uint64_t)first_row + (uint64_t)r;
        float *out = z + (size_t)r * (size_t)dim; /* (dim) */
        for (int b = 0; b < blocks; b++) {
            uint32_t x[4] = {(uint32_t)b, (uint32_t)row, (uint32_t)(row >> 32), 0u};
            philox4x32_10(x, k0, k1);
            float value[4];
            if (distribution == GP_LATENT_NORMAL) {
                normal_pair(x[0], x[1], &value[0], &value[1]);
                normal_pair(x[2], x[3], &value[2], &value[3]);
            } else {
                for (int w = 0; w < 4; w++) value[w] = unit(x[w]);
            }
            for (int w = 0; w < 4; w++) {
                const int j = w * blocks + b;
                if (j < dim) out[j] = value[w] * scale + offset;
            }
        }
    }
}

void gp_latents_isa(int isa, uint64_t seed, int64_t first_row, int rows, int dim,
                    int distribution, float scale, float offset, float *z) {
#ifdef GP_HAVE_X86
    if (gp_isa_has_avx2(isa)) {
        gp_latents_avx2(seed, first_row, rows, dim, distribution, scale, offset, z);
        return;
    }
#endif
    (void)isa;
    gp_latents_portable(seed, first_row, rows, dim, distribution, scale, offset, z);
}

/* ---------------------------------------------------------------- the API */

gp_status gp_check_latent_args(int64_t first_row, int rows, int distribution, float scale,
                               float offset) {
    if (rows < 0 || first_row < 0 || first_row > INT64_MAX - rows) return GP_ERR_SHAPE;
    if (distribution != GP_LATENT_NORMAL && distribution != GP_LATENT_UNIFORM) {
        return GP_ERR_ARGUMENT;
    }
    /* written so that NaN fails too: x - x is 0 for every finite x, NaN for NaN and infinities */
    if (!(scale - scale == 0.0f) || !(offset - offset == 0.0f)) return GP_ERR_ARGUMENT;
    return GP_OK;
}

gp_status gp_latents(uint64_t seed, int64_t first_row, int rows, int dim, int distribution,
                     float scale, float offset, float *z) {
    if (dim < 1 || dim > (1 << 20)) return GP_ERR_SHAPE;
    const gp_status status = gp_check_latent_args(first_row, rows, distribution, scale, offset);
    if (status != GP_OK) return status;
    if (rows == 0) return GP_OK;
    if (z == NULL) return GP_ERR_NULL;
    gp_latents_isa(gp_best_isa(), seed, first_row, rows, dim, distribution, scale, offset, z);
    return GP_OK;
}
