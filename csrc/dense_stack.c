/* dense_stack.c: the public API of ganpack_kernel.h. Validation, ISA choice, weight repacking,
 * the layer-by-layer driver and how a run is split between threads. The arithmetic lives in
 * dense_stack_{portable,avx2,avx512}.c, the worker threads in dense_stack_pool.c.
 */
#define _POSIX_C_SOURCE 200809L /* sysconf */
#include "dense_stack_layer.h"
#include "dense_stack_pool.h"
#include "gp_isa.h"
#include "gp_limits.h"
#include "latents.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GP_AUTO_MAX_THREADS 8 /* n_threads = 0: one per online CPU, at most this many */
/* The range GP_F32_IMAGE inputs must lie in: [-1, 1] and a float rounding's worth around it. */
#define GP_IMAGE_MIN (-1.000001f)
#define GP_IMAGE_MAX 1.000001f

/* The batch goes through all layers in chunks of rows, so the hidden activations of a chunk stay
   in L1 and scratch stays bounded: as many rows (a multiple of 4, at most GP_CHUNK_ROWS) as fit
   GP_STACK_SCRATCH_FLOATS on the C stack (8 rows of a 128-wide hidden layer), else malloc. The
   weights stream from L2 once per 4-row block anyway, so a short chunk costs nothing. */
#define GP_CHUNK_ROWS 64
#define GP_CHUNK_TARGET_FLOATS (1 << 18) /* fewer rows per chunk for very wide hidden layers */
#define GP_STACK_SCRATCH_FLOATS 2048     /* scratch this small lives on the C stack (8 KiB) */
#define GP_ALIGN 64

/* Splitting a run between threads (measured on a 2-core AVX-512 VM, generator 100-128-784):
   by rows from GP_SPLIT_MIN_ROWS rows (a hand-off to an awake worker costs < 1 us, one row
   ~2.4 us); below that by panels of the last layer, if that layer has at least
   GP_SPLIT_MIN_PANELS panels per thread. Only while the workers are awake (spinning after the
   previous run), except for batches of GP_SPLIT_WAKE_ROWS and more: waking a sleeping worker
   takes a futex call and tens of microseconds on a busy machine. A run that does not split
   wakes them, so that a stream of small runs finds them awake from the second run on. */
#define GP_SPLIT_MIN_ROWS 8
#define GP_SPLIT_MIN_PANELS 8
#define GP_SPLIT_WAKE_ROWS 64

typedef void (*gp_layer_forward_fn)(const gp_layer *layer, const float *x, int rows,
                                    const int32_t *labels, void *y, int y_dtype, int panel_begin,
                                    int panel_end);

struct gp_stack {
    int n_layers;
    int isa;                            /* gp_isa, never GP_ISA_AUTO */
    int max_hidden_width;               /* max of widths[1 .. n_layers - 1], 0 if one layer */
    int n_threads;                      /* 1 + workers */
    gp_pool *pool;                      /* the n_threads - 1 workers; NULL when single-threaded */
    int widths[GP_MAX_LAYERS + 1];      /* (n_layers + 1) */
    gp_layer layers[GP_MAX_LAYERS];     /* (n_layers) */
};

/* ---------------------------------------------------------------- ISA choice */

#ifdef GP_HAVE_X86
#ifdef GP_AVX512_SIMDE
/* `make test-avx512-emulated`: the AVX-512 path's intrinsics are SIMDe's, compiled to AVX2 + FMA
   code, so in that (test-only) build a CPU with those runs it and gets it by default. */
#define GP_CPU_AVX512F (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
#else
#define GP_CPU_AVX512F __builtin_cpu_supports("avx512f")
#endif
#endif

int gp_isa_supported(int isa) {
    switch (isa) {
    case GP_ISA_PORTABLE: return 1;
#ifdef GP_HAVE_X86
    /* __builtin_cpu_supports also checks that the OS saves the wide registers (XGETBV). */
    case GP_ISA_AVX2_FMA: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case GP_ISA_AVX512: return GP_CPU_AVX512F;
#endif
    default: return 0;
    }
}

int gp_isa_for_features(int avx512f, int avx2, int fma) {
#ifdef GP_HAVE_X86
    if (avx512f) return GP_ISA_AVX512;
    if (avx2 && fma) return GP_ISA_AVX2_FMA;
#else
    (void)avx512f, (void)avx2, (void)fma;
#endif
    return GP_ISA_PORTABLE;
}

int gp_best_isa(void) {
#ifdef GP_HAVE_X86
    return gp_isa_for_features(GP_CPU_AVX512F != 0,
                               __builtin_cpu_supports("avx2") != 0, __builtin_cpu_supports("fma") != 0);
#else
    return gp_isa_for_features(0, 0, 0);
#endif
}

static gp_layer_forward_fn forward_for_isa(int isa) {
#ifdef GP_HAVE_X86
    if (isa == GP_ISA_AVX512) return gp_layer_forward_avx512;
    if (isa == GP_ISA_AVX2_FMA) return gp_layer_forward_avx2;
#else
    (void)isa;
#endif
    return gp_layer_forward_portable;
}

static int panel_width_for_isa(int isa) {
    if (isa == GP_ISA_AVX512) return GP_PANEL_AVX512;
    if (isa == GP_ISA_AVX2_FMA) return GP_PANEL_AVX2;
    return GP_PANEL_PORTABLE;
}

const char *gp_isa_name(int isa) {
    switch (isa) {
    case GP_ISA_AUTO: return "auto";
    case GP_ISA_PORTABLE: return "portable";
    case GP_ISA_AVX2_FMA: return "avx2_fma";
    case GP_ISA_AVX512: return "avx512";
    default: return "unknown";
    }
}

const char *gp_status_message(int status) {
    switch (status) {
    case GP_OK: return "ok";
    case GP_ERR_NULL: return "a required pointer is NULL";
    case GP_ERR_SHAPE: return "layer count, width, layer index or batch out of range";
    case GP_ERR_ACTIVATION: return "unknown activation";
    case GP_ERR_ALPHA: return "leaky_relu alpha must be finite in [0, 1), other activations take 0";
    case GP_ERR_NOMEM: return "out of memory";
    case GP_ERR_UNSUPPORTED_ISA: return "instruction set unknown or not supported by this CPU";
    case GP_ERR_INCOMPLETE:
        return "not every layer of the stack has been set (or a labelled run before its class-bias table)";
    case GP_ERR_THREAD: return "a worker thread could not be started";
    case GP_ERR_ARGUMENT:
        return "unknown dtype, precision or latent distribution, or a non-finite scale or offset";
    case GP_ERR_INPUT: return "an input value is NaN or outside [-1, 1], or a label is out of range";
    case GP_ERR_FILE: return "the model file cannot be opened or read";
    case GP_ERR_FORMAT: return "not a ganpack-c model file (its magic number is not GPKC)";
    case GP_ERR_VERSION: return "a ganpack-c model file version this library does not read";
    case GP_ERR_CORRUPT:
        return "the model file is truncated, too long, inconsistent, fails its CRC-32 or holds a non-finite number";
    default: return "unknown status";
    }
}

/* ---------------------------------------------------------------- create / free */

static void run_part(gp_part *part);

gp_status gp_stack_create(int n_layers, const int *widths, int isa, gp_stack **out) {
    return gp_stack_create_threads(n_layers, widths, isa, 1, out);
}

gp_status gp_stack_create_threads(int n_layers, const int *widths, int isa, int n_threads,
                                  gp_stack **out) {
    if (out == NULL) return GP_ERR_NULL;
    *out = NULL;
    if (widths == NULL) return GP_ERR_NULL;
    if (n_layers < 1 || n_layers > GP_MAX_LAYERS) return GP_ERR_SHAPE;
    if (n_threads < 0 || n_threads > GP_MAX_THREADS) return GP_ERR_SHAPE;
    for (int i = 0; i <= n_layers; i++) {
        if (widths[i] < 1 || widths[i] > GP_MAX_WIDTH) return GP_ERR_SHAPE;
    }
    if (isa == GP_ISA_AUTO) isa = gp_best_isa();
    if (!gp_isa_supported(isa)) return GP_ERR_UNSUPPORTED_ISA;

    gp_stack *stack = calloc(1, sizeof *stack);
    if (stack == NULL) return GP_ERR_NOMEM;
    stack->n_layers = n_layers;
    stack->isa = isa;
    memcpy(stack->widths, widths, (size_t)(n_layers + 1) * sizeof widths[0]);
    for (int i = 1; i < n_layers; i++) {
        if (widths[i] > stack->max_hidden_width) stack->max_hidden_width = widths[i];
    }
    if (n_threads == 0) {
        const long online = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = online < 1 ? 1 : (online > GP_AUTO_MAX_THREADS ? GP_AUTO_MAX_THREADS
                                                                    : (int)online);
    }
    stack->n_threads = n_threads;
    if (n_threads > 1) {
        const gp_status status = gp_pool_create(n_threads - 1, run_part, &stack->pool);
        if (status != GP_OK) {
            free(stack);
            return status;
        }
    }
    *out = stack;
    return GP_OK;
}

void gp_stack_free(gp_stack *stack) {
    if (stack == NULL) return;
    gp_pool_free(stack->pool);
    for (int l = 0; l < stack->n_layers; l++) {
        free(stack->layers[l].allocation);
        free(stack->layers[l].class_allocation);
    }
    free(stack);
}

int gp_stack_isa(const gp_stack *stack) {
    return stack == NULL ? -1 : stack->isa;
}

int gp_stack_threads(const gp_stack *stack) {
    return stack == NULL ? -1 : stack->n_threads;
}

/* ---------------------------------------------------------------- set_layer: validate, repack */

static float *align_up(void *p) {
    uintptr_t address = (uintptr_t)p;
    return (float *)((address + (GP_ALIGN - 1)) & ~(uintptr_t)(GP_ALIGN - 1));
}

gp_status gp_stack_set_layer(gp_stack *stack, int layer, const float *weight, const float *bias,
                             int activation, float alpha) {
    return gp_stack_set_layer_precision(stack, layer, weight, bias, activation, alpha,
                                        GP_PRECISION_F32);
}

gp_status gp_stack_set_layer_precision(gp_stack *stack, int layer, const float *weight,
                                       const float *bias, int activation, float alpha,
                                       int precision) {
    if (stack == NULL || weight == NULL || bias == NULL) return GP_ERR_NULL;
    if (layer < 0 || layer >= stack->n_layers) return GP_ERR_SHAPE;
    if (activation < GP_ACT_IDENTITY || activation > GP_ACT_SIGMOID) return GP_ERR_ACTIVATION;
    if (activation == GP_ACT_LEAKY_RELU) {
        /* written so that NaN fails too: every comparison with NaN is false */
        if (!(alpha >= 0.0f && alpha < 1.0f)) return GP_ERR_ALPHA;
    } else if (alpha != 0.0f) {
        return GP_ERR_ALPHA;
    }
    if (precision != GP_PRECISION_F32 && precision != GP_PRECISION_BF16) return GP_ERR_ARGUMENT;

    const size_t in_width = (size_t)stack->widths[layer];       /* K */
    const size_t out_width = (size_t)stack->widths[layer + 1];  /* N */
    const size_t panel = (size_t)panel_width_for_isa(stack->isa); /* V */
    const size_t n_panels = (out_width + panel - 1) / panel;
    const size_t padded_out = n_panels * panel;
    const int bf16 = precision == GP_PRECISION_BF16;
    /* K, N <= 2^20, so this fits a 64-bit size_t; on 32-bit targets check before multiplying. */
    if (padded_out + panel > (SIZE_MAX / sizeof(float) - 2 * GP_ALIGN) / (in_width + 1)) {
        return GP_ERR_NOMEM;
    }
    const size_t weight_bytes = /* rounded up so the bias starts aligned too */
        (padded_out * in_width * sizeof(float) + GP_ALIGN - 1) / GP_ALIGN * GP_ALIGN;
    void *allocation = malloc(weight_bytes + padded_out * sizeof(float) + GP_ALIGN);
    if (allocation == NULL) return GP_ERR_NOMEM;

    float *packed = align_up(allocation);                       /* (n_panels, K, V) */
    float *packed_bias = packed + weight_bytes / sizeof(float); /* (n_panels * V) */
    for (size_t p = 0; p < n_panels; p++) {
        for (size_t k = 0; k < in_width; k++) {
            for (size_t j = 0; j < panel; j++) {
                const size_t col = p * panel + j;
                float w = col < out_width ? weight[col * in_width + k] : 0.0f;
                if (bf16) { /* rounded to bf16 and widened back, exactly: float32 from here on */
                    const uint32_t bits = (uint32_t)gp_bf16_round(w) << 16;
                    memcpy(&w, &bits, sizeof w);
                }
                packed[(p * in_width + k) * panel + j] = w;
            }
        }
    }
    for (size_t col = 0; col < padded_out; col++) {
        packed_bias[col] = col < out_width ? bias[col] : 0.0f;
    }

    gp_layer *target = &stack->layers[layer];
    free(target->allocation); /* replacing a layer set before */
    target->in_width = (int)in_width;
    target->out_width = (int)out_width;
    target->panel_width = (int)panel;
    target->activation = activation;
    target->alpha = alpha;
    target->precision = precision;
    target->packed_weight = packed;
    target->bias = packed_bias;
    target->allocation = allocation;
    return GP_OK;
}

int gp_stack_layer_precision(const gp_stack *stack, int layer) {
    if (stack == NULL || layer < 0 || layer >= stack->n_layers) return -1;
    return stack->layers[layer].allocation == NULL ? -1 : stack->layers[layer].precision;
}

/* ---------------------------------------------------------------- the class-bias table */

gp_status gp_stack_set_class_bias(gp_stack *stack, int n_classes, const float *class_bias) {
    if (stack == NULL || class_bias == NULL) return GP_ERR_NULL;
    if (n_classes < 1 || n_classes > GP_MAX_CLASSES) return GP_ERR_SHAPE;
    gp_layer *first = &stack->layers[0];
    const size_t out_width = (size_t)stack->widths[1];                  /* N */
    const size_t panel = (size_t)panel_width_for_isa(stack->isa);       /* V */
    const size_t padded_out = (out_width + panel - 1) / panel * panel;
    /* N <= 2^20 and n_classes <= 2^16: at most 2^38 bytes, a size_t on 64-bit targets */
    if (padded_out > (SIZE_MAX / sizeof(float) - GP_ALIGN) / (size_t)n_classes) return GP_ERR_NOMEM;
    void *allocation = malloc((size_t)n_classes * padded_out * sizeof(float) + GP_ALIGN);
    if (allocation == NULL) return GP_ERR_NOMEM;
    float *table = align_up(allocation); /* (n_classes, padded_out), each row laid out as a bias */
    for (size_t c = 0; c < (size_t)n_classes; c++) {
        for (size_t col = 0; col < padded_out; col++) {
            table[c * padded_out + col] = col < out_width ? class_bias[c * out_width + col] : 0.0f;
        }
    }
    free(first->class_allocation); /* replacing a table set before */
    first->n_classes = n_classes;
    first->class_bias = table;
    first->class_allocation = allocation;
    return GP_OK;
}

int gp_stack_classes(const gp_stack *stack) {
    return stack == NULL ? -1 : stack->layers[0].n_classes;
}

/* ---------------------------------------------------------------- run */

static void u8_to_f32(int isa, const unsigned char *u, size_t count, float *x) {
#ifdef GP_HAVE_X86
    if (gp_isa_has_avx2(isa)) {
        gp_u8_to_f32_avx2(u, count, x);
        return;
    }
#endif
    (void)isa;
    gp_u8_to_f32_portable(u, count, x);
}

/* 1 when the float input x is what its source kind promises (a range; NaN never is). */
static int input_ok(int isa, int kind, const float *x, size_t count) {
    if (kind != GP_SOURCE_F32_IMAGE && kind != GP_SOURCE_F32_FINITE) return 1;
    const float low = kind == GP_SOURCE_F32_IMAGE ? GP_IMAGE_MIN : -FLT_MAX;
    const float high = kind == GP_SOURCE_F32_IMAGE ? GP_IMAGE_MAX : FLT_MAX;
#ifdef GP_HAVE_X86
    if (gp_isa_has_avx2(isa)) return gp_in_range_avx2(x, count, low, high);
#endif
    (void)isa;
    return gp_in_range_portable(x, count, low, high);
}

/* Rows [row_begin, row_end) through every layer, the last layer only for panels
   [panel_begin, panel_end). Runs on whichever thread the part was given to. Input rows that are
   not float32 already (uint8 pixels, latents) are made per chunk, in cache, just before the first
   layer reads them; the last layer stores floats or uint8 pixels itself. */
static gp_status run_rows(const gp_stack *stack, const gp_source *source,
                          void *output /* (batch, widths[n_layers]) */, int output_dtype,
                          int row_begin, int row_end, int panel_begin, int panel_end) {
    const gp_layer_forward_fn forward = forward_for_isa(stack->isa);
    const int n_layers = stack->n_layers, batch = row_end - row_begin;
    const size_t in_width = (size_t)stack->widths[0];
    const size_t out_row = (size_t)stack->widths[n_layers] * (output_dtype == GP_U8 ? 1 : sizeof(float));
    char *out = (char *)output + (size_t)row_begin * out_row; /* (batch, out_row bytes) */
    const int staged = source->kind == GP_SOURCE_U8 || source->kind == GP_SOURCE_LATENT;
    const float *input = staged ? NULL : (const float *)source->data + (size_t)row_begin * in_width;
    const int32_t *labels = source->labels == NULL ? NULL : source->labels + row_begin; /* (batch) */
    if (n_layers == 1 && !staged) {
        if (!input_ok(stack->isa, source->kind, input, (size_t)batch * in_width)) return GP_ERR_INPUT;
        forward(&stack->layers[0], input, batch, labels, out, output_dtype, panel_begin, panel_end);
        return GP_OK;
    }

    /* Scratch per chunk of rows: the staged input (chunk_rows, widths[0]) and two ping-pong
       buffers (chunk_rows, max_hidden_width) for the hidden activations. */
    const size_t hidden = (size_t)stack->max_hidden_width;
    const size_t row_floats = 2 * hidden + (staged ? in_width : 0);
    size_t chunk_rows = GP_STACK_SCRATCH_FLOATS / row_floats / 4 * 4;
    if (chunk_rows < 4) {
        chunk_rows = (size_t)batch < 4 && (size_t)batch * row_floats <= GP_STACK_SCRATCH_FLOATS
                         ? (size_t)batch
                         : GP_CHUNK_TARGET_FLOATS / row_floats;
    }
    if (chunk_rows > GP_CHUNK_ROWS) chunk_rows = GP_CHUNK_ROWS;
    if (chunk_rows < 4) chunk_rows = 4;
    if (chunk_rows > (size_t)batch) chunk_rows = (size_t)batch;
    float small_scratch[GP_STACK_SCRATCH_FLOATS];
    float *scratch = small_scratch; /* (chunk_rows, row_floats) */
    if (chunk_rows * row_floats > GP_STACK_SCRATCH_FLOATS) {
        scratch = malloc(chunk_rows * row_floats * sizeof(float));
        if (scratch == NULL) return GP_ERR_NOMEM;
    }
    float *staging = scratch + 2 * chunk_rows * hidden; /* (chunk_rows, widths[0]) */

    gp_status status = GP_OK;
    for (int row = 0; row < batch; row += (int)chunk_rows) {
        const int rows = batch - row < (int)chunk_rows ? batch - row : (int)chunk_rows;
        const float *x; /* (rows, widths[l]) */
        if (!staged) {
            x = input + (size_t)row * in_width;
            if (!input_ok(stack->isa, source->kind, x, (size_t)rows * in_width)) {
                status = GP_ERR_INPUT; /* checked in cache, just before the first layer reads it */
                break;
            }
        } else if (source->kind == GP_SOURCE_U8) {
            u8_to_f32(stack->isa, (const unsigned char *)source->data + (size_t)(row_begin + row) * in_width,
                      (size_t)rows * in_width, staging);
            x = staging;
        } else {
            gp_latents_isa(stack->isa, source->seed, source->first_row + row_begin + row, rows,
                           (int)in_width, source->distribution, source->scale, source->offset,
                           staging);
            x = staging;
        }
        /* layer 0 of a labelled run: each row's bias is its label's row of the class table */
        const int32_t *chunk_labels = labels == NULL ? NULL : labels + row; /* (rows) */
        for (int l = 0; l < n_layers - 1; l++) {
            const gp_layer *layer = &stack->layers[l];
            float *y = scratch + (size_t)(l % 2) * chunk_rows * hidden; /* (rows, widths[l + 1]) */
            forward(layer, x, rows, l == 0 ? chunk_labels : NULL, y, GP_F32, 0,
                    (layer->out_width + layer->panel_width - 1) / layer->panel_width);
            x = y;
        }
        forward(&stack->layers[n_layers - 1], x, rows, n_layers == 1 ? chunk_labels : NULL,
                out + (size_t)row * out_row, output_dtype, panel_begin, panel_end);
    }

    if (scratch != small_scratch) free(scratch);
    return status;
}

static void run_part(gp_part *part) {
    part->status = part->row_begin >= part->row_end
                       ? GP_OK
                       : run_rows(part->stack, part->source, part->output, part->output_dtype,
                                  part->row_begin, part->row_end, part->panel_begin,
                                  part->panel_end);
}

/* How to share this run with the workers: fills parts, returns how many (1 = alone). */
static int plan_parts(const gp_stack *stack, gp_pool *pool, const gp_source *source, int batch,
                      void *output, int output_dtype, int n_panels,
                      gp_part *parts /* (n_threads) */) {
    int n_parts = stack->n_threads, by_rows = 1;
    const int worth_it = batch >= GP_SPLIT_MIN_ROWS || n_panels >= 2 * GP_SPLIT_MIN_PANELS;
    if (!worth_it) {
        n_parts = 1;
    } else if (batch < GP_SPLIT_WAKE_ROWS && !gp_pool_workers_awake(pool)) {
        n_parts = 1; /* waking a worker costs more than it saves here: run alone, wake them */
        gp_pool_wake(pool);
    } else if (batch >= GP_SPLIT_MIN_ROWS) {
        if (n_parts > batch / 4) n_parts = batch / 4; /* whole 4-row tiles per thread */
    } else {
        by_rows = 0;
        if (n_parts > n_panels / GP_SPLIT_MIN_PANELS) n_parts = n_panels / GP_SPLIT_MIN_PANELS;
    }
    if (n_parts < 1) n_parts = 1;
    for (int i = 0; i < n_parts; i++) {
        gp_part *part = &parts[i];
        *part = (gp_part){stack, source, output, output_dtype, 0, batch, 0, n_panels, GP_OK};
        if (by_rows) { /* boundaries on multiples of 4 rows */
            part->row_begin = (int)((long long)(batch / 4) * i / n_parts * 4);
            part->row_end = i == n_parts - 1
                                ? batch
                                : (int)((long long)(batch / 4) * (i + 1) / n_parts * 4);
        } else {
            part->panel_begin = n_panels * i / n_parts;
            part->panel_end = n_panels * (i + 1) / n_parts;
        }
    }
    return n_parts;
}

/* The one driver behind gp_stack_run, gp_stack_run_typed and gp_stack_sample. */
static gp_status run_source(const gp_stack *stack, const gp_source *source, int batch,
                            void *output, int output_dtype) {
    const gp_layer *last = &stack->layers[stack->n_layers - 1];
    const int n_panels = (last->out_width + last->panel_width - 1) / last->panel_width;
    if (stack->pool != NULL && gp_pool_try_acquire(stack->pool)) {
        gp_part parts[GP_MAX_THREADS];
        const int n_parts = plan_parts(stack, stack->pool, source, batch, output, output_dtype,
                                       n_panels, parts);
        if (n_parts > 1) gp_pool_run(stack->pool, parts, n_parts);
        else run_part(&parts[0]);
        gp_pool_release(stack->pool);
        for (int i = 0; i < n_parts; i++) {
            if (parts[i].status != GP_OK) return parts[i].status;
        }
        return GP_OK;
    }
    return run_rows(stack, source, output, output_dtype, 0, batch, 0, n_panels);
}

/* Checks shared by every run: a complete stack, a batch >= 0; GP_OK with *done set when there
   is nothing to do. */
static gp_status check_run(const gp_stack *stack, int batch, int output_dtype, int *done) {
    *done = 1;
    if (stack == NULL) return GP_ERR_NULL;
    if (batch < 0) return GP_ERR_SHAPE;
    if (output_dtype != GP_F32 && output_dtype != GP_U8) return GP_ERR_ARGUMENT;
    for (int l = 0; l < stack->n_layers; l++) {
        if (stack->layers[l].allocation == NULL) return GP_ERR_INCOMPLETE;
    }
    *done = batch == 0;
    return GP_OK;
}

gp_status gp_stack_run(const gp_stack *stack, const float *input, int batch, float *output) {
    return gp_stack_run_typed(stack, input, GP_F32, batch, output, GP_F32);
}

/* Labels of a labelled run, checked before any work: a class-bias table (GP_ERR_INCOMPLETE), then,
   when there are rows, labels (GP_ERR_NULL) each in [0, n_classes) (GP_ERR_INPUT). */
static gp_status check_labels(const gp_stack *stack, const int32_t *labels, int batch) {
    const int n_classes = stack->layers[0].n_classes;
    if (n_classes == 0) return GP_ERR_INCOMPLETE;
    if (batch == 0) return GP_OK;
    if (labels == NULL) return GP_ERR_NULL;
    int ok = 1;
    for (int i = 0; i < batch; i++) ok &= labels[i] >= 0 && labels[i] < n_classes;
    return ok ? GP_OK : GP_ERR_INPUT;
}

/* gp_stack_run_typed (labelled 0, labels unused) and gp_stack_run_labels (labelled 1). */
static gp_status run_typed(const gp_stack *stack, const void *input, int input_dtype,
                           const int32_t *labels, int labelled, int batch, void *output,
                           int output_dtype) {
    int done;
    gp_status status = check_run(stack, batch, output_dtype, &done);
    if (status != GP_OK) return status;
    if (input_dtype < GP_F32 || input_dtype > GP_F32_FINITE) return GP_ERR_ARGUMENT;
    if (labelled && (status = check_labels(stack, labels, batch)) != GP_OK) return status;
    if (done) return GP_OK;
    if (input == NULL || output == NULL) return GP_ERR_NULL;
    static const int KINDS[4] = {GP_SOURCE_F32, GP_SOURCE_U8, GP_SOURCE_F32_IMAGE, GP_SOURCE_F32_FINITE};
    const int kind = KINDS[input_dtype]; /* indexed by gp_dtype */
    const gp_source source = {kind, input, 0, 0, 0, 0.0f, 0.0f, labels};
    return run_source(stack, &source, batch, output, output_dtype);
}

gp_status gp_stack_run_typed(const gp_stack *stack, const void *input, int input_dtype, int batch,
                             void *output, int output_dtype) {
    return run_typed(stack, input, input_dtype, NULL, 0, batch, output, output_dtype);
}

gp_status gp_stack_run_labels(const gp_stack *stack, const void *input, int input_dtype,
                              const int32_t *labels, int batch, void *output, int output_dtype) {
    return run_typed(stack, input, input_dtype, labels, 1, batch, output, output_dtype);
}

/* gp_stack_sample (labelled 0, labels unused) and gp_stack_sample_labels (labelled 1). */
static gp_status sample(const gp_stack *stack, uint64_t seed, int64_t first_row, int batch,
                        int distribution, float scale, float offset, const int32_t *labels,
                        int labelled, void *output, int output_dtype) {
    int done;
    gp_status status = check_run(stack, batch, output_dtype, &done);
    if (status != GP_OK) return status;
    status = gp_check_latent_args(first_row, batch, distribution, scale, offset);
    if (status != GP_OK) return status;
    if (labelled && (status = check_labels(stack, labels, batch)) != GP_OK) return status;
    if (done) return GP_OK;
    if (output == NULL) return GP_ERR_NULL;
    const gp_source source = {GP_SOURCE_LATENT, NULL, seed, first_row, distribution, scale, offset,
                              labels};
    return run_source(stack, &source, batch, output, output_dtype);
}

gp_status gp_stack_sample(const gp_stack *stack, uint64_t seed, int64_t first_row, int batch,
                          int distribution, float scale, float offset, void *output,
                          int output_dtype) {
    return sample(stack, seed, first_row, batch, distribution, scale, offset, NULL, 0, output,
                  output_dtype);
}

gp_status gp_stack_sample_labels(const gp_stack *stack, uint64_t seed, int64_t first_row,
                                 int batch, int distribution, float scale, float offset,
                                 const int32_t *labels, void *output, int output_dtype) {
    return sample(stack, seed, first_row, batch, distribution, scale, offset, labels, 1, output,
                  output_dtype);
}
