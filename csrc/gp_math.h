/* gp_math.h: the constants of the tanh / sigmoid approximations, shared by every ISA path
 * (dense_stack_{portable,avx2,avx512}.c) so that the paths agree. Not part of the API.
 * Measured errors: csrc/README.md, "tanh and sigmoid".
 */
#ifndef GANPACK_GP_MATH_H
#define GANPACK_GP_MATH_H

/* exp(x): clamp x to [GP_EXP_MIN, GP_EXP_MAX] so 2^n stays a normal float, write x = n ln2 + r
   with n = round(x / ln2) and |r| <= ln2 / 2 (ln2 split in a short high part, exact when
   multiplied by n, and a low correction), then exp(r) by its degree-7 Taylor polynomial
   (truncation error < 6e-9 relative on |r| <= 0.35), then scale by 2^n through the exponent.
   sigmoid(x) = 1 / (1 + exp(-x)).
   tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)) (the AVX-512 path), |x| clamped to GP_TANH_CLAMP
   (tanh(10) rounds to 1 in float, as does this formula at 10); below GP_TANH_SMALL the odd
   Taylor series x - x^3/3 + 2x^5/15 - 17x^7/315 instead (truncation < 2e-10 there), which keeps
   small outputs relatively accurate too, where 1 - 2 / (e + 1) would cancel. */
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

/* tanh, rational form (the AVX2 and portable paths): a = min(|x|, GP_TANH_R_CLAMP), s = a * a,
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

#endif /* GANPACK_GP_MATH_H */
