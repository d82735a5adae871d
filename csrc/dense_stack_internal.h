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

/* y = act(x W^T + b) for one layer, rows >= 1, x and y row-major and contiguous. The layer must
   have been packed for the same path (panel_width). */
void gp_layer_forward_portable(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                               float *y /* (rows, N) */);
#ifdef GP_HAVE_X86
void gp_layer_forward_avx2(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                           float *y /* (rows, N) */);
void gp_layer_forward_avx512(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                             float *y /* (rows, N) */);
#endif

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
