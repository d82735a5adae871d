/* bench.c: rough timing of the generator-shaped stack 100 -> 128 (leaky_relu 0.01) -> 784 (tanh)
 * through the public API: every ISA this CPU supports, 1 thread and 2 threads
 * (gp_stack_create_threads), batches 1, 8, 64, 512, 4096. Not rigorous: the best of a few
 * repeats of clock_gettime around a loop of back-to-back runs (so a threaded stack's worker is
 * awake, as in a serving loop). `bench N` limits it to the first N ISAs from the best down.
 * Each stack runs with float32 weights, then bf16 (gp_stack_set_layer_precision); `bench N f32`
 * or `bench N bf16` runs one of the two.
 * Each ISA's rows end with the % of that ISA's own ceiling on as many threads (gp_fma_ceiling:
 * register-only FMA chains; for the portable path, the baseline vectors plain C compiles to).
 */
#define _POSIX_C_SOURCE 200809L
#include "ganpack_kernel.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_BATCH 4096

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *filled(size_t count, float scale) {
    float *values = malloc(count * sizeof(float));
    if (values == NULL) exit(1);
    for (size_t i = 0; i < count; i++) { /* deterministic, spread over [-scale, scale] */
        values[i] = scale * (float)((int)(i * 7919 % 2001) - 1000) / 1000.0f;
    }
    return values;
}

/* Seconds per run of `stack` at `batch`: best of 5 loops of about 20 ms each. */
static double time_run(const gp_stack *stack, const float *input /* (batch, 100) */, int batch,
                       float *output /* (batch, 784) */) {
    const double flops = 2.0 * (100.0 * 128.0 + 128.0 * 784.0) * batch;
    int runs = (int)(20e-3 * 50e9 / flops); /* ~20 ms at 50 GFLOP/s */
    if (runs < 3) runs = 3;
    double best = 1e30;
    for (int repeat = 0; repeat < 6; repeat++) {
        const double start = now_seconds();
        for (int run = 0; run < runs; run++) gp_stack_run(stack, input, batch, output);
        const double per_run = (now_seconds() - start) / runs;
        if (repeat > 0 && per_run < best) best = per_run; /* repeat 0 warms up */
    }
    return best;
}

int main(int argc, char **argv) {
    const int max_isas = argc > 1 ? atoi(argv[1]) : 3;
    const int only = argc > 2 ? (argv[2][0] == 'b' ? GP_PRECISION_BF16 : GP_PRECISION_F32) : -1;
    const int widths[3] = {100, 128, 784};
    const double flops_per_row = 2.0 * (100.0 * 128.0 + 128.0 * 784.0);
    float *w0 = filled(128 * 100, 0.1f), *b0 = filled(128, 0.1f);
    float *w1 = filled(784 * 128, 0.09f), *b1 = filled(784, 0.1f);
    float *input = filled((size_t)MAX_BATCH * 100, 2.0f);
    float *output = filled((size_t)MAX_BATCH * 784, 0.0f);
    static const int BATCHES[] = {1, 8, 64, 512, 4096};
    printf("generator 100-128-784: us per run, us per row, M rows/s, GFLOP/s, %% of the ISA's ceiling\n");
    int isas_done = 0;
    for (int isa = GP_ISA_AVX512; isa >= GP_ISA_PORTABLE && isas_done < max_isas; isa--) {
        for (int threads = 1; threads <= 2; threads++) {
            gp_stack *stack = NULL;
            if (gp_stack_create_threads(2, widths, isa, threads, &stack) != GP_OK) break;
            double ceiling = 0.0;
            for (int repeat = 0; repeat < 3; repeat++) { /* the best of 3: others can only lower it */
                double gflops = 0.0;
                if (gp_fma_ceiling(isa, threads, 0.2, &gflops) == GP_OK && gflops > ceiling) ceiling = gflops;
            }
            printf("%-9s ceiling on %d thread%s: %.1f GFLOP/s\n", gp_isa_name(isa), threads,
                   threads == 1 ? "" : "s", ceiling);
            for (int precision = GP_PRECISION_F32; precision <= GP_PRECISION_BF16; precision++) {
                if (only >= 0 && precision != only) continue;
                const char *name = precision == GP_PRECISION_BF16 ? "bf16" : "f32";
                gp_stack_set_layer_precision(stack, 0, w0, b0, GP_ACT_LEAKY_RELU, 0.01f, precision);
                gp_stack_set_layer_precision(stack, 1, w1, b1, GP_ACT_TANH, 0.0f, precision);
                for (int b = 0; b < (int)(sizeof BATCHES / sizeof BATCHES[0]); b++) {
                    const int batch = BATCHES[b];
                    const double best = time_run(stack, input, batch, output);
                    const double gflops = flops_per_row * batch / best * 1e-9;
                    printf("%-9s %-4s %d thread%s batch %4d: %9.1f us  %6.2f us/row  %5.3f M/s  "
                           "%6.1f GFLOP/s  %3.0f%%\n",
                           gp_isa_name(isa), name, threads, threads == 1 ? " " : "s", batch,
                           1e6 * best, 1e6 * best / batch, 1e-6 * batch / best, gflops,
                           ceiling > 0.0 ? 100.0 * gflops / ceiling : 0.0);
                }
            }
            gp_stack_free(stack);
            if (threads == 2) isas_done++;
        }
    }
    free(w0);
    free(b0);
    free(w1);
    free(b1);
    free(input);
    free(output);
    return 0;
}
