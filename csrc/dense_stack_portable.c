/* dense_stack_portable.c: the plain C path, for any CPU. Same blocking as the SIMD paths
 * (4 rows x one panel of 8 outputs, accumulators in fixed-size arrays) so the compiler can
 * vectorize the inner loops for whatever baseline it targets (SSE2 on x86-64).
 */
#include "dense_stack_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define V GP_PANEL_PORTABLE
#define MAX_ROWS 4

/* ---------------------------------------------------------------- activations */

static float exp_portable(float x) {
    x = x < GP_EXP_MIN ? GP_EXP_MIN : (x > GP_EXP_MAX ? GP_EXP_MAX : x);
    const float t = x * GP_LOG2E;
    const int n = (int)(t >= 0.0f ? t + 0.5f : t - 0.5f); /* round half away; |n| <= 127 */
    const float nf = (float)n;
    const float r = (x - nf * GP_LN2_HI) - nf * GP_LN2_LO; /* n * GP_LN2_HI is exact */
    float p = GP_EXP_C7;
    p = p * r + GP_EXP_C6;
    p = p * r + GP_EXP_C5;
    p = p * r + GP_EXP_C4;
    p = p * r + GP_EXP_C3;
    p = p * r + GP_EXP_C2;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t bits = (uint32_t)(n + 127) << 23; /* 2^n, n in [-126, 127]: a normal float */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static float tanh_portable(float x) {
    const float ax = x < 0.0f ? -x : x;
    float t;
    if (ax < GP_TANH_SMALL) {
        const float x2 = ax * ax;
        t = ax + ax * x2 * (GP_TANH_C3 + x2 * (GP_TANH_C5 + x2 * GP_TANH_C7));
    } else {
        const float e = exp_portable(2.0f * (ax < GP_TANH_CLAMP ? ax : GP_TANH_CLAMP));
        t = 1.0f - 2.0f / (e + 1.0f);
    }
    return x < 0.0f ? -t : t;
}

static float activate_portable(float v, int activation, float alpha) {
    switch (activation) {
    case GP_ACT_LEAKY_RELU: return v >= 0.0f ? v : alpha * v;
    case GP_ACT_RELU: return v < 0.0f ? 0.0f : v;
    case GP_ACT_TANH: return tanh_portable(v);
    case GP_ACT_SIGMOID: return 1.0f / (1.0f + exp_portable(-v));
    default: return v;
    }
}

/* ---------------------------------------------------------------- the hot loop */

/* One activated value as an 8-bit pixel: clip(rint((v + 1) * 127.5), 0, 255), float32 steps. */
static unsigned char to_u8_portable(float v) {
    float s = (v + 1.0f) * 127.5f;
    s = s > 0.0f ? s : 0.0f; /* NaN -> 0 */
    s = s < 255.0f ? s : 255.0f;
    return (unsigned char)rintf(s); /* half to even, as numpy's rint */
}

/* THE HOT LOOP of the portable path: rows x V outputs accumulated over all K inputs. x (rows, K)
   at stride K, panel (K, V), then bias + activation fused into the store of the valid columns
   (as floats, or as uint8 pixels when y_dtype is GP_U8). The accumulators start from the bias,
   or from each row's class-bias row when labels (rows) are given. */
static inline void tile_portable(const gp_layer *layer, const float *x, int rows,
                                 const int32_t *labels, const float *panel /* (K, V) */,
                                 int col /* first column */, void *y /* (rows, N) */,
                                 int y_dtype) {
    const int K = layer->in_width, N = layer->out_width;
    float acc[MAX_ROWS][V];
    for (int r = 0; r < rows; r++) memcpy(acc[r], gp_row_bias(layer, labels, r) + col, sizeof acc[r]);
    for (int k = 0; k < K; k++) {
        const float *w = panel + (size_t)k * V; /* (V) */
        for (int r = 0; r < rows; r++) {
            const float xv = x[(size_t)r * (size_t)K + (size_t)k];
            for (int j = 0; j < V; j++) acc[r][j] += xv * w[j];
        }
    }
    const int n_valid = N - col < V ? N - col : V;
    for (int r = 0; r < rows; r++) {
        const size_t at = (size_t)r * (size_t)N + (size_t)col;
        for (int j = 0; j < n_valid; j++) {
            const float v = activate_portable(acc[r][j], layer->activation, layer->alpha);
            if (y_dtype == GP_U8) ((unsigned char *)y)[at + (size_t)j] = to_u8_portable(v);
            else ((float *)y)[at + (size_t)j] = v;
        }
    }
}

void gp_layer_forward_portable(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                               const int32_t *labels /* (rows) or NULL */,
                               void *y /* (rows, N) */, int y_dtype, int panel_begin,
                               int panel_end) {
    const size_t K = (size_t)layer->in_width, N = (size_t)layer->out_width;
    const size_t y_size = y_dtype == GP_U8 ? 1 : sizeof(float);
    /* panel-major: one panel's weights (K * V floats) stay in L1 across all row blocks */
    for (int p = panel_begin; p < panel_end; p++) {
        const float *panel = layer->packed_weight + (size_t)p * K * V;
        for (int r = 0; r < rows; r += MAX_ROWS) {
            const int block = rows - r < MAX_ROWS ? rows - r : MAX_ROWS;
            tile_portable(layer, x + (size_t)r * K, block, labels == NULL ? NULL : labels + r,
                          panel, p * V, (char *)y + (size_t)r * N * y_size, y_dtype);
        }
    }
}

void gp_u8_to_f32_portable(const unsigned char *u /* (count) */, size_t count,
                           float *x /* (count) */) {
    for (size_t i = 0; i < count; i++) x[i] = (float)u[i] / 127.5f - 1.0f;
}

int gp_in_range_portable(const float *x /* (count) */, size_t count, float low, float high) {
    int ok = 1;
    for (size_t i = 0; i < count; i++) ok &= x[i] >= low && x[i] <= high;
    return ok;
}
