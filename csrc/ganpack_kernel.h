/* ganpack_kernel.h: a fused dense stack, y = act_L(... act_1(x W_1^T + b_1) ... W_L^T + b_L).
 *
 * Layer l maps widths[l] -> widths[l + 1]. W is (out, in) row-major, as PyTorch nn.Linear and
 * ONNX Gemm(transB=1) store it; b is (out). The activation is applied while the output is still
 * in registers. Input (batch, widths[0]) and output (batch, widths[n_layers]) are float32,
 * row-major, contiguous, and must not overlap.
 *
 * Life cycle: gp_stack_create (or gp_stack_create_threads), then gp_stack_set_layer once per layer
 * (it copies and repacks the weights, so the caller's arrays may be freed afterwards), then
 * gp_stack_run any number of times, then gp_stack_free. Any number of threads may run the same
 * stack at once; set_layer and free must not overlap any other call on that stack.
 *
 * Threads: a stack made by gp_stack_create_threads with n_threads > 1 owns n_threads - 1 worker
 * threads (started at create, joined at free). A concurrent caller never waits for them, and results
 * are bit for bit the same for every thread count. How a run is split: csrc/README.md, "Threads".
 * There is no global mutable state. Every function reports errors through its return value.
 *
 * Activations: identity; leaky_relu(x) = x >= 0 ? x : alpha * x with alpha finite in [0, 1)
 * (= max(alpha * x, x) = torch leaky_relu); relu; tanh; sigmoid. alpha must be 0 for every
 * activation but leaky_relu. tanh and sigmoid are vectorized approximations; the C tests measure
 * them against double precision over [-20, 20] step 1e-4 plus |x| up to FLT_MAX, every ISA:
 *   max |error|  tanh 4.8e-7 (AVX2, a rational), 5.1e-7 (portable, the same rational without
 *   FMA; 4.4e-7 on ARM64 with it), 9.6e-8 (AVX-512), sigmoid 8.9e-8; the tests fail above 1e-6.
 * Large |x| saturates: tanh to exactly +-1, sigmoid to exactly 1 and to <= 2e-22 for x <= -50.
 *
 * ISA: chosen per stack at create time. GP_ISA_AUTO takes the best this CPU supports; asking
 * for one it lacks gives GP_ERR_UNSUPPORTED_ISA. Every path computes the same function; results
 * may differ between paths in the last bits (FMA, summation order), never between threads or runs.
 *
 * This file is also the cffi cdef: a build script drops every line starting with '#', so the
 * declarations below use plain C types and no macros.
 */
#ifndef GANPACK_KERNEL_H
#define GANPACK_KERNEL_H

#include <stdint.h>

typedef struct gp_stack gp_stack; /* opaque: owns the repacked weights */

typedef enum {
    GP_OK = 0,
    GP_ERR_NULL = 1,            /* a required pointer was NULL */
    GP_ERR_SHAPE = 2,           /* n_layers, a width, a layer index or batch out of range */
    GP_ERR_ACTIVATION = 3,      /* unknown activation code */
    GP_ERR_ALPHA = 4,           /* leaky_relu alpha not in [0, 1); nonzero alpha elsewhere */
    GP_ERR_NOMEM = 5,           /* an allocation failed */
    GP_ERR_UNSUPPORTED_ISA = 6, /* unknown ISA code, or one this CPU (or this build) lacks */
    GP_ERR_INCOMPLETE = 7,      /* gp_stack_run before every layer was set (or a labelled run
                                   before gp_stack_set_class_bias) */
    GP_ERR_THREAD = 8,          /* a worker thread could not be started */
    GP_ERR_ARGUMENT = 9,        /* a dtype, precision, distribution, scale or offset (NaN, inf)
                                   not allowed */
    GP_ERR_INPUT = 10,          /* a GP_F32_IMAGE / _FINITE input value out of its range, or NaN;
                                   a label outside [0, n_classes) */
    /* reading a model file (ganpack.h) */
    GP_ERR_FILE = 11,           /* the file cannot be opened or read */
    GP_ERR_FORMAT = 12,         /* not a ganpack-c model file (its magic number is not "GPKC") */
    GP_ERR_VERSION = 13,        /* a ganpack-c version this library does not read */
    GP_ERR_CORRUPT = 14         /* truncated or too long, a size or shape out of range or
                                   inconsistent, a CRC-32 mismatch, a non-finite number */
} gp_status;

typedef enum {
    GP_ACT_IDENTITY = 0,
    GP_ACT_LEAKY_RELU = 1,
    GP_ACT_RELU = 2,
    GP_ACT_TANH = 3,
    GP_ACT_SIGMOID = 4
} gp_activation;

typedef enum {
    GP_ISA_AUTO = -1,     /* only as a request to gp_stack_create */
    GP_ISA_PORTABLE = 0,  /* plain C */
    GP_ISA_AVX2_FMA = 1,  /* x86 AVX2 + FMA3, 8 floats per vector */
    GP_ISA_AVX512 = 2     /* x86 AVX-512F, 16 floats per vector */
} gp_isa;

/* Limits checked by gp_stack_create: 1 <= n_layers <= 64, 1 <= widths[i] <= 1048576 (1 << 20);
   gp_stack_create_threads: 0 <= n_threads <= 64. */

/* Creates a stack with no layers set yet, single-threaded (gp_stack_run computes on the calling
   thread only). On success *out owns it (free with gp_stack_free); on failure *out is set to
   NULL when out itself is not NULL. */
gp_status gp_stack_create(int n_layers, const int *widths /* (n_layers + 1) */,
                          int isa /* gp_isa */, gp_stack **out);

/* The same, with n_threads threads per run: the caller's plus n_threads - 1 workers owned by the
   stack. n_threads 0 = one per online CPU, at most 8; 1 = no workers (= gp_stack_create). */
gp_status gp_stack_create_threads(int n_layers, const int *widths /* (n_layers + 1) */,
                                  int isa /* gp_isa */, int n_threads, gp_stack **out);

/* Copies and repacks layer `layer` (0-based); calling it again replaces that layer. */
gp_status gp_stack_set_layer(gp_stack *stack, int layer,
                             const float *weight /* (widths[layer + 1], widths[layer]) row-major */,
                             const float *bias /* (widths[layer + 1]) */,
                             int activation /* gp_activation */, float alpha);

/* ---- reduced-precision weights ----
   GP_PRECISION_BF16 rounds a layer's weights to bfloat16 (the upper 16 bits of a float32: 8
   significant bits, float32's range), each to nearest, ties to even (NaN stays NaN, a value
   beyond bf16's range becomes an infinity), and stores the rounded values as float32 (widening
   bf16 is exact). The layer then runs the float32 kernel, at float32 speed and memory:
   inputs, products, sums, bias (kept as given, as the class-bias table) and activations are
   float32. So a bf16 layer computes exactly what a float32 layer computes with the rounded
   weights, bit for bit: a preview of what bf16 weights do to a model's outputs. */
typedef enum {
    GP_PRECISION_F32 = 0,
    GP_PRECISION_BF16 = 1
} gp_precision;

/* gp_stack_set_layer with the weights stored in `precision` (gp_precision, else
   GP_ERR_ARGUMENT); GP_PRECISION_F32 is gp_stack_set_layer. */
gp_status gp_stack_set_layer_precision(gp_stack *stack, int layer,
                                       const float *weight /* (widths[layer + 1], widths[layer]) */,
                                       const float *bias /* (widths[layer + 1]) */,
                                       int activation /* gp_activation */, float alpha,
                                       int precision /* gp_precision */);

/* The gp_precision layer `layer` was set with; -1 for NULL, an index out of range or a layer not
   set yet. */
int gp_stack_layer_precision(const gp_stack *stack, int layer);

/* output = stack(input). batch 0 does nothing (input and output may then be NULL). */
gp_status gp_stack_run(const gp_stack *stack, const float *input /* (batch, widths[0]) */,
                       int batch, float *output /* (batch, widths[n_layers]) */);

/* Stops and joins the stack's workers, frees it and its weights; NULL is a no-op. */
void gp_stack_free(gp_stack *stack);

/* The gp_isa this stack runs with (never GP_ISA_AUTO), or -1 for NULL. */
int gp_stack_isa(const gp_stack *stack);

/* The threads a run of this stack may use (1 + its workers), or -1 for NULL. */
int gp_stack_threads(const gp_stack *stack);

/* The best gp_isa this CPU and this build support. */
int gp_best_isa(void);

/* "portable", "avx2_fma", "avx512", "auto"; "unknown" for other codes. Static strings. */
const char *gp_isa_name(int isa);

/* A one-line English description of a gp_status; "unknown status" for other codes. Static. */
const char *gp_status_message(int status);

/* ---- typed input and output: uint8 pixels in and out, fused into the run ----
   GP_F32: float32 values. GP_U8: 8-bit pixels. A uint8 input x is mapped to the float
   x / 127.5f - 1.0f (float32 division, then subtraction: exactly numpy's
   `x.astype(float32) / float32(127.5) - 1`) per chunk of rows, just before the first layer reads it.
   A uint8 output is written from the last layer's activated value y as
   clip(round_half_even((y + 1.0f) * 127.5f), 0, 255) (the add and the multiply rounded to
   float32 separately: exactly numpy's `np.clip(np.rint((y + 1) * 127.5), 0, 255)` on float32),
   fused into the last layer's store. A uint8 output is the uint8 mapping of the float32 output
   of the same run, bit for bit. */
typedef enum {
    GP_F32 = 0,
    GP_U8 = 1,
    GP_F32_IMAGE = 2, /* input only: float32 that must lie in [-1.000001, 1.000001], each chunk
                         checked in cache before the first layer reads it; a NaN, an infinity or a
                         value outside stops the run with GP_ERR_INPUT (the output is then
                         unspecified). What a discriminator's float images must be. */
    GP_F32_FINITE = 3 /* input only: float32 that must be finite, checked the same way */
} gp_dtype;

/* gp_stack_run with typed input and output (gp_dtype each); GP_F32 both ways is gp_stack_run. */
gp_status gp_stack_run_typed(const gp_stack *stack, const void *input /* (batch, widths[0]) */,
                             int input_dtype, int batch,
                             void *output /* (batch, widths[n_layers]) */, int output_dtype);

/* ---- class-conditional stacks: a label selects layer 0's bias ----
   A conditional network reads [x, onehot(y)] (x: its usual input, y: a class in [0, n_classes)).
   Its first layer W = [W_x | W_y] gives W [x; onehot(y)] + b = W_x x + (W_y[:, y] + b): the label
   selects a column of W_y, added like a bias. So the stack is built without the one-hot columns
   (widths[0] is x's width, layer 0 is set with W_x) and gp_stack_set_class_bias gives it the
   table of those biases, row c = W_y[:, c] + b (that is, W_y^T + b). A labelled run starts the
   accumulators of row i's first layer from row labels[i] of the table instead of the layer's own
   bias; nothing else changes, so the conditioning costs nothing per row.
   The table replaces layer 0's bias only in labelled runs: an unlabelled run of the same stack
   still uses the bias given to gp_stack_set_layer. */

/* Copies the table (n_classes rows of widths[1] floats, row-major); calling it again replaces it.
   1 <= n_classes <= 65536 (else GP_ERR_SHAPE). May be called before or after set_layer(0). */
gp_status gp_stack_set_class_bias(gp_stack *stack, int n_classes,
                                  const float *class_bias /* (n_classes, widths[1]) */);

/* The class-bias table's row count, 0 when none has been set, -1 for NULL. */
int gp_stack_classes(const gp_stack *stack);

/* gp_stack_run_typed where row i's first layer uses row labels[i] of the class-bias table as its
   bias. Every label must lie in [0, n_classes): all are checked before any work (GP_ERR_INPUT,
   the output untouched). GP_ERR_INCOMPLETE when the stack has no table. batch 0 does nothing
   (input, labels and output may then be NULL). */
gp_status gp_stack_run_labels(const gp_stack *stack, const void *input /* (batch, widths[0]) */,
                              int input_dtype, const int32_t *labels /* (batch) */, int batch,
                              void *output /* (batch, widths[n_layers]) */, int output_dtype);

/* ---- latents: a counter-based stream that C and numpy draw identically ----
   "ganpack-philox/1": row i of the stream keyed by `seed` depends only on (seed, i), never on
   how many rows are drawn, in what chunks, or on how many threads. Philox4x32-10 (Salmon et al.
   2011) with key (seed low 32 bits, seed high 32 bits) and counter (block, row low 32 bits,
   row high 32 bits, 0) gives 4 uint32 words per block; a row of `dim` values uses
   blocks = ceil(dim / 4) blocks, and value j of the row is word j / blocks of block j % blocks.
   GP_LATENT_NORMAL: words (0, 1) and (2, 3) become pairs of normals by Box-Muller with
   ganpack's own float32 polynomials for log, sin and cos (runtime/ganpack/latents.py is the
   reference, op for op); GP_LATENT_UNIFORM: each word becomes (word >> 8) * 2^-24 in [0, 1).
   Then value = base * scale + offset (float32 multiply, then add): normal(mean, std) has
   scale = std, offset = mean; uniform(low, high) has scale = high - low, offset = low. */
typedef enum {
    GP_LATENT_NORMAL = 0,
    GP_LATENT_UNIFORM = 1
} gp_latent_distribution;

/* z = rows [first_row, first_row + rows) of the latent stream `seed`. first_row >= 0,
   rows >= 0 (0 does nothing, z may then be NULL), 1 <= dim <= 1048576. Single-threaded. */
gp_status gp_latents(uint64_t seed, int64_t first_row, int rows, int dim,
                     int distribution /* gp_latent_distribution */, float scale, float offset,
                     float *z /* (rows, dim) */);

/* One call for the whole sample: draws rows [first_row, first_row + batch) of the latent stream
   (as gp_latents, dim = widths[0]) chunk by chunk into cache-sized buffers, runs the stack and
   writes the output as output_dtype (gp_dtype), split across the stack's threads like
   gp_stack_run. Equal, bit for bit, to gp_latents followed by gp_stack_run_typed. */
gp_status gp_stack_sample(const gp_stack *stack, uint64_t seed, int64_t first_row, int batch,
                          int distribution /* gp_latent_distribution */, float scale,
                          float offset, void *output /* (batch, widths[n_layers]) */,
                          int output_dtype);

/* gp_stack_sample with labels: rows [first_row, first_row + batch) of the latent stream, row i
   through the stack with label labels[i] (as gp_stack_run_labels). Equal, bit for bit, to
   gp_latents followed by gp_stack_run_labels; labels are checked first, as there. */
gp_status gp_stack_sample_labels(const gp_stack *stack, uint64_t seed, int64_t first_row,
                                 int batch, int distribution /* gp_latent_distribution */,
                                 float scale, float offset, const int32_t *labels /* (batch) */,
                                 void *output /* (batch, widths[n_layers]) */, int output_dtype);

/* ---- the machine's ceiling ----
   fp32 FLOP/s of a register-only loop of independent FMA chains (no loads, no stores) for
   `isa` (GP_ISA_AUTO: the best), run on n_threads threads at once (0: one per online CPU) for
   about `seconds` (0.01 to 10), written to *gflops. What "% of peak" is measured against: the
   clock the cores really reach, and how many FMAs per cycle they really retire. */
gp_status gp_fma_ceiling(int isa, int n_threads, double seconds, double *gflops);

#endif /* GANPACK_KERNEL_H */
