/* dense_stack_layer.h: one packed layer, as dense_stack.c stores it and the per-ISA files
 * (dense_stack_{portable,avx2,avx512}.c) read it, and the functions each path implements. Not
 * part of the API.
 */
#ifndef GANPACK_DENSE_STACK_LAYER_H
#define GANPACK_DENSE_STACK_LAYER_H

#include "ganpack_kernel.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Outputs per packed panel (= floats per vector; the portable path's 8 are two 16-byte baseline
   vectors, SSE2 or Advanced SIMD, as its compiler vectorizes them). */
#define GP_PANEL_PORTABLE 8
#define GP_PANEL_AVX2 8
#define GP_PANEL_AVX512 16

/* One layer, as the hot loops read it. Set by gp_stack_set_layer(_precision), read-only afterwards.
   Panel p holds output columns [p * V, p * V + V) for every input k: packed_weight[p][k][j] =
   W[p * V + j][k], zero for columns >= out_width, so the hot loop never needs a column mask.
   The packed weights are always float32: with GP_PRECISION_BF16 each is rounded to bfloat16
   (gp_bf16_round) and widened back, exactly, as it is packed, so the hot loops are the float32
   ones and a bf16 layer is a float32 layer of the rounded weights, by construction. */
typedef struct {
    int in_width;          /* K */
    int out_width;         /* N */
    int panel_width;       /* V, one of GP_PANEL_* */
    int activation;        /* gp_activation */
    float alpha;           /* leaky_relu slope, 0 otherwise */
    int precision;         /* the gp_precision the layer was set with */
    float *packed_weight;  /* (ceil(N / V), K, V), 64-byte aligned */
    float *bias;           /* (ceil(N / V) * V), zero padded, 64-byte aligned */
    void *allocation;      /* the one malloc block both point into; NULL while unset */
    /* Layer 0 of a conditional stack only (gp_stack_set_class_bias), kept when the layer is
       replaced: row c is the bias of rows labelled c, laid out as `bias`. */
    int n_classes;         /* 0: no table */
    float *class_bias;     /* (n_classes, ceil(N / V) * V), zero padded, 64-byte aligned */
    void *class_allocation;
} gp_layer;

/* Panel p of a layer's packed weights: (K, V) floats. */
static inline const float *gp_panel(const gp_layer *layer, int p) {
    return layer->packed_weight + (size_t)p * (size_t)layer->in_width * (size_t)layer->panel_width;
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

/* ---- what each ISA path implements (the _avx2 and _avx512 ones exist only where gp_isa.h
   defines GP_HAVE_X86) ----
   y = act(x W^T + b) for one layer, rows >= 1, x and y row-major and contiguous, but only the
   output columns of panels [panel_begin, panel_end) (0 <= begin < end <= ceil(N / V)); y keeps
   its full row stride N. labels: NULL, or (rows) labels already checked against the layer's
   class-bias table, whose rows then replace b row by row (gp_row_bias). y_dtype GP_F32: y is
   float; GP_U8: y is uint8 and each activated value v is stored as
   clip(rint((v + 1) * 127.5), 0, 255) in float32 (the float path's value, then exactly numpy's
   mapping of it). The layer must have been packed for the same path.
   Every output is bias + x_0 w_0 + x_1 w_1 + ... fused in this order, whatever the number of rows
   or panels around it, so a row's result never depends on its batch or on how work is split. */
void gp_layer_forward_portable(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                               const int32_t *labels /* (rows) or NULL */,
                               void *y /* (rows, N) */, int y_dtype, int panel_begin,
                               int panel_end);
void gp_layer_forward_avx2(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                           const int32_t *labels /* (rows) or NULL */,
                           void *y /* (rows, N) */, int y_dtype, int panel_begin, int panel_end);
void gp_layer_forward_avx512(const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                             const int32_t *labels /* (rows) or NULL */,
                             void *y /* (rows, N) */, int y_dtype, int panel_begin,
                             int panel_end);
/* A uint8 pixel u as the first layer reads it: u / 127.5f - 1.0f (float32 divide, then
   subtract). The AVX2 one serves AVX-512 stacks too. */
void gp_u8_to_f32_portable(const unsigned char *u /* (count) */, size_t count,
                           float *x /* (count) */);
void gp_u8_to_f32_avx2(const unsigned char *u /* (count) */, size_t count,
                       float *x /* (count) */);
/* 1 when every x lies in [low, high] (NaN does not), else 0. */
int gp_in_range_portable(const float *x /* (count) */, size_t count, float low, float high);
int gp_in_range_avx2(const float *x /* (count) */, size_t count, float low, float high);

#endif /* GANPACK_DENSE_STACK_LAYER_H */
