/* test_kernel.c: every ISA path of the dense stack against a naive double-precision reference.
 *
 * Tolerance, per output element: |kernel - reference| <= 1e-5 * (1 + S), where
 * S = |b_j| + sum_k |x_k W_jk| is the magnitude of the terms summed in double (so it scales with
 * the rounding error a float sum of those terms can make); every activation is 1-Lipschitz, and
 * the tanh / sigmoid approximations add at most GP_TEST_ACT_BOUND. For stacks, S is that of the
 * last layer, and x the reference's own double activations.
 *
 * Sections: helpers; single layers over a grid of shapes x batches x activations; whole stacks;
 * tanh / sigmoid error sweep; API contract (every status code, replacement, batch independence,
 * output bounds); 8 threads sharing one stack; threaded stacks (gp_stack_create_threads): bit for
 * bit equal to single-threaded for every batch and split, shared by 8 callers, freed while their
 * workers sleep; typed uint8 input and output, the latent stream and one-call samples against
 * the float path, bit for bit; the new entry points' status codes; class-conditional stacks (a
 * label's row of the class-bias table as layer 0's bias) against the same network run on one-hot
 * columns, and their status codes; bf16 weights: the rounding against known answers and a
 * double reference, and bf16 stacks equal, bit for bit, to float32 stacks of the rounded weights
 * (the kernel packs the rounded weights as float32: this checks that the rounding is applied).
 * Last line: "N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L
#include "ganpack_kernel.h"
#include "dense_stack_layer.h" /* gp_bf16_round */
#include "gp_isa.h" /* gp_isa_for_features, gp_isa_supported, GP_HAVE_X86 */

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_check.h" /* test_counts, check */

#define GP_TEST_RTOL 1e-5
#define GP_TEST_ACT_BOUND 1e-6 /* required max |error| of tanh and sigmoid */
#define N_ISAS 3

/* ---------------------------------------------------------------- helpers */


/* GP_TEST_QUICK=1 trims the grids (sizes, batches, sweep density) for slow runners such as
   valgrind, keeping every section, every ISA and every API check. */
static int quick;

typedef struct {
    uint64_t state;
} rng;

static uint64_t rng_next(rng *g) { /* splitmix64 */
    uint64_t z = (g->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_uniform(rng *g, float low, float high) { /* in [low, high) */
    const float unit = (float)(rng_next(g) >> 40) / 16777216.0f;
    return low + (high - low) * unit;
}

static float *random_floats(rng *g, size_t count, float low, float high) {
    float *values = malloc((count ? count : 1) * sizeof(float));
    if (values == NULL) {
        printf("FAIL: test out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < count; i++) values[i] = rng_uniform(g, low, high);
    return values;
}

typedef struct {
    int activation;
    float alpha;
    const char *name;
} act_config;

static const act_config ACTS[] = {
    {GP_ACT_IDENTITY, 0.0f, "identity"},     {GP_ACT_LEAKY_RELU, 0.0f, "leaky_relu(0)"},
    {GP_ACT_LEAKY_RELU, 0.01f, "leaky_relu(0.01)"}, {GP_ACT_LEAKY_RELU, 0.2f, "leaky_relu(0.2)"},
    {GP_ACT_RELU, 0.0f, "relu"},             {GP_ACT_TANH, 0.0f, "tanh"},
    {GP_ACT_SIGMOID, 0.0f, "sigmoid"},
};
#define N_ACTS ((int)(sizeof ACTS / sizeof ACTS[0]))

static double ref_activation(double v, int activation, double alpha) {
    switch (activation) {
    case GP_ACT_LEAKY_RELU: return v >= 0.0 ? v : alpha * v;
    case GP_ACT_RELU: return v < 0.0 ? 0.0 : v;
    case GP_ACT_TANH: return tanh(v);
    case GP_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    default: return v;
    }
}

/* One layer in double: y (rows, N) = act(x W^T + b), scale (rows, N) = |b| + sum |x W|. */
static void ref_layer(const double *x /* (rows, K) */, int rows, int K, int N,
                      const float *weight /* (N, K) */, const float *bias /* (N) */,
                      act_config act, double *y /* (rows, N) */, double *scale /* (rows, N) */) {
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < N; j++) {
            double sum = bias[j], magnitude = fabs((double)bias[j]);
            for (int k = 0; k < K; k++) {
                const double term = x[(size_t)r * (size_t)K + (size_t)k] *
                                    (double)weight[(size_t)j * (size_t)K + (size_t)k];
                sum += term;
                magnitude += fabs(term);
            }
            y[(size_t)r * (size_t)N + (size_t)j] = ref_activation(sum, act.activation, act.alpha);
            scale[(size_t)r * (size_t)N + (size_t)j] = magnitude;
        }
    }
}

/* Largest |got - want| / tolerance; <= 1 passes. NaN in got counts as a failure. */
static double worst_ratio(const float *got, const double *want, const double *scale, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double error = fabs((double)got[i] - want[i]);
        const double ratio = error / (GP_TEST_RTOL * (1.0 + scale[i]) + GP_TEST_ACT_BOUND);
        if (!(ratio <= worst)) worst = ratio; /* also catches NaN */
    }
    return worst;
}

/* A stack of the given widths and per-layer activations; NULL if this CPU lacks the ISA. */
static gp_stack *make_stack(test_counts *counts, int n_layers, const int *widths, int isa,
                            float *const *weights, float *const *biases, const act_config *acts) {
    gp_stack *stack = NULL;
    const gp_status status = gp_stack_create(n_layers, widths, isa, &stack);
    if (status == GP_ERR_UNSUPPORTED_ISA) return NULL;
    check(counts, status == GP_OK, "gp_stack_create");
    if (status != GP_OK) return NULL;
    for (int l = 0; l < n_layers; l++) {
        const gp_status set = gp_stack_set_layer(stack, l, weights[l], biases[l],
                                                 acts[l].activation, acts[l].alpha);
        check(counts, set == GP_OK, "gp_stack_set_layer");
    }
    return stack;
}

/* Runs every supported ISA on `input` and compares with the reference output. Returns the worst
   tolerance ratio seen; the output gets a canary tail that must survive the run. */
static double run_all_isas(test_counts *counts, const char *label, int n_layers, const int *widths,
                           float *const *weights, float *const *biases, const act_config *acts,
                           const float *input, int batch, const double *want,
                           const double *scale) {
    const size_t n_out = (size_t)batch * (size_t)widths[n_layers];
    const size_t n_in = (size_t)batch * (size_t)widths[0];
    float *input_copy = malloc((n_in ? n_in : 1) * sizeof(float));
    float *output = malloc((n_out + 16) * sizeof(float));
    if (input_copy == NULL || output == NULL) exit(1);
    if (n_in) memcpy(input_copy, input, n_in * sizeof(float));
    double worst = 0.0;
    char what[256];
    for (int isa = 0; isa < N_ISAS; isa++) {
        gp_stack *stack = make_stack(counts, n_layers, widths, isa, weights, biases, acts);
        if (stack == NULL) continue;
        for (size_t i = 0; i < n_out + 16; i++) output[i] = -12345.0f;
        const gp_status status = gp_stack_run(stack, input_copy, batch, output);
        const double ratio = worst_ratio(output, want, scale, n_out);
        int canary_ok = 1;
        for (size_t i = n_out; i < n_out + 16; i++) canary_ok &= output[i] == -12345.0f;
        snprintf(what, sizeof what, "%s [%s] batch %d: status %d, error/tolerance %.3g, canary %d",
                 label, gp_isa_name(isa), batch, (int)status, ratio, canary_ok);
        check(counts, status == GP_OK && ratio <= 1.0 && canary_ok &&
                          (n_in == 0 || memcmp(input_copy, input, n_in * sizeof(float)) == 0),
              what);
        if (ratio > worst) worst = ratio;
        gp_stack_free(stack);
    }
    free(input_copy);
    free(output);
    return worst;
}

/* ---------------------------------------------------------------- single layers */

static void test_single_layers(test_counts *counts, rng *g) {
    static const int SIZES[] = {1, 3, 7, 16, 17, 100, 128, 784, 1024};
    static const int BATCHES[] = {0, 1, 3, 17, 64};
    const int n_sizes = (int)(sizeof SIZES / sizeof SIZES[0]);
    const int n_batches = (int)(sizeof BATCHES / sizeof BATCHES[0]);
    double worst = 0.0;
    int cases = 0;
    for (int a = 0; a < n_sizes; a++) {
        for (int b = 0; b < n_sizes; b++) {
            const int K = SIZES[a], N = SIZES[b];
            if (quick && (a + b) % 3 != 0) continue; /* a third of the shapes, all sizes still met */
            const float limit = 1.0f / sqrtf((float)K); /* nn.Linear's default init range */
            float *weight = random_floats(g, (size_t)N * (size_t)K, -limit, limit);
            float *bias = random_floats(g, (size_t)N, -limit, limit);
            const int widths[2] = {K, N};
            for (int bi = 0; bi < n_batches; bi++) {
                const int batch = BATCHES[bi];
                /* every activation meets every shape across the batches of this grid */
                const act_config act = ACTS[(a * n_sizes + b + bi) % N_ACTS];
                float *x = random_floats(g, (size_t)batch * (size_t)K, -2.0f, 2.0f);
                double *xd = malloc(((size_t)batch * (size_t)K + 1) * sizeof(double));
                double *want = malloc(((size_t)batch * (size_t)N + 1) * sizeof(double));
                double *scale = malloc(((size_t)batch * (size_t)N + 1) * sizeof(double));
                if (xd == NULL || want == NULL || scale == NULL) exit(1);
                for (size_t i = 0; i < (size_t)batch * (size_t)K; i++) xd[i] = x[i];
                ref_layer(xd, batch, K, N, weight, bias, act, want, scale);
                char label[128];
                snprintf(label, sizeof label, "layer %d->%d %s", K, N, act.name);
                const double ratio = run_all_isas(counts, label, 1, widths, &weight, &bias, &act,
                                                  x, batch, want, scale);
                if (ratio > worst) worst = ratio;
                cases++;
                free(x);
                free(xd);
                free(want);
                free(scale);
            }
            free(weight);
            free(bias);
        }
    }
    printf("single layers: %d cases x ISAs, worst error/tolerance %.3g\n", cases, worst);
}

/* ---------------------------------------------------------------- whole stacks */

static void test_stack(test_counts *counts, rng *g, const char *label, int n_layers,
                       const int *widths, const act_config *acts, int batch) {
    float *weights[8], *biases[8];
    const size_t max_width = 2048;
    double *xd = calloc((size_t)batch * max_width, sizeof(double));
    double *yd = calloc((size_t)batch * max_width, sizeof(double));
    double *scale = calloc((size_t)batch * max_width, sizeof(double));
    if (xd == NULL || yd == NULL || scale == NULL) exit(1);
    float *x = random_floats(g, (size_t)batch * (size_t)widths[0], -2.0f, 2.0f);
    for (size_t i = 0; i < (size_t)batch * (size_t)widths[0]; i++) xd[i] = x[i];
    for (int l = 0; l < n_layers; l++) {
        const float limit = 1.0f / sqrtf((float)widths[l]);
        weights[l] = random_floats(g, (size_t)widths[l + 1] * (size_t)widths[l], -limit, limit);
        biases[l] = random_floats(g, (size_t)widths[l + 1], -limit, limit);
        ref_layer(xd, batch, widths[l], widths[l + 1], weights[l], biases[l], acts[l], yd, scale);
        double *swap = xd;
        xd = yd;
        yd = swap;
    }
    const double ratio = run_all_isas(counts, label, n_layers, widths, weights, biases, acts, x,
                                      batch, xd, scale);
    printf("stack %s batch %d: worst error/tolerance %.3g\n", label, batch, ratio);
    for (int l = 0; l < n_layers; l++) {
        free(weights[l]);
        free(biases[l]);
    }
    free(x);
    free(xd);
    free(yd);
    free(scale);
}

static void test_stacks(test_counts *counts, rng *g) {
    const act_config leaky = ACTS[3], tanh_act = ACTS[5], sigmoid_act = ACTS[6];
    const int generator[3] = {100, 128, 784};
    const act_config generator_acts[2] = {leaky, tanh_act};
    const int discriminator[3] = {784, 128, 1};
    const act_config discriminator_acts[2] = {leaky, sigmoid_act};
    const int deep[8] = {3, 17, 1, 16, 100, 7, 1024, 5};
    const act_config deep_acts[7] = {ACTS[0], ACTS[1], ACTS[2], ACTS[3], ACTS[4], ACTS[5], ACTS[6]};
    static const int BATCHES[] = {1, 3, 17, 64, 150};
    for (int i = 0; i < (int)(sizeof BATCHES / sizeof BATCHES[0]); i++) {
        if (quick && i % 2) continue;
        test_stack(counts, g, "generator 100-128-784", 2, generator, generator_acts, BATCHES[i]);
        test_stack(counts, g, "discriminator 784-128-1", 2, discriminator, discriminator_acts,
                   BATCHES[i]);
        test_stack(counts, g, "deep 3-17-1-16-100-7-1024-5", 7, deep, deep_acts, BATCHES[i]);
    }
}

/* ---------------------------------------------------------------- tanh / sigmoid sweep */

/* A 1 -> M layer with input 1, bias 0 and W[j][0] = x_j gives act(x_j) exactly: fma(1, x, 0) = x.
   Sweeps [-20, 20] step 1e-4, then magnitudes up to FLT_MAX, on every lane of every ISA. */
static void test_activation_sweep(test_counts *counts) {
    static const float EXTREMES[] = {0.0f,    1e-30f,  1e-38f,   1e-45f,  1e-7f,  1e-4f,
                                     0.1249999f, 0.125f, 9.0f,  9.9999f, 10.0f,  10.0001f,
                                     21.0f,   30.0f,   44.0f,    50.0f,   87.0f,  88.0f,
                                     88.7f,   89.0f,   100.0f,   1e3f,    1e10f,  1e30f,
                                     FLT_MAX};
    const int n_extremes = (int)(sizeof EXTREMES / sizeof EXTREMES[0]);
    const int n_sweep = quick ? 40001 : 400001;
    const double sweep_step = quick ? 1e-3 : 1e-4;
    const int M = n_sweep + 2 * n_extremes;
    float *x = malloc((size_t)M * sizeof(float));
    float *y = malloc((size_t)M * sizeof(float));
    float *zero_bias = calloc((size_t)M, sizeof(float));
    if (x == NULL || y == NULL || zero_bias == NULL) exit(1);
    for (int i = 0; i < n_sweep; i++) x[i] = (float)(-20.0 + sweep_step * i);
    for (int i = 0; i < n_extremes; i++) {
        x[n_sweep + 2 * i] = EXTREMES[i];
        x[n_sweep + 2 * i + 1] = -EXTREMES[i];
    }
    const int widths[2] = {1, M};
    const float one = 1.0f;
    const int acts[2] = {GP_ACT_TANH, GP_ACT_SIGMOID};
    for (int isa = 0; isa < N_ISAS; isa++) {
        gp_stack *stack = NULL;
        if (gp_stack_create(1, widths, isa, &stack) != GP_OK) continue;
        for (int a = 0; a < 2; a++) {
            check(counts, gp_stack_set_layer(stack, 0, x, zero_bias, acts[a], 0.0f) == GP_OK,
                  "sweep set_layer");
            check(counts, gp_stack_run(stack, &one, 1, y) == GP_OK, "sweep run");
            double worst = 0.0, worst_at = 0.0;
            int saturated = 1;
            for (int i = 0; i < M; i++) {
                const double want = acts[a] == GP_ACT_TANH ? tanh((double)x[i])
                                                           : 1.0 / (1.0 + exp(-(double)x[i]));
                const double error = fabs((double)y[i] - want);
                if (!(error <= worst)) {
                    worst = error;
                    worst_at = x[i];
                }
                if (fabs((double)x[i]) >= 50.0) { /* saturated: +-1 for tanh, 1 or ~0 sigmoid */
                    if (acts[a] == GP_ACT_TANH) saturated &= y[i] == (x[i] > 0 ? 1.0f : -1.0f);
                    else if (x[i] > 0) saturated &= y[i] == 1.0f;
                    else saturated &= y[i] >= 0.0f && y[i] <= 2e-22f; /* sigmoid(-50) = 1.9e-22 */
                }
            }
            char what[160];
            snprintf(what, sizeof what, "%s [%s] max |error| %.3g at x = %.9g (bound %.0e)%s",
                     acts[a] == GP_ACT_TANH ? "tanh" : "sigmoid", gp_isa_name(isa), worst,
                     worst_at, GP_TEST_ACT_BOUND, saturated ? "" : ", NOT SATURATED");
            printf("%s\n", what);
            check(counts, worst <= GP_TEST_ACT_BOUND && saturated, what);
        }
        gp_stack_free(stack);
    }
    free(x);
    free(y);
    free(zero_bias);
}

/* ---------------------------------------------------------------- API contract */

static int overcommit_always(void) {
    /* Linux overcommit mode 1 would "grant" the 4 TiB the NOMEM test asks for. */
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    if (f == NULL) return 0;
    const int mode = fgetc(f);
    fclose(f);
    return mode == '1';
}

static void test_api_errors(test_counts *counts) {
    const int widths[3] = {4, 3, 2};
    const float weight[12] = {0}, bias[3] = {0}, input[8] = {0};
    float output[4];
    gp_stack *stack = (gp_stack *)&stack; /* must be reset to NULL on failure */

    check(counts, gp_stack_create(2, widths, GP_ISA_AUTO, NULL) == GP_ERR_NULL, "create out NULL");
    check(counts, gp_stack_create(2, NULL, GP_ISA_AUTO, &stack) == GP_ERR_NULL && !stack,
          "create widths NULL");
    check(counts, gp_stack_create(0, widths, GP_ISA_AUTO, &stack) == GP_ERR_SHAPE, "0 layers");
    check(counts, gp_stack_create(65, widths, GP_ISA_AUTO, &stack) == GP_ERR_SHAPE, "65 layers");
    const int bad_widths[4][2] = {{0, 3}, {4, -1}, {(1 << 20) + 1, 2}, {4, INT32_MAX}};
    for (int i = 0; i < 4; i++) {
        check(counts, gp_stack_create(1, bad_widths[i], GP_ISA_AUTO, &stack) == GP_ERR_SHAPE,
              "bad width");
    }
    check(counts, gp_stack_create(3, (const int[]){1 << 20, 1, 1 << 20, 1}, GP_ISA_AUTO, &stack) ==
                      GP_OK,
          "widest widths accepted");
    gp_stack_free(stack);
    check(counts, gp_stack_create(2, widths, 3, &stack) == GP_ERR_UNSUPPORTED_ISA && !stack,
          "isa 3");
    check(counts, gp_stack_create(2, widths, -2, &stack) == GP_ERR_UNSUPPORTED_ISA, "isa -2");
    /* Every ISA up to gp_best_isa is accepted and used, every one above it refused. In the
       emulated build (make test-avx512-emulated) gp_best_isa is avx512: all three are accepted,
       and test_dispatch checks that the forced dispatch follows AVX2 + FMA. */
    for (int isa = 0; isa < N_ISAS; isa++) {
        const gp_status status = gp_stack_create(2, widths, isa, &stack);
        if (isa <= gp_best_isa()) {
            check(counts, status == GP_OK && gp_stack_isa(stack) == isa,
                  "an ISA up to gp_best_isa is accepted");
            gp_stack_free(stack);
        } else {
            check(counts, status == GP_ERR_UNSUPPORTED_ISA && stack == NULL,
                  "an ISA above gp_best_isa is refused");
        }
    }

    check(counts, gp_stack_create(2, widths, GP_ISA_AUTO, &stack) == GP_OK, "create");
    check(counts, gp_stack_isa(stack) == gp_best_isa(), "AUTO picks gp_best_isa");
    check(counts, gp_stack_isa(NULL) == -1, "gp_stack_isa(NULL)");
    check(counts, gp_stack_run(stack, input, 2, output) == GP_ERR_INCOMPLETE, "no layer set");
    check(counts, gp_stack_set_layer(NULL, 0, weight, bias, 0, 0.0f) == GP_ERR_NULL, "set NULL");
    check(counts, gp_stack_set_layer(stack, 0, NULL, bias, 0, 0.0f) == GP_ERR_NULL, "weight NULL");
    check(counts, gp_stack_set_layer(stack, 0, weight, NULL, 0, 0.0f) == GP_ERR_NULL, "bias NULL");
    check(counts, gp_stack_set_layer(stack, -1, weight, bias, 0, 0.0f) == GP_ERR_SHAPE, "layer -1");
    check(counts, gp_stack_set_layer(stack, 2, weight, bias, 0, 0.0f) == GP_ERR_SHAPE, "layer 2");
    check(counts, gp_stack_set_layer(stack, 0, weight, bias, 5, 0.0f) == GP_ERR_ACTIVATION,
          "activation 5");
    check(counts, gp_stack_set_layer(stack, 0, weight, bias, -1, 0.0f) == GP_ERR_ACTIVATION,
          "activation -1");
    const float bad_alphas[5] = {-0.01f, 1.0f, 2.0f, NAN, INFINITY};
    for (int i = 0; i < 5; i++) {
        check(counts, gp_stack_set_layer(stack, 0, weight, bias, GP_ACT_LEAKY_RELU,
                                         bad_alphas[i]) == GP_ERR_ALPHA, "bad leaky alpha");
    }
    check(counts, gp_stack_set_layer(stack, 0, weight, bias, GP_ACT_RELU, 0.2f) == GP_ERR_ALPHA,
          "alpha with relu");
    check(counts, gp_stack_set_layer(stack, 0, weight, bias, GP_ACT_LEAKY_RELU, 0.999f) == GP_OK,
          "alpha 0.999");
    check(counts, gp_stack_run(stack, input, 2, output) == GP_ERR_INCOMPLETE, "one layer of two");
    check(counts, gp_stack_set_layer(stack, 1, weight, bias, GP_ACT_TANH, 0.0f) == GP_OK, "set");
    check(counts, gp_stack_run(NULL, input, 2, output) == GP_ERR_NULL, "run NULL stack");
    check(counts, gp_stack_run(stack, NULL, 2, output) == GP_ERR_NULL, "run NULL input");
    check(counts, gp_stack_run(stack, input, 2, NULL) == GP_ERR_NULL, "run NULL output");
    check(counts, gp_stack_run(stack, input, -1, output) == GP_ERR_SHAPE, "batch -1");
    check(counts, gp_stack_run(stack, NULL, 0, NULL) == GP_OK, "batch 0");
    check(counts, gp_stack_run(stack, input, 2, output) == GP_OK, "run");
    gp_stack_free(stack);
    gp_stack_free(NULL);

    if (overcommit_always()) {
        printf("skipped GP_ERR_NOMEM: the OS overcommits every allocation\n");
    } else {
        const int huge[2] = {1 << 20, 1 << 20}; /* 4 TiB of weights */
        check(counts, gp_stack_create(1, huge, GP_ISA_AUTO, &stack) == GP_OK, "create huge");
        check(counts, gp_stack_set_layer(stack, 0, weight, bias, 0, 0.0f) == GP_ERR_NOMEM,
              "GP_ERR_NOMEM");
        check(counts, gp_stack_run(stack, input, 1, output) == GP_ERR_INCOMPLETE,
              "failed set_layer leaves the layer unset");
        gp_stack_free(stack);
    }

    check(counts, gp_stack_create_threads(2, widths, GP_ISA_AUTO, -1, &stack) == GP_ERR_SHAPE &&
                      !stack, "n_threads -1");
    check(counts, gp_stack_create_threads(2, widths, GP_ISA_AUTO, 65, &stack) == GP_ERR_SHAPE,
          "n_threads 65");
    check(counts, gp_stack_create_threads(2, widths, GP_ISA_AUTO, 2, NULL) == GP_ERR_NULL,
          "create_threads out NULL");
    check(counts, gp_stack_create_threads(2, NULL, GP_ISA_AUTO, 2, &stack) == GP_ERR_NULL,
          "create_threads widths NULL");
    check(counts, gp_stack_create_threads(2, widths, 3, 2, &stack) == GP_ERR_UNSUPPORTED_ISA,
          "create_threads isa 3");
    check(counts, gp_stack_threads(NULL) == -1, "gp_stack_threads(NULL)");
    check(counts, gp_stack_create(2, widths, GP_ISA_AUTO, &stack) == GP_OK &&
                      gp_stack_threads(stack) == 1, "gp_stack_create is single-threaded");
    gp_stack_free(stack);
    check(counts, gp_stack_create_threads(2, widths, GP_ISA_AUTO, 3, &stack) == GP_OK &&
                      gp_stack_threads(stack) == 3, "3 threads");
    check(counts, gp_stack_run(stack, input, 2, output) == GP_ERR_INCOMPLETE,
          "threaded: no layer set");
    gp_stack_free(stack); /* never ran: workers still spinning or just asleep */
    check(counts, gp_stack_create_threads(2, widths, GP_ISA_AUTO, 0, &stack) == GP_OK &&
                      gp_stack_threads(stack) >= 1 && gp_stack_threads(stack) <= 8,
          "0 threads = one per CPU, at most 8");
    gp_stack_free(stack);

    for (int status = GP_OK; status <= GP_ERR_THREAD; status++) {
        const char *message = gp_status_message(status);
        check(counts, message != NULL && strcmp(message, "unknown status") != 0, "status message");
    }
    check(counts, strcmp(gp_status_message(99), "unknown status") == 0, "unknown status message");
    check(counts, strcmp(gp_isa_name(GP_ISA_PORTABLE), "portable") == 0 &&
                      strcmp(gp_isa_name(GP_ISA_AVX2_FMA), "avx2_fma") == 0 &&
                      strcmp(gp_isa_name(GP_ISA_AVX512), "avx512") == 0 &&
                      strcmp(gp_isa_name(7), "unknown") == 0,
          "isa names");
}

/* Replacing a layer takes effect; a row's result does not depend on the batch it came in. */
static void test_api_semantics(test_counts *counts, rng *g) {
    const int widths[3] = {37, 45, 19};
    float *w0 = random_floats(g, 45 * 37, -0.2f, 0.2f), *b0 = random_floats(g, 45, -0.2f, 0.2f);
    float *w1 = random_floats(g, 19 * 45, -0.2f, 0.2f), *b1 = random_floats(g, 19, -0.2f, 0.2f);
    float *x = random_floats(g, 70 * 37, -2.0f, 2.0f);
    float batched[70 * 19], single[19], first[70 * 19];
    for (int isa = 0; isa < N_ISAS; isa++) {
        gp_stack *stack = NULL;
        if (gp_stack_create(2, widths, isa, &stack) != GP_OK) continue;
        gp_stack_set_layer(stack, 0, w0, b0, GP_ACT_LEAKY_RELU, 0.2f);
        gp_stack_set_layer(stack, 1, w0, b1, GP_ACT_TANH, 0.0f); /* w0 is big enough: replaced */
        gp_stack_run(stack, x, 70, first);
        check(counts, gp_stack_set_layer(stack, 1, w1, b1, GP_ACT_SIGMOID, 0.0f) == GP_OK,
              "replace layer");
        check(counts, gp_stack_run(stack, x, 70, batched) == GP_OK, "run after replace");
        check(counts, memcmp(first, batched, sizeof batched) != 0, "replacement takes effect");
        int same = 1;
        for (int r = 0; r < 70; r++) {
            gp_stack_run(stack, x + r * 37, 1, single);
            same &= memcmp(single, batched + r * 19, sizeof single) == 0;
        }
        check(counts, same, "batch of 70 == 70 batches of 1, bit for bit");
        gp_stack_free(stack);
    }
    free(w0);
    free(b0);
    free(w1);
    free(b1);
    free(x);
}

/* ---------------------------------------------------------------- threads */

#define N_THREADS 8
#define THREAD_BATCH 37
#define THREAD_ROUNDS 20

typedef struct {
    const gp_stack *stack;
    const float *input;    /* (THREAD_BATCH, 100) */
    const float *expected; /* (THREAD_BATCH, 784) */
    float *output;         /* (THREAD_BATCH, 784) */
    int mismatches;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *job = arg;
    for (int round = 0; round < (quick ? 3 : THREAD_ROUNDS); round++) {
        const size_t n_out = (size_t)THREAD_BATCH * 784;
        if (gp_stack_run(job->stack, job->input, THREAD_BATCH, job->output) != GP_OK ||
            memcmp(job->output, job->expected, n_out * sizeof(float)) != 0) {
            job->mismatches++;
        }
    }
    return NULL;
}

/* 8 callers share one stack: single-threaded (n_threads 1), then one with 2 threads, where one
   caller at a time gets the worker and the others run on their own thread. */
static void test_threads(test_counts *counts, rng *g, int n_threads) {
    const int widths[3] = {100, 128, 784};
    float *w0 = random_floats(g, 128 * 100, -0.1f, 0.1f);
    float *b0 = random_floats(g, 128, -0.1f, 0.1f);
    float *w1 = random_floats(g, 784 * 128, -0.09f, 0.09f);
    float *b1 = random_floats(g, 784, -0.1f, 0.1f);
    const size_t n_in = (size_t)N_THREADS * THREAD_BATCH * 100;
    const size_t n_out = (size_t)N_THREADS * THREAD_BATCH * 784;
    float *input = random_floats(g, n_in, -2.0f, 2.0f);
    float *expected = malloc(n_out * sizeof(float)), *outputs = malloc(n_out * sizeof(float));
    if (expected == NULL || outputs == NULL) exit(1);
    for (int isa = 0; isa < N_ISAS; isa++) {
        gp_stack *stack = NULL;
        if (gp_stack_create(2, widths, isa, &stack) != GP_OK) continue;
        gp_stack_set_layer(stack, 0, w0, b0, GP_ACT_LEAKY_RELU, 0.2f);
        gp_stack_set_layer(stack, 1, w1, b1, GP_ACT_TANH, 0.0f);
        for (int t = 0; t < N_THREADS; t++) { /* single-threaded, one slice at a time */
            gp_stack_run(stack, input + (size_t)t * THREAD_BATCH * 100, THREAD_BATCH,
                         expected + (size_t)t * THREAD_BATCH * 784);
        }
        if (n_threads != 1) { /* the same weights on a threaded stack */
            gp_stack_free(stack);
            stack = NULL;
            check(counts, gp_stack_create_threads(2, widths, isa, n_threads, &stack) == GP_OK,
                  "create_threads");
            if (stack == NULL) continue;
            gp_stack_set_layer(stack, 0, w0, b0, GP_ACT_LEAKY_RELU, 0.2f);
            gp_stack_set_layer(stack, 1, w1, b1, GP_ACT_TANH, 0.0f);
        }
        pthread_t threads[N_THREADS];
        thread_job jobs[N_THREADS];
        int started[N_THREADS];
        for (int t = 0; t < N_THREADS; t++) {
            jobs[t] = (thread_job){stack, input + (size_t)t * THREAD_BATCH * 100,
                                   expected + (size_t)t * THREAD_BATCH * 784,
                                   outputs + (size_t)t * THREAD_BATCH * 784, 0};
            started[t] = pthread_create(&threads[t], NULL, thread_main, &jobs[t]) == 0;
            check(counts, started[t], "pthread_create");
        }
        int mismatches = 0;
        for (int t = 0; t < N_THREADS; t++) {
            if (!started[t]) continue;
            pthread_join(threads[t], NULL);
            mismatches += jobs[t].mismatches;
        }
        char what[128];
        snprintf(what, sizeof what,
                 "[%s] %d callers x %d runs on one stack of %d threads: %d mismatches",
                 gp_isa_name(isa), N_THREADS, quick ? 3 : THREAD_ROUNDS, n_threads, mismatches);
        check(counts, mismatches == 0, what);
        gp_stack_free(stack);
    }
    free(w0);
    free(b0);
    free(w1);
    free(b1);
    free(input);
    free(expected);
    free(outputs);
}

/* ---------------------------------------------------------------- typed I/O, latents, sample */

/* numpy's float -> uint8 mapping, in float32 steps: clip(rint((v + 1) * 127.5), 0, 255) */
static unsigned char ref_u8(float v) {
    float scaled = (v + 1.0f) * 127.5f;
    if (!(scaled > 0.0f)) scaled = 0.0f;
    if (scaled > 255.0f) scaled = 255.0f;
    return (unsigned char)rintf(scaled);
}

/* A stack with random weights: threads, ISA, hidden leaky_relu, the last activation given. */
static gp_stack *random_stack(rng *g, int n_layers, const int *widths, int isa, int n_threads,
                              int last_activation) {
    gp_stack *stack = NULL;
    if (gp_stack_create_threads(n_layers, widths, isa, n_threads, &stack) != GP_OK) return NULL;
    for (int l = 0; l < n_layers; l++) {
        const float limit = 1.5f / sqrtf((float)widths[l]);
        float *weight = random_floats(g, (size_t)widths[l + 1] * (size_t)widths[l], -limit, limit);
        float *bias = random_floats(g, (size_t)widths[l + 1], -limit, limit);
        const int last = l == n_layers - 1;
        gp_stack_set_layer(stack, l, weight, bias, last ? last_activation : GP_ACT_LEAKY_RELU,
                           last ? 0.0f : 0.01f);
        free(weight);
        free(bias);
    }
    return stack;
}

/* uint8 out = the mapping of the float out, uint8 in = the float run on u / 127.5f - 1, bit for
   bit, on every ISA and thread count, with odd widths (masked stores), identity outputs far
   outside [-1, 1] (the clamp) and a canary after every output. */
static void test_typed_io(test_counts *counts, rng *g) {
    static const int SHAPES[4][3] = {{100, 128, 784}, {13, 20, 17}, {784, 128, 1}, {5, 9, 3}};
    static const int BATCHES[] = {1, 3, 8, 17, 70};
    for (int shape = 0; shape < 4; shape++) {
        const int *widths = SHAPES[shape];
        const int max_batch = 70;
        const size_t n_in = (size_t)max_batch * (size_t)widths[0];
        const size_t n_out = (size_t)max_batch * (size_t)widths[2];
        float *x = random_floats(g, n_in, -1.0f, 1.0f), *converted = malloc(n_in * sizeof(float));
        unsigned char *pixels = malloc(n_in), *got_u8 = malloc(n_out + 16);
        float *want = malloc(n_out * sizeof(float)), *got = malloc((n_out + 16) * sizeof(float));
        if (converted == NULL || pixels == NULL || got_u8 == NULL || want == NULL || got == NULL) exit(1);
        for (size_t i = 0; i < n_in; i++) {
            pixels[i] = (unsigned char)(rng_next(g) & 255u);
            converted[i] = (float)pixels[i] / 127.5f - 1.0f;
        }
        for (int isa = 0; isa < N_ISAS; isa++) {
            for (int act = 0; act < 2; act++) {
                const int activation = act ? GP_ACT_IDENTITY : (shape == 2 ? GP_ACT_SIGMOID : GP_ACT_TANH);
                for (int n_threads = 1; n_threads <= (quick ? 1 : 2); n_threads++) {
                    const rng saved = *g; /* the same weights for every thread count */
                    gp_stack *stack = random_stack(g, 2, widths, isa, n_threads, activation);
                    if (stack == NULL) continue;
                    int mismatches = 0, canaries = 1;
                    for (int b = 0; b < 5; b++) {
                        if (quick && b != 0 && b != 2) continue; /* batches 1 and 8 */
                        const int batch = BATCHES[b];
                        const size_t n = (size_t)batch * (size_t)widths[2];
                        if (n > n_out) break; /* never: tells the compiler n is bounded */
                        /* float in, uint8 out */
                        gp_stack_run(stack, x, batch, want);
                        memset(got_u8, 0xA5, n + 16);
                        mismatches += gp_stack_run_typed(stack, x, GP_F32, batch, got_u8, GP_U8) != GP_OK;
                        for (size_t i = 0; i < n; i++) mismatches += got_u8[i] != ref_u8(want[i]);
                        for (size_t i = n; i < n + 16; i++) canaries &= got_u8[i] == 0xA5;
                        /* uint8 in, float and uint8 out */
                        gp_stack_run(stack, converted, batch, want);
                        for (size_t i = 0; i < n + 16; i++) got[i] = -12345.0f;
                        mismatches += gp_stack_run_typed(stack, pixels, GP_U8, batch, got, GP_F32) != GP_OK;
                        mismatches += memcmp(got, want, n * sizeof(float)) != 0;
                        for (size_t i = n; i < n + 16; i++) canaries &= got[i] == -12345.0f;
                        mismatches += gp_stack_run_typed(stack, pixels, GP_U8, batch, got_u8, GP_U8) != GP_OK;
                        for (size_t i = 0; i < n; i++) mismatches += got_u8[i] != ref_u8(want[i]);
                    }
                    char what[160];
                    snprintf(what, sizeof what, "[%s] typed I/O %d-%d-%d act %d, %d threads: %d mismatches, canary %d",
                             gp_isa_name(isa), widths[0], widths[1], widths[2], activation, n_threads,
                             mismatches, canaries);
                    check(counts, mismatches == 0 && canaries, what);
                    gp_stack_free(stack);
                    if (n_threads == 1) *g = saved;
                }
            }
        }
        free(x);
        free(converted);
        free(pixels);
        free(got_u8);
        free(want);
        free(got);
    }
}

/* gp_stack_sample == gp_latents then gp_stack_run_typed, bit for bit, on every ISA, thread
   count and batch; through an identity layer the output is the latents themselves, so every
   ISA's latent path draws the same numbers as gp_latents. */
static void test_sample(test_counts *counts, rng *g) {
    static const int BATCHES[] = {1, 2, 5, 8, 9, 33, 150};
    const int max_batch = 150;
    const int widths[3] = {100, 128, 784};
    float *z = malloc((size_t)max_batch * 100 * sizeof(float));
    float *want = malloc((size_t)max_batch * 784 * sizeof(float));
    float *got = malloc(((size_t)max_batch * 784 + 16) * sizeof(float));
    unsigned char *got_u8 = malloc((size_t)max_batch * 784 + 16);
    if (z == NULL || want == NULL || got == NULL || got_u8 == NULL) exit(1);
    const uint64_t seed = 0x0123456789ABCDEFull;
    for (int isa = 0; isa < N_ISAS; isa++) {
        for (int n_threads = 1; n_threads <= (quick ? 2 : 3); n_threads++) {
            const rng saved = *g;
            gp_stack *stack = random_stack(g, 2, widths, isa, n_threads, GP_ACT_TANH);
            *g = saved;
            if (stack == NULL) continue;
            int mismatches = 0, canaries = 1;
            for (int dist = 0; dist < 2; dist++) {
                const float scale = dist ? 2.0f : 0.7f, offset = dist ? -1.0f : 0.25f;
                for (int b = 0; b < 7; b++) {
                    if (quick && b != 0 && b != 4) continue; /* batches 1 and 9 */
                    const int batch = BATCHES[b];
                    const int64_t first = b * 1000003LL;
                    const size_t n = (size_t)batch * 784;
                    mismatches += gp_latents(seed, first, batch, 100, dist, scale, offset, z) != GP_OK;
                    gp_stack_run(stack, z, batch, want);
                    for (size_t i = 0; i < n + 16; i++) got[i] = -12345.0f;
                    mismatches += gp_stack_sample(stack, seed, first, batch, dist, scale, offset, got,
                                                  GP_F32) != GP_OK;
                    mismatches += memcmp(got, want, n * sizeof(float)) != 0;
                    for (size_t i = n; i < n + 16; i++) canaries &= got[i] == -12345.0f;
                    memset(got_u8, 0xA5, n + 16);
                    mismatches += gp_stack_sample(stack, seed, first, batch, dist, scale, offset, got_u8,
                                                  GP_U8) != GP_OK;
                    for (size_t i = 0; i < n; i++) mismatches += got_u8[i] != ref_u8(want[i]);
                    for (size_t i = n; i < n + 16; i++) canaries &= got_u8[i] == 0xA5;
                }
            }
            char what[128];
            snprintf(what, sizeof what, "[%s] sample == latents + run, %d threads: %d mismatches, canary %d",
                     gp_isa_name(isa), n_threads, mismatches, canaries);
            check(counts, mismatches == 0 && canaries, what);
            gp_stack_free(stack);
        }
        /* identity: y = 0 + 1 * z_j + 0 * (the rest) = z_j */
        static const int DIMS[] = {1, 3, 4, 31, 33, 100};
        for (int d = 0; d < 6; d++) {
            const int dim = DIMS[d], id_widths[2] = {dim, dim};
            float *eye = calloc((size_t)dim * (size_t)dim, sizeof(float));
            float *zero = calloc((size_t)dim, sizeof(float));
            if (eye == NULL || zero == NULL) exit(1);
            for (int j = 0; j < dim; j++) eye[(size_t)j * (size_t)dim + (size_t)j] = 1.0f;
            gp_stack *identity = NULL;
            if (gp_stack_create(1, id_widths, isa, &identity) != GP_OK) {
                free(eye);
                free(zero);
                continue;
            }
            gp_stack_set_layer(identity, 0, eye, zero, GP_ACT_IDENTITY, 0.0f);
            int mismatches = 0;
            for (int dist = 0; dist < 2; dist++) {
                const int64_t first = (int64_t)1 << 33; /* rows past 2^32: the counter's high word */
                gp_latents(seed, first, 37, dim, dist, 1.0f, 0.0f, z);
                gp_stack_sample(identity, seed, first, 37, dist, 1.0f, 0.0f, got, GP_F32);
                for (size_t i = 0; i < (size_t)37 * (size_t)dim; i++) mismatches += got[i] != z[i];
            }
            char what[96];
            snprintf(what, sizeof what, "[%s] latents through an identity layer, dim %d: %d mismatches",
                     gp_isa_name(isa), dim, mismatches);
            check(counts, mismatches == 0, what);
            gp_stack_free(identity);
            free(eye);
            free(zero);
        }
    }
    free(z);
    free(want);
    free(got);
    free(got_u8);
}

/* GP_F32_IMAGE and GP_F32_FINITE: in range, the float run bit for bit; one NaN, infinity (or,
   for IMAGE, out-of-range value) anywhere (first row, a later chunk, the last value) stops the
   run with GP_ERR_INPUT, on every ISA and thread count, one layer or two. */
static void test_checked_input(test_counts *counts, rng *g) {
    static const int SHAPES[2][3] = {{784, 128, 1}, {20, 7, 0}};
    const int batch = quick ? 16 : 40; /* 2 or 5 chunks of 8 rows for the 784-128-1 stack */
    for (int shape = 0; shape < 2; shape++) {
        const int *widths = SHAPES[shape];
        const int n_layers = widths[2] ? 2 : 1, n_out_width = widths[n_layers];
        const size_t n_in = (size_t)batch * (size_t)widths[0];
        float *x = random_floats(g, n_in, -1.0f, 1.0f);
        float *want = malloc((size_t)batch * (size_t)n_out_width * sizeof(float));
        float *got = malloc((size_t)batch * (size_t)n_out_width * sizeof(float));
        if (want == NULL || got == NULL) exit(1);
        x[0] = -1.0f;
        x[1] = 1.0f;
        x[2] = 1.0000009f; /* inside the margin */
        for (int isa = 0; isa < N_ISAS; isa++) {
            for (int n_threads = 1; n_threads <= 2; n_threads++) {
                gp_stack *stack = random_stack(g, n_layers, widths, isa, n_threads, GP_ACT_IDENTITY);
                if (stack == NULL) continue;
                int wrong = gp_stack_run(stack, x, batch, want) != GP_OK;
                wrong += gp_stack_run_typed(stack, x, GP_F32_IMAGE, batch, got, GP_F32) != GP_OK;
                wrong += memcmp(got, want, (size_t)batch * (size_t)n_out_width * sizeof(float)) != 0;
                wrong += gp_stack_run_typed(stack, x, GP_F32_FINITE, batch, got, GP_F32) != GP_OK;
                wrong += memcmp(got, want, (size_t)batch * (size_t)n_out_width * sizeof(float)) != 0;
                static const float BAD[5] = {NAN, INFINITY, -INFINITY, -1.5f, 1.00001f};
                const size_t where[3] = {0, n_in / 2 + 3, n_in - 1};
                for (int b = 0; b < 5; b++) {
                    for (int w = 0; w < 3; w++) {
                        if (quick && (b % 2 || w == 1)) continue; /* NaN, -inf, 1.00001; first, last */
                        const float saved = x[where[w]];
                        x[where[w]] = BAD[b];
                        wrong += gp_stack_run_typed(stack, x, GP_F32_IMAGE, batch, got, GP_F32) != GP_ERR_INPUT;
                        /* finite: only NaN and the infinities stop it */
                        wrong += gp_stack_run_typed(stack, x, GP_F32_FINITE, batch, got, GP_F32) !=
                                 (b < 3 ? GP_ERR_INPUT : GP_OK);
                        x[where[w]] = saved;
                    }
                }
                char what[128];
                snprintf(what, sizeof what, "[%s] GP_F32_IMAGE input, %d layers, %d threads: %d wrong",
                         gp_isa_name(isa), n_layers, n_threads, wrong);
                check(counts, wrong == 0, what);
                gp_stack_free(stack);
            }
        }
        free(x);
        free(want);
        free(got);
    }
}

/* The status of every bad argument of the typed, latent, sample and ceiling entry points. */
static void test_new_api_errors(test_counts *counts, rng *g) {
    const int widths[3] = {4, 3, 2};
    gp_stack *stack = random_stack(g, 2, widths, GP_ISA_AUTO, 1, GP_ACT_TANH);
    gp_stack *incomplete = NULL;
    gp_stack_create(2, widths, GP_ISA_AUTO, &incomplete);
    float x[8] = {0}, y[4] = {0};
    unsigned char pixels[8] = {0};
    check(counts, gp_stack_run_typed(stack, x, 4, 2, y, GP_F32) == GP_ERR_ARGUMENT, "run_typed input dtype");
    check(counts, gp_stack_run_typed(stack, x, -1, 2, y, GP_F32) == GP_ERR_ARGUMENT, "run_typed input dtype -1");
    check(counts, gp_stack_run_typed(stack, x, GP_F32, 2, y, -1) == GP_ERR_ARGUMENT, "run_typed output dtype");
    check(counts, gp_stack_run_typed(stack, x, GP_F32, 2, y, GP_F32_IMAGE) == GP_ERR_ARGUMENT,
          "GP_F32_IMAGE is for input only");
    check(counts, gp_stack_run_typed(stack, NULL, GP_U8, 2, y, GP_F32) == GP_ERR_NULL, "run_typed NULL input");
    check(counts, gp_stack_run_typed(stack, pixels, GP_U8, 2, NULL, GP_U8) == GP_ERR_NULL, "run_typed NULL output");
    check(counts, gp_stack_run_typed(stack, NULL, GP_U8, 0, NULL, GP_U8) == GP_OK, "run_typed batch 0");
    check(counts, gp_stack_run_typed(stack, pixels, GP_U8, -1, y, GP_F32) == GP_ERR_SHAPE, "run_typed batch -1");
    check(counts, gp_stack_run_typed(NULL, pixels, GP_U8, 1, y, GP_F32) == GP_ERR_NULL, "run_typed NULL stack");
    check(counts, gp_stack_run_typed(incomplete, pixels, GP_U8, 1, y, GP_F32) == GP_ERR_INCOMPLETE,
          "run_typed incomplete");
    check(counts, gp_stack_sample(stack, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, y, GP_F32) == GP_OK, "sample ok");
    check(counts, gp_stack_sample(stack, 1, 0, 2, 2, 1.0f, 0.0f, y, GP_F32) == GP_ERR_ARGUMENT, "sample distribution");
    check(counts, gp_stack_sample(stack, 1, 0, 2, GP_LATENT_NORMAL, NAN, 0.0f, y, GP_F32) == GP_ERR_ARGUMENT,
          "sample NaN scale");
    check(counts, gp_stack_sample(stack, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, INFINITY, y, GP_F32) == GP_ERR_ARGUMENT,
          "sample infinite offset");
    check(counts, gp_stack_sample(stack, 1, -1, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, y, GP_F32) == GP_ERR_SHAPE,
          "sample first_row -1");
    check(counts, gp_stack_sample(stack, 1, INT64_MAX, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, y, GP_F32) == GP_ERR_SHAPE,
          "sample row overflow");
    check(counts, gp_stack_sample(stack, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, NULL, GP_F32) == GP_ERR_NULL,
          "sample NULL output");
    check(counts, gp_stack_sample(stack, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, y, 5) == GP_ERR_ARGUMENT,
          "sample output dtype");
    check(counts, gp_stack_sample(incomplete, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, y, GP_F32) == GP_ERR_INCOMPLETE,
          "sample incomplete");
    check(counts, gp_stack_sample(NULL, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, y, GP_F32) == GP_ERR_NULL,
          "sample NULL stack");
    check(counts, gp_stack_sample(stack, 1, 0, 0, GP_LATENT_NORMAL, 1.0f, 0.0f, NULL, GP_U8) == GP_OK,
          "sample batch 0");
#ifndef GP_AVX512_SIMDE /* the emulated build leaves fma_ceiling.c out: its AVX-512 loop is real AVX-512 */
    double gflops = -1.0;
    check(counts, gp_fma_ceiling(GP_ISA_AUTO, 2, 0.01, &gflops) == GP_OK && gflops > 0.0, "fma ceiling");
    check(counts, gp_fma_ceiling(GP_ISA_PORTABLE, 1, 0.01, &gflops) == GP_OK && gflops > 0.0,
          "fma ceiling portable");
    check(counts, gp_fma_ceiling(GP_ISA_AUTO, -1, 0.01, &gflops) == GP_ERR_SHAPE, "fma ceiling threads");
    check(counts, gp_fma_ceiling(GP_ISA_AUTO, 1, 100.0, &gflops) == GP_ERR_SHAPE, "fma ceiling seconds");
    check(counts, gp_fma_ceiling(GP_ISA_AUTO, 1, 0.01, NULL) == GP_ERR_NULL, "fma ceiling NULL");
    check(counts, gp_fma_ceiling(9, 1, 0.01, &gflops) == GP_ERR_UNSUPPORTED_ISA, "fma ceiling ISA");
#endif
    check(counts, strcmp(gp_status_message(GP_ERR_ARGUMENT), "unknown status") != 0, "GP_ERR_ARGUMENT message");
    check(counts, strcmp(gp_status_message(GP_ERR_INPUT), "unknown status") != 0, "GP_ERR_INPUT message");
    gp_stack_free(stack);
    gp_stack_free(incomplete);
}

/* ---------------------------------------------------------------- threaded stacks */

/* A threaded stack gives exactly the single-threaded results: every batch size (row splits,
   uneven ones, fewer rows than threads), batch 1 and 3 both with the workers asleep (run alone,
   wake them) and awake (split by output panels), a stack whose last layer is too narrow to
   split, and a run after the workers have gone back to sleep. */
static void test_threaded(test_counts *counts, rng *g) {
    static const int BATCHES[] = {1, 1, 1, 3, 3, 4, 7, 8, 9, 17, 64, 150, 513};
    const int n_batches = (int)(sizeof BATCHES / sizeof BATCHES[0]);
    const int max_batch = 513;
    static const int SHAPES[3][4] = {{100, 128, 784, 0}, {784, 128, 1, 0}, {37, 300, 45, 1024}};
    static const int N_LAYERS[3] = {2, 2, 3};
    for (int shape = 0; shape < 3; shape++) {
        const int n_layers = N_LAYERS[shape];
        const int *widths = SHAPES[shape];
        float *weights[3], *biases[3];
        act_config acts[3];
        for (int l = 0; l < n_layers; l++) {
            const float limit = 1.0f / sqrtf((float)widths[l]);
            weights[l] = random_floats(g, (size_t)widths[l + 1] * (size_t)widths[l], -limit, limit);
            biases[l] = random_floats(g, (size_t)widths[l + 1], -limit, limit);
            acts[l] = l == n_layers - 1 ? ACTS[5] : ACTS[3];
        }
        const size_t n_in = (size_t)max_batch * (size_t)widths[0];
        const size_t n_out = (size_t)max_batch * (size_t)widths[n_layers];
        float *x = random_floats(g, n_in, -2.0f, 2.0f);
        float *want = malloc(n_out * sizeof(float)), *got = malloc((n_out + 16) * sizeof(float));
        if (want == NULL || got == NULL) exit(1);
        for (int isa = 0; isa < N_ISAS; isa++) {
            gp_stack *single = make_stack(counts, n_layers, widths, isa, weights, biases, acts);
            if (single == NULL) continue;
            for (int n_threads = 2; n_threads <= (quick ? 2 : 3); n_threads++) {
                gp_stack *threaded = NULL;
                check(counts, gp_stack_create_threads(n_layers, widths, isa, n_threads,
                                                      &threaded) == GP_OK, "create_threads");
                if (threaded == NULL) continue;
                for (int l = 0; l < n_layers; l++) {
                    gp_stack_set_layer(threaded, l, weights[l], biases[l], acts[l].activation,
                                       acts[l].alpha);
                }
                int mismatches = 0, canaries = 1;
                for (int pass = 0; pass < 2; pass++) {
                    if (pass == 1) { /* let the workers fall asleep (they spin ~100 us) */
                        const struct timespec pause = {0, 20 * 1000 * 1000};
                        nanosleep(&pause, NULL);
                    }
                    for (int b = 0; b < n_batches; b++) {
                        if (quick && b % 3) continue; /* batches 1, 3, 7, 17 and 513 */
                        const int batch = BATCHES[b];
                        const size_t n = (size_t)batch * (size_t)widths[n_layers];
                        for (size_t i = 0; i < n + 16; i++) got[i] = -12345.0f;
                        gp_stack_run(single, x, batch, want);
                        const gp_status status = gp_stack_run(threaded, x, batch, got);
                        mismatches += status != GP_OK ||
                                      memcmp(got, want, n * sizeof(float)) != 0;
                        for (size_t i = n; i < n + 16; i++) canaries &= got[i] == -12345.0f;
                    }
                }
                char what[160];
                snprintf(what, sizeof what,
                         "[%s] %d-%d-..-%d on %d threads == 1 thread bit for bit: %d mismatches, "
                         "canary %d", gp_isa_name(isa), widths[0], widths[1], widths[n_layers],
                         n_threads, mismatches, canaries);
                check(counts, mismatches == 0 && canaries, what);
                gp_stack_free(threaded);
            }
            gp_stack_free(single);
        }
        for (int l = 0; l < n_layers; l++) {
            free(weights[l]);
            free(biases[l]);
        }
        free(x);
        free(want);
        free(got);
    }
}

/* ---------------------------------------------------------------- class-conditional stacks */

/* One conditional network, [x, onehot(y)] -> layers, in the two forms the kernel can run it:
   `concat` (widths X + C, ...) reads the one-hot columns like any input; the conditional form
   (widths X, ...) has layer 0 set with W_x and the class-bias table W_y^T + b0. */
typedef struct {
    int n_layers, x_width, n_classes;
    int widths[3];        /* the conditional stack's: X, hidden..., out */
    int concat_widths[3]; /* X + C, hidden..., out */
    act_config acts[2];
    float *weights[2], *biases[2]; /* layer 0's weight is (widths[1], X + C), as exported */
    float *weight_x;               /* (widths[1], X): W_x, the first X columns */
    float *class_bias;             /* (C, widths[1]): W_y^T + b0 */
} conditional_net;

static conditional_net make_conditional(rng *g, int x_width, int n_classes, int hidden, int out,
                                        int last_activation) {
    conditional_net net = {0};
    net.n_layers = hidden ? 2 : 1;
    net.x_width = x_width;
    net.n_classes = n_classes;
    net.widths[0] = x_width;
    net.concat_widths[0] = x_width + n_classes;
    net.widths[1] = net.concat_widths[1] = hidden ? hidden : out;
    net.widths[2] = net.concat_widths[2] = out;
    for (int l = 0; l < net.n_layers; l++) {
        const int K = net.concat_widths[l], N = net.concat_widths[l + 1];
        const float limit = 1.5f / sqrtf((float)K);
        net.weights[l] = random_floats(g, (size_t)N * (size_t)K, -limit, limit);
        net.biases[l] = random_floats(g, (size_t)N, -limit, limit);
        const int last = l == net.n_layers - 1;
        net.acts[l] = last ? (act_config){last_activation, 0.0f, "last"} : ACTS[3];
    }
    const size_t N0 = (size_t)net.widths[1], K0 = (size_t)net.concat_widths[0];
    net.weight_x = malloc(N0 * (size_t)x_width * sizeof(float));
    net.class_bias = malloc((size_t)n_classes * N0 * sizeof(float));
    if (net.weight_x == NULL || net.class_bias == NULL) exit(1);
    for (size_t j = 0; j < N0; j++) {
        for (size_t k = 0; k < (size_t)x_width; k++) {
            net.weight_x[j * (size_t)x_width + k] = net.weights[0][j * K0 + k];
        }
        for (size_t c = 0; c < (size_t)n_classes; c++) {
            net.class_bias[c * N0 + j] = net.weights[0][j * K0 + (size_t)x_width + c] + net.biases[0][j];
        }
    }
    return net;
}

static void free_conditional(conditional_net *net) {
    for (int l = 0; l < net->n_layers; l++) {
        free(net->weights[l]);
        free(net->biases[l]);
    }
    free(net->weight_x);
    free(net->class_bias);
}

/* The conditional form on `isa` with n_threads; NULL if this CPU lacks the ISA. */
static gp_stack *conditional_stack(test_counts *counts, const conditional_net *net, int isa,
                                   int n_threads) {
    gp_stack *stack = NULL;
    const gp_status status = gp_stack_create_threads(net->n_layers, net->widths, isa, n_threads, &stack);
    if (status == GP_ERR_UNSUPPORTED_ISA) return NULL;
    int wrong = status != GP_OK;
    if (stack == NULL) {
        check(counts, 0, "create a conditional stack");
        return NULL;
    }
    /* the table first: it does not depend on layer 0 being set */
    wrong += gp_stack_set_class_bias(stack, net->n_classes, net->class_bias) != GP_OK;
    for (int l = 0; l < net->n_layers; l++) {
        wrong += gp_stack_set_layer(stack, l, l == 0 ? net->weight_x : net->weights[l], net->biases[l],
                                    net->acts[l].activation, net->acts[l].alpha) != GP_OK;
    }
    wrong += gp_stack_classes(stack) != net->n_classes;
    check(counts, wrong == 0, "build a conditional stack");
    return stack;
}

/* Labelled runs against the double reference on [x, onehot(y)] and against a plain stack run
   on those concatenated rows (within the kernel's tolerance: the sum starts from W_y[:, y] + b0
   instead of adding it last), on every ISA and 1 to 3 threads (bit for bit equal), float and
   uint8 in and out (bit for bit the float path), a row alone equal to its row in a batch, and
   gp_stack_sample_labels equal to gp_latents + gp_stack_run_labels bit for bit. */
static void test_conditional(test_counts *counts, rng *g) {
    static const int SHAPES[5][5] = { /* x width, classes, hidden (0: one layer), out, activation */
        {100, 10, 128, 784, GP_ACT_TANH}, {784, 10, 128, 1, GP_ACT_SIGMOID},
        {13, 3, 20, 17, GP_ACT_TANH}, {5, 4, 0, 9, GP_ACT_IDENTITY}, {7, 1, 9, 33, GP_ACT_TANH}};
    static const int BATCHES[] = {0, 1, 3, 8, 9, 17, 70};
    const int n_batches = (int)(sizeof BATCHES / sizeof BATCHES[0]), max_batch = 70;
    const uint64_t seed = 0xFEEDFACE12345678ull;
    for (int shape = 0; shape < 5; shape++) {
        const int *s = SHAPES[shape];
        conditional_net net = make_conditional(g, s[0], s[1], s[2], s[3], s[4]);
        const int X = net.x_width, C = net.n_classes, K0 = X + C, O = net.widths[net.n_layers];
        const size_t n_out = (size_t)max_batch * (size_t)O;
        float *x = random_floats(g, (size_t)max_batch * (size_t)X, -1.0f, 1.0f);
        float *converted = malloc((size_t)max_batch * (size_t)X * sizeof(float));
        float *concat = malloc((size_t)max_batch * (size_t)K0 * sizeof(float));
        float *z = malloc((size_t)max_batch * (size_t)X * sizeof(float));
        unsigned char *pixels = malloc((size_t)max_batch * (size_t)X);
        int32_t labels[70], bad_labels[70];
        float *plain_out = malloc(n_out * sizeof(float)), *single = malloc(n_out * sizeof(float));
        float *got = malloc((n_out + 16) * sizeof(float)), *want = malloc(n_out * sizeof(float));
        unsigned char *got_u8 = malloc(n_out + 16);
        double *xd = calloc((size_t)max_batch * 1024, sizeof(double));
        double *yd = calloc((size_t)max_batch * 1024, sizeof(double));
        double *scale = calloc((size_t)max_batch * 1024, sizeof(double));
        if (converted == NULL || concat == NULL || z == NULL || pixels == NULL || plain_out == NULL ||
            single == NULL || got == NULL || want == NULL || got_u8 == NULL || xd == NULL || yd == NULL ||
            scale == NULL) {
            exit(1);
        }
        for (int r = 0; r < max_batch; r++) {
            labels[r] = r == 0 ? C - 1 : (r == 1 ? 0 : (int32_t)(rng_next(g) % (uint64_t)C));
            for (int k = 0; k < X; k++) {
                const size_t at = (size_t)r * (size_t)X + (size_t)k;
                pixels[at] = (unsigned char)(rng_next(g) & 255u);
                converted[at] = (float)pixels[at] / 127.5f - 1.0f;
                concat[(size_t)r * (size_t)K0 + (size_t)k] = x[at];
            }
            for (int c = 0; c < C; c++) concat[(size_t)r * (size_t)K0 + (size_t)(X + c)] = c == labels[r] ? 1.0f : 0.0f;
        }
        /* the reference: the exported network in double on the concatenated rows */
        for (size_t i = 0; i < (size_t)max_batch * (size_t)K0; i++) xd[i] = concat[i];
        for (int l = 0; l < net.n_layers; l++) {
            ref_layer(xd, max_batch, net.concat_widths[l], net.concat_widths[l + 1], net.weights[l],
                      net.biases[l], net.acts[l], yd, scale);
            double *swap = xd;
            xd = yd;
            yd = swap;
        }
        for (int isa = 0; isa < N_ISAS; isa++) {
            gp_stack *plain = make_stack(counts, net.n_layers, net.concat_widths, isa, net.weights,
                                         net.biases, net.acts);
            if (plain == NULL) continue;
            check(counts, gp_stack_run(plain, concat, max_batch, plain_out) == GP_OK, "plain run on one-hots");
            double worst = worst_ratio(plain_out, xd, scale, n_out), worst_plain = 0.0;
            int mismatches = 0, canaries = 1, untouched = 1;
            for (int n_threads = 1; n_threads <= (quick ? 2 : 3); n_threads++) {
                gp_stack *stack = conditional_stack(counts, &net, isa, n_threads);
                if (stack == NULL) continue;
                for (int b = 0; b < n_batches; b++) {
                    if (quick && b % 2) continue; /* batches 0, 3, 9 and 70 */
                    const int batch = BATCHES[b];
                    const size_t n = (size_t)batch * (size_t)O;
                    for (size_t i = 0; i < n + 16; i++) got[i] = -12345.0f;
                    mismatches += gp_stack_run_labels(stack, x, GP_F32, labels, batch, got, GP_F32) != GP_OK;
                    for (size_t i = n; i < n + 16; i++) canaries &= got[i] == -12345.0f;
                    const double ratio = worst_ratio(got, xd, scale, n);
                    if (ratio > worst) worst = ratio;
                    double *plain_d = yd; /* the plain stack's floats, as doubles */
                    for (size_t i = 0; i < n; i++) plain_d[i] = plain_out[i];
                    const double against_plain = worst_ratio(got, plain_d, scale, n);
                    if (against_plain > worst_plain) worst_plain = against_plain;
                    if (n_threads == 1 && batch == max_batch) memcpy(single, got, n * sizeof(float));
                    if (n_threads > 1 && batch == max_batch) mismatches += memcmp(got, single, n * sizeof(float)) != 0;
                    /* uint8 out: the mapping of the float out */
                    memset(got_u8, 0xA5, n + 16);
                    mismatches += gp_stack_run_labels(stack, x, GP_F32_IMAGE, labels, batch, got_u8, GP_U8) != GP_OK;
                    for (size_t i = 0; i < n; i++) mismatches += got_u8[i] != ref_u8(got[i]);
                    for (size_t i = n; i < n + 16; i++) canaries &= got_u8[i] == 0xA5;
                    /* uint8 in: the float run on u / 127.5f - 1 */
                    mismatches += gp_stack_run_labels(stack, converted, GP_F32, labels, batch, want, GP_F32) != GP_OK;
                    mismatches += gp_stack_run_labels(stack, pixels, GP_U8, labels, batch, got, GP_F32) != GP_OK;
                    mismatches += memcmp(got, want, n * sizeof(float)) != 0;
                    /* the in-C latents: gp_latents then the labelled run, bit for bit */
                    const int64_t first = 1000003LL * b;
                    mismatches += gp_latents(seed, first, batch, X, GP_LATENT_NORMAL, 1.0f, 0.0f, z) != GP_OK;
                    mismatches += gp_stack_run_labels(stack, z, GP_F32, labels, batch, want, GP_F32) != GP_OK;
                    for (size_t i = 0; i < n + 16; i++) got[i] = -12345.0f;
                    mismatches += gp_stack_sample_labels(stack, seed, first, batch, GP_LATENT_NORMAL, 1.0f, 0.0f,
                                                         labels, got, GP_F32) != GP_OK;
                    mismatches += memcmp(got, want, n * sizeof(float)) != 0;
                    for (size_t i = n; i < n + 16; i++) canaries &= got[i] == -12345.0f;
                    memset(got_u8, 0xA5, n + 16);
                    mismatches += gp_stack_sample_labels(stack, seed, first, batch, GP_LATENT_NORMAL, 1.0f, 0.0f,
                                                         labels, got_u8, GP_U8) != GP_OK;
                    for (size_t i = 0; i < n; i++) mismatches += got_u8[i] != ref_u8(want[i]);
                    for (size_t i = n; i < n + 16; i++) canaries &= got_u8[i] == 0xA5;
                    /* one label out of range, the last: refused before anything is written */
                    if (batch == 0) continue;
                    memcpy(bad_labels, labels, sizeof labels);
                    static const int32_t OUT_OF_RANGE[3] = {-1, INT32_MIN, 0}; /* 0: set to C below */
                    for (int o = 0; o < 3; o++) {
                        bad_labels[batch - 1] = o == 2 ? C : OUT_OF_RANGE[o];
                        for (size_t i = 0; i < n; i++) got[i] = -12345.0f;
                        mismatches += gp_stack_run_labels(stack, x, GP_F32, bad_labels, batch, got, GP_F32) !=
                                      GP_ERR_INPUT;
                        mismatches += gp_stack_sample_labels(stack, seed, 0, batch, GP_LATENT_NORMAL, 1.0f, 0.0f,
                                                             bad_labels, got, GP_F32) != GP_ERR_INPUT;
                        for (size_t i = 0; i < n; i++) untouched &= got[i] == -12345.0f;
                    }
                }
                /* a row alone is its row of the batch, bit for bit */
                if (n_threads == 1) {
                    for (int r = 0; r < 17; r += 4) {
                        mismatches += gp_stack_run_labels(stack, x + (size_t)r * (size_t)X, GP_F32, labels + r, 1,
                                                          got, GP_F32) != GP_OK;
                        mismatches += memcmp(got, single + (size_t)r * (size_t)O, (size_t)O * sizeof(float)) != 0;
                    }
                }
                gp_stack_free(stack);
            }
            char what[200];
            snprintf(what, sizeof what,
                     "[%s] conditional %d+%d-..-%d: error/tolerance %.3g (the one-hot stack %.3g apart), "
                     "%d mismatches, canary %d, refused labels wrote nothing %d",
                     gp_isa_name(isa), X, C, O, worst, worst_plain, mismatches, canaries, untouched);
            printf("%s\n", what);
            check(counts, worst <= 1.0 && worst_plain <= 1.0 && mismatches == 0 && canaries && untouched, what);
            gp_stack_free(plain);
        }
        free_conditional(&net);
        free(x);
        free(converted);
        free(concat);
        free(z);
        free(pixels);
        free(plain_out);
        free(single);
        free(got);
        free(want);
        free(got_u8);
        free(xd);
        free(yd);
        free(scale);
    }
}

/* The status of every bad argument of the class-bias entry points; the table is kept when layer
   0 is replaced, replaced when set again, and used only by labelled runs. */
static void test_conditional_api(test_counts *counts, rng *g) {
    conditional_net net = make_conditional(g, 4, 2, 3, 2, GP_ACT_TANH);
    gp_stack *stack = NULL, *no_table = NULL, *incomplete = NULL;
    gp_stack_create(2, net.widths, GP_ISA_AUTO, &stack);
    float x[8] = {0.5f, -0.25f, 1.0f, 0.0f, -1.0f, 0.75f, 0.1f, 0.2f}, y[4] = {0}, again[4] = {0};
    const int32_t labels[2] = {1, 0};
    check(counts, gp_stack_set_class_bias(NULL, 2, net.class_bias) == GP_ERR_NULL, "class bias NULL stack");
    check(counts, gp_stack_set_class_bias(stack, 2, NULL) == GP_ERR_NULL, "class bias NULL table");
    check(counts, gp_stack_set_class_bias(stack, 0, net.class_bias) == GP_ERR_SHAPE, "0 classes");
    check(counts, gp_stack_set_class_bias(stack, -1, net.class_bias) == GP_ERR_SHAPE, "-1 classes");
    check(counts, gp_stack_set_class_bias(stack, 65537, net.class_bias) == GP_ERR_SHAPE, "65537 classes");
    check(counts, gp_stack_classes(NULL) == -1 && gp_stack_classes(stack) == 0, "gp_stack_classes before");
    check(counts, gp_stack_set_class_bias(stack, 2, net.class_bias) == GP_OK && gp_stack_classes(stack) == 2,
          "set class bias");
    check(counts, gp_stack_run_labels(stack, x, GP_F32, labels, 2, y, GP_F32) == GP_ERR_INCOMPLETE,
          "labelled run before the layers");
    gp_stack_set_layer(stack, 0, net.weight_x, net.biases[0], GP_ACT_LEAKY_RELU, 0.2f);
    gp_stack_set_layer(stack, 1, net.weights[1], net.biases[1], GP_ACT_TANH, 0.0f);
    check(counts, gp_stack_run_labels(stack, x, GP_F32, labels, 2, y, GP_F32) == GP_OK, "labelled run");
    check(counts, gp_stack_run_labels(stack, x, GP_F32, NULL, 2, y, GP_F32) == GP_ERR_NULL, "labels NULL");
    check(counts, gp_stack_run_labels(stack, NULL, GP_F32, labels, 2, y, GP_F32) == GP_ERR_NULL, "input NULL");
    check(counts, gp_stack_run_labels(stack, x, GP_F32, labels, 2, NULL, GP_F32) == GP_ERR_NULL, "output NULL");
    check(counts, gp_stack_run_labels(stack, NULL, GP_F32, NULL, 0, NULL, GP_U8) == GP_OK, "labelled batch 0");
    check(counts, gp_stack_run_labels(stack, x, GP_F32, labels, -1, y, GP_F32) == GP_ERR_SHAPE, "labelled batch -1");
    check(counts, gp_stack_run_labels(stack, x, 7, labels, 2, y, GP_F32) == GP_ERR_ARGUMENT, "labelled input dtype");
    check(counts, gp_stack_run_labels(stack, x, GP_F32, labels, 2, y, 2) == GP_ERR_ARGUMENT, "labelled output dtype");
    check(counts, gp_stack_run_labels(NULL, x, GP_F32, labels, 2, y, GP_F32) == GP_ERR_NULL, "labelled NULL stack");
    check(counts, gp_stack_sample_labels(stack, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, NULL, y, GP_F32) ==
                      GP_ERR_NULL, "sample labels NULL");
    check(counts, gp_stack_sample_labels(stack, 1, -1, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, labels, y, GP_F32) ==
                      GP_ERR_SHAPE, "sample labels first_row -1");
    check(counts, gp_stack_sample_labels(stack, 1, 0, 2, 2, 1.0f, 0.0f, labels, y, GP_F32) == GP_ERR_ARGUMENT,
          "sample labels distribution");
    check(counts, gp_stack_sample_labels(stack, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, labels, NULL, GP_F32) ==
                      GP_ERR_NULL, "sample labels NULL output");
    check(counts, gp_stack_sample_labels(stack, 1, 0, 0, GP_LATENT_NORMAL, 1.0f, 0.0f, NULL, NULL, GP_U8) == GP_OK,
          "sample labels batch 0");
    check(counts, gp_stack_sample_labels(NULL, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, labels, y, GP_F32) ==
                      GP_ERR_NULL, "sample labels NULL stack");
    /* no table: labelled runs are incomplete, unlabelled ones fine */
    gp_stack_create(2, net.widths, GP_ISA_AUTO, &no_table);
    gp_stack_set_layer(no_table, 0, net.weight_x, net.biases[0], GP_ACT_LEAKY_RELU, 0.2f);
    gp_stack_set_layer(no_table, 1, net.weights[1], net.biases[1], GP_ACT_TANH, 0.0f);
    check(counts, gp_stack_run_labels(no_table, x, GP_F32, labels, 2, y, GP_F32) == GP_ERR_INCOMPLETE,
          "labelled run without a table");
    check(counts, gp_stack_run_labels(no_table, NULL, GP_F32, NULL, 0, NULL, GP_F32) == GP_ERR_INCOMPLETE,
          "labelled batch 0 without a table");
    check(counts, gp_stack_sample_labels(no_table, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, labels, y, GP_F32) ==
                      GP_ERR_INCOMPLETE, "labelled sample without a table");
    /* an unlabelled run of a stack with a table uses layer 0's own bias */
    check(counts, gp_stack_run(no_table, x, 2, y) == GP_OK && gp_stack_run(stack, x, 2, again) == GP_OK &&
                      memcmp(y, again, sizeof y) == 0, "unlabelled runs ignore the table");
    /* replacing layer 0 keeps the table; setting the table again replaces it */
    gp_stack_run_labels(stack, x, GP_F32, labels, 2, y, GP_F32);
    gp_stack_set_layer(stack, 0, net.weight_x, net.biases[0], GP_ACT_LEAKY_RELU, 0.2f);
    check(counts, gp_stack_run_labels(stack, x, GP_F32, labels, 2, again, GP_F32) == GP_OK &&
                      memcmp(y, again, sizeof y) == 0, "the table outlives a replaced layer 0");
    const int32_t swapped[2] = {0, 1};
    float table_swapped[6];
    memcpy(table_swapped, net.class_bias + 3, 3 * sizeof(float));
    memcpy(table_swapped + 3, net.class_bias, 3 * sizeof(float));
    check(counts, gp_stack_set_class_bias(stack, 2, table_swapped) == GP_OK, "replace the table");
    check(counts, gp_stack_run_labels(stack, x, GP_F32, swapped, 2, again, GP_F32) == GP_OK &&
                      memcmp(y, again, sizeof y) == 0, "the replaced table takes effect");
    gp_stack_create(2, net.widths, GP_ISA_AUTO, &incomplete);
    gp_stack_set_class_bias(incomplete, 2, net.class_bias);
    check(counts, gp_stack_sample_labels(incomplete, 1, 0, 2, GP_LATENT_NORMAL, 1.0f, 0.0f, labels, y, GP_F32) ==
                      GP_ERR_INCOMPLETE, "labelled sample before the layers");
    check(counts, strcmp(gp_status_message(GP_ERR_INPUT), gp_status_message(GP_ERR_INCOMPLETE)) != 0,
          "distinct messages");
    gp_stack_free(stack);
    gp_stack_free(no_table);
    gp_stack_free(incomplete);
    free_conditional(&net);
}

/* The ISA rule: a CPU without AVX2 (or without FMA) gets the portable path, and AUTO follows
   the rule. Built without the x86 paths (ARM64, -DGP_PORTABLE_ONLY), every CPU gets portable
   and the x86 ISAs are refused. */
static void test_dispatch(test_counts *counts) {
#ifdef GP_HAVE_X86 /* gp_isa.h's own condition for building the x86 paths */
    const int x86 = 1;
#else
    const int x86 = 0;
#endif
    check(counts, gp_isa_for_features(0, 0, 0) == GP_ISA_PORTABLE, "no AVX2: portable");
    check(counts, gp_isa_for_features(0, 1, 0) == GP_ISA_PORTABLE, "AVX2 without FMA: portable");
    check(counts, gp_isa_for_features(0, 0, 1) == GP_ISA_PORTABLE, "FMA without AVX2: portable");
    check(counts, gp_isa_for_features(0, 1, 1) == (x86 ? GP_ISA_AVX2_FMA : GP_ISA_PORTABLE),
          "AVX2 + FMA");
    check(counts, gp_isa_for_features(1, 1, 1) == (x86 ? GP_ISA_AVX512 : GP_ISA_PORTABLE),
          "AVX-512");
    check(counts, gp_isa_supported(GP_ISA_PORTABLE), "portable runs everywhere");
    if (!x86) {
        check(counts, gp_best_isa() == GP_ISA_PORTABLE, "portable-only build: best is portable");
        gp_stack *stack = NULL;
        const int widths[2] = {3, 2};
        check(counts, gp_stack_create(1, widths, GP_ISA_AVX2_FMA, &stack) == GP_ERR_UNSUPPORTED_ISA &&
                          gp_stack_create(1, widths, GP_ISA_AVX512, &stack) == GP_ERR_UNSUPPORTED_ISA &&
                          stack == NULL,
              "portable-only build: x86 ISAs refused");
    }
#ifdef GP_AVX512_SIMDE
    /* make test-avx512-emulated: SIMDe runs the AVX-512 path on AVX2 + FMA, and the dispatch
       treats those as AVX-512, so this CPU must get avx512 (the suite exists to run that path). */
    const int emulated = 1;
    const int has_avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    check(counts, gp_isa_supported(GP_ISA_AVX512) == has_avx2_fma &&
                      gp_best_isa() == (has_avx2_fma ? GP_ISA_AVX512 : GP_ISA_PORTABLE),
          "emulated build: AVX2 + FMA run the avx512 path, and AUTO picks it");
#else
    const int emulated = 0;
#endif
    printf("dispatch: %s build%s, this CPU gets %s\n", x86 ? "x86 SIMD" : "portable-only",
           emulated ? " (AVX-512 emulated by SIMDe)" : "", gp_isa_name(gp_best_isa()));
}

/* gp_latents against values of the numpy reference (runtime/ganpack/latents.py), bit for bit:
   draw_numpy(0x0123456789ABCDEF, 2**33 + 5, 2, 37, distribution, 1.0, 0.0) viewed as uint32, at
   flat indices 0, 1, 9, 10, 36, 37, 50, 73. The other tests compare the paths with each other;
   this pins whichever path this machine runs (the only one on ARM64) to the reference. */
static void test_latent_known_answers(test_counts *counts) {
    static const int AT[8] = {0, 1, 9, 10, 36, 37, 50, 73};
    static const uint32_t WANT[2][8] = {
        {0xbfd69558u, 0x3ec7297cu, 0xbe07febfu, 0xbeb57b5cu, 0xbf924843u, 0xbef71d0fu, 0xbd54db21u, 0xbf9b3c26u},
        {0x3e6be844u, 0x3f565247u, 0x3f782996u, 0x3f087d57u, 0x3f5a1768u, 0x3f6209a7u, 0x3f5f2ee5u, 0x3f3379e8u},
    };
    for (int dist = 0; dist < 2; dist++) {
        float z[2 * 37];
        int mismatches = gp_latents(0x0123456789ABCDEFull, ((int64_t)1 << 33) + 5, 2, 37, dist, 1.0f,
                                    0.0f, z) != GP_OK;
        for (int i = 0; i < 8; i++) {
            uint32_t bits;
            memcpy(&bits, &z[AT[i]], sizeof bits);
            mismatches += bits != WANT[dist][i];
        }
        char what[96];
        snprintf(what, sizeof what, "latents known answers (%s, %s path): %d mismatches",
                 dist == GP_LATENT_NORMAL ? "normal" : "uniform",
                 gp_isa_has_avx2(gp_best_isa()) ? "avx2" : "portable", mismatches);
        check(counts, mismatches == 0, what);
    }
}

/* ---------------------------------------------------------------- bf16 weights */

/* w rounded to 8 significant bits, ties to even, in double (frexp and nearbyint, not the
   kernel's bit arithmetic): the reference of gp_bf16_round for finite, normal weights. */
static float ref_bf16(float w) {
    int exponent;
    const double mantissa = frexp((double)w, &exponent); /* w = mantissa 2^exponent, |m| in [0.5, 1) */
    return (float)ldexp(nearbyint(ldexp(mantissa, 8)), exponent - 8);
}

static float from_bf16_bits(uint16_t bits) {
    const uint32_t wide = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &wide, sizeof value);
    return value;
}

static float float_of_bits(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* gp_bf16_round on values whose rounding is known: ties both ways, the carry into the exponent,
   overflow to infinity, infinities, NaN, subnormals and signs. */
static void test_bf16_rounding(test_counts *counts) {
    static const struct { uint32_t in; uint16_t want; } CASES[] = {
        {0x3F800000u, 0x3F80u}, /* 1 */
        {0x3F808000u, 0x3F80u}, /* 1 + 2^-8: a tie, to the even 1 */
        {0x3F818000u, 0x3F82u}, /* 1 + 3 2^-8: a tie, to the even 1 + 2^-6 */
        {0x3F808001u, 0x3F81u}, /* just above a tie: up */
        {0x3F807FFFu, 0x3F80u}, /* just below: down */
        {0x3FFF8000u, 0x4000u}, /* carries into the exponent: 2 */
        {0xC0000000u, 0xC000u}, /* -2 */
        {0x7F7FFFFFu, 0x7F80u}, /* FLT_MAX: beyond bf16's largest, infinity */
        {0x7F7F7FFFu, 0x7F7Fu}, /* bf16's largest stays */
        {0x7F800000u, 0x7F80u}, /* inf */
        {0xFF800000u, 0xFF80u}, /* -inf */
        {0x00000001u, 0x0000u}, /* the smallest subnormal: to zero */
        {0x00018000u, 0x0002u}, /* a subnormal tie, to even */
        {0x80000000u, 0x8000u}, /* -0 */
    };
    int mismatches = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        mismatches += gp_bf16_round(float_of_bits(CASES[i].in)) != CASES[i].want;
    }
    const uint16_t nan = gp_bf16_round(float_of_bits(0x7F800001u)); /* a signalling NaN */
    mismatches += !isnan(from_bf16_bits(nan));
    rng g = {7u};
    for (int i = 0; i < (quick ? 10000 : 100000); i++) {
        const float w = rng_uniform(&g, -4.0f, 4.0f) * ldexpf(1.0f, (int)(rng_next(&g) % 60) - 30);
        mismatches += from_bf16_bits(gp_bf16_round(w)) != ref_bf16(w);
    }
    char what[96];
    snprintf(what, sizeof what, "bf16 rounding: %d mismatches of %zu known answers and %d random",
             mismatches, sizeof CASES / sizeof CASES[0] + 1, quick ? 10000 : 100000);
    check(counts, mismatches == 0, what);
}

/* A bf16 stack computes exactly what a float32 stack with the weights rounded to bf16 computes:
   set_layer rounds them and packs them as float32, and the hot loops are the float32 ones. So on
   every ISA, with thread splits by panels (batch 1) and by rows, uint8 outputs, labels and
   samples, bf16 with 3 threads equals float32 with rounded weights on 1 thread, bit for bit; and
   that float32 stack is checked against the double reference elsewhere. */
static void test_bf16_stacks(test_counts *counts, rng *g) {
    static const int SHAPES[2][3] = {{100, 128, 784}, {13, 20, 17}};
    static const int BATCHES[] = {1, 3, 70};
    int cases = 0, differing = 0;
    for (int shape = 0; shape < 2; shape++) {
        const int *widths = SHAPES[shape];
        const int n_classes = 3, max_batch = 70;
        float *weights[2], *rounded[2], *biases[2];
        for (int l = 0; l < 2; l++) {
            const size_t count = (size_t)widths[l + 1] * (size_t)widths[l];
            const float limit = 1.5f / sqrtf((float)widths[l]);
            weights[l] = random_floats(g, count, -limit, limit);
            biases[l] = random_floats(g, (size_t)widths[l + 1], -limit, limit);
            rounded[l] = malloc(count * sizeof(float));
            if (rounded[l] == NULL) exit(1);
            for (size_t i = 0; i < count; i++) rounded[l][i] = ref_bf16(weights[l][i]);
        }
        float *table = random_floats(g, (size_t)n_classes * (size_t)widths[1], -1.0f, 1.0f);
        float *x = random_floats(g, (size_t)max_batch * (size_t)widths[0], -1.0f, 1.0f);
        int32_t labels[70];
        for (int i = 0; i < max_batch; i++) labels[i] = (int32_t)(rng_next(g) % (uint64_t)n_classes);
        const size_t n_out = (size_t)max_batch * (size_t)widths[2];
        float *want = malloc(n_out * sizeof(float)), *got = malloc(n_out * sizeof(float));
        unsigned char *want_u8 = malloc(n_out), *got_u8 = malloc(n_out);
        if (want == NULL || got == NULL || want_u8 == NULL || got_u8 == NULL) exit(1);
        for (int isa = 0; isa < N_ISAS; isa++) {
            gp_stack *bf16 = NULL, *f32 = NULL;
            if (gp_stack_create_threads(2, widths, isa, 3, &bf16) != GP_OK) continue;
            check(counts, gp_stack_create(2, widths, isa, &f32) == GP_OK, "bf16: create");
            int ok = 1;
            for (int l = 0; l < 2; l++) {
                const int act = l == 0 ? GP_ACT_LEAKY_RELU : GP_ACT_TANH;
                const float alpha = l == 0 ? 0.01f : 0.0f;
                ok &= gp_stack_set_layer_precision(bf16, l, weights[l], biases[l], act, alpha,
                                                   GP_PRECISION_BF16) == GP_OK;
                ok &= gp_stack_set_layer(f32, l, rounded[l], biases[l], act, alpha) == GP_OK;
            }
            ok &= gp_stack_set_class_bias(bf16, n_classes, table) == GP_OK;
            ok &= gp_stack_set_class_bias(f32, n_classes, table) == GP_OK;
            ok &= gp_stack_layer_precision(bf16, 1) == GP_PRECISION_BF16 &&
                  gp_stack_layer_precision(f32, 1) == GP_PRECISION_F32;
            check(counts, ok, "bf16: set layers");
            for (int b = 0; b < (int)(sizeof BATCHES / sizeof BATCHES[0]); b++) {
                const int batch = BATCHES[b];
                const size_t n = (size_t)batch * (size_t)widths[2];
                for (int round = 0; round < 2; round++) { /* round 1 finds the workers awake */
                    ok = gp_stack_run(f32, x, batch, want) == GP_OK && gp_stack_run(bf16, x, batch, got) == GP_OK;
                    int same = ok && memcmp(want, got, n * sizeof(float)) == 0;
                    ok = gp_stack_run_labels(f32, x, GP_F32, labels, batch, want_u8, GP_U8) == GP_OK &&
                         gp_stack_run_labels(bf16, x, GP_F32, labels, batch, got_u8, GP_U8) == GP_OK;
                    same &= ok && memcmp(want_u8, got_u8, n) == 0;
                    ok = gp_stack_sample(f32, 9, 4, batch, GP_LATENT_NORMAL, 1.0f, 0.0f, want, GP_F32) == GP_OK &&
                         gp_stack_sample(bf16, 9, 4, batch, GP_LATENT_NORMAL, 1.0f, 0.0f, got, GP_F32) == GP_OK;
                    same &= ok && memcmp(want, got, n * sizeof(float)) == 0;
                    char what[128];
                    snprintf(what, sizeof what, "bf16 %d-%d-%d [%s] batch %d: equal to float32 with rounded weights",
                             widths[0], widths[1], widths[2], gp_isa_name(isa), batch);
                    check(counts, same, what);
                    differing += !same;
                    cases++;
                }
            }
            gp_stack_free(bf16);
            gp_stack_free(f32);
        }
        for (int l = 0; l < 2; l++) {
            free(weights[l]);
            free(rounded[l]);
            free(biases[l]);
        }
        free(table);
        free(x);
        free(want);
        free(got);
        free(want_u8);
        free(got_u8);
    }
    printf("bf16 stacks: %d cases x ISAs, %d differing from float32 with rounded weights\n", cases,
           differing);
}

/* gp_stack_set_layer_precision's and gp_stack_layer_precision's contract. */
static void test_bf16_api(test_counts *counts) {
    const int widths[2] = {3, 2};
    const float weight[6] = {1, 2, 3, 4, 5, 6}, bias[2] = {0, 0};
    gp_stack *stack = NULL;
    check(counts, gp_stack_create(1, widths, GP_ISA_AUTO, &stack) == GP_OK, "bf16 api: create");
    check(counts, gp_stack_layer_precision(stack, 0) == -1, "bf16 api: -1 before the layer is set");
    check(counts, gp_stack_set_layer_precision(stack, 0, weight, bias, GP_ACT_IDENTITY, 0.0f, 2) ==
                      GP_ERR_ARGUMENT &&
                  gp_stack_set_layer_precision(stack, 0, weight, bias, GP_ACT_IDENTITY, 0.0f, -1) ==
                      GP_ERR_ARGUMENT,
          "bf16 api: unknown precision refused");
    check(counts, gp_stack_set_layer_precision(stack, 0, NULL, bias, GP_ACT_IDENTITY, 0.0f,
                                               GP_PRECISION_BF16) == GP_ERR_NULL,
          "bf16 api: NULL weight");
    check(counts, gp_stack_set_layer_precision(stack, 1, weight, bias, GP_ACT_IDENTITY, 0.0f,
                                               GP_PRECISION_BF16) == GP_ERR_SHAPE,
          "bf16 api: layer out of range");
    check(counts, gp_stack_set_layer_precision(stack, 0, weight, bias, GP_ACT_IDENTITY, 0.0f,
                                               GP_PRECISION_BF16) == GP_OK &&
                  gp_stack_layer_precision(stack, 0) == GP_PRECISION_BF16,
          "bf16 api: set and read back");
    const float x[3] = {1.0f, 0.5f, 0.25f};
    float y[2];
    check(counts, gp_stack_run(stack, x, 1, y) == GP_OK && y[0] == 2.75f && y[1] == 8.0f,
          "bf16 api: small integers are exact in bf16");
    check(counts, gp_stack_set_layer(stack, 0, weight, bias, GP_ACT_IDENTITY, 0.0f) == GP_OK &&
                  gp_stack_layer_precision(stack, 0) == GP_PRECISION_F32,
          "bf16 api: replaced by a float32 layer");
    check(counts, gp_stack_layer_precision(NULL, 0) == -1 && gp_stack_layer_precision(stack, 1) == -1 &&
                  gp_stack_layer_precision(stack, -1) == -1,
          "bf16 api: NULL and out-of-range layers give -1");
    gp_stack_free(stack);
}

int main(void) {
    test_counts counts = {0, 0};
    rng g = {20240611u};
    const char *quick_env = getenv("GP_TEST_QUICK");
    quick = quick_env != NULL && strcmp(quick_env, "1") == 0;
    if (quick) printf("quick mode: trimmed grids\n");
    setvbuf(stdout, NULL, _IOLBF, 0); /* line by line, so a slow runner shows where it is */
    printf("best ISA on this CPU: %s\n", gp_isa_name(gp_best_isa()));
    test_dispatch(&counts);
    test_latent_known_answers(&counts);
    test_api_errors(&counts);
    test_api_semantics(&counts, &g);
    test_activation_sweep(&counts);
    test_single_layers(&counts, &g);
    test_stacks(&counts, &g);
    test_threads(&counts, &g, 1);
    test_threads(&counts, &g, 2);
    test_threaded(&counts, &g);
    test_typed_io(&counts, &g);
    test_sample(&counts, &g);
    test_checked_input(&counts, &g);
    test_new_api_errors(&counts, &g);
    test_conditional(&counts, &g);
    test_conditional_api(&counts, &g);
    test_bf16_rounding(&counts);
    test_bf16_stacks(&counts, &g);
    test_bf16_api(&counts);
    printf("%d passed, %d failed\n", counts.passed, counts.failed);
    return counts.failed == 0 ? 0 : 1;
}
