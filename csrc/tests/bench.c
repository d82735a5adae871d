/* bench.c: rough single-thread timing of the generator-shaped stack 100 -> 128 (leaky_relu 0.2)
 * -> 784 (tanh) through the public API, for every ISA this CPU supports. Not rigorous: best of
 * a few repeats of clock_gettime around a loop of runs.
 */
#define _POSIX_C_SOURCE 200809L
#include "ganpack_kernel.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

int main(void) {
    const int widths[3] = {100, 128, 784};
    const double flops_per_row = 2.0 * (100.0 * 128.0 + 128.0 * 784.0);
    float *w0 = filled(128 * 100, 0.1f), *b0 = filled(128, 0.1f);
    float *w1 = filled(784 * 128, 0.09f), *b1 = filled(784, 0.1f);
    float *input = filled(1024 * 100, 2.0f), *output = filled(1024 * 784, 0.0f);
    const int batches[2] = {1, 1024};
    for (int isa = GP_ISA_PORTABLE; isa <= GP_ISA_AVX512; isa++) {
        gp_stack *stack = NULL;
        if (gp_stack_create(2, widths, isa, &stack) != GP_OK) continue;
        gp_stack_set_layer(stack, 0, w0, b0, GP_ACT_LEAKY_RELU, 0.2f);
        gp_stack_set_layer(stack, 1, w1, b1, GP_ACT_TANH, 0.0f);
        for (int b = 0; b < 2; b++) {
            const int batch = batches[b], runs = batch == 1 ? 2000 : 20;
            double best = 1e30;
            for (int repeat = 0; repeat < 5; repeat++) {
                const double start = now_seconds();
                for (int run = 0; run < runs; run++) gp_stack_run(stack, input, batch, output);
                const double per_run = (now_seconds() - start) / runs;
                if (per_run < best) best = per_run;
            }
            printf("%-9s batch %4d: %9.1f us/run  %6.2f us/row  %6.1f GFLOP/s\n",
                   gp_isa_name(isa), batch, 1e6 * best, 1e6 * best / batch,
                   flops_per_row * batch / best * 1e-9);
        }
        gp_stack_free(stack);
    }
    free(w0);
    free(b0);
    free(w1);
    free(b1);
    free(input);
    free(output);
    return 0;
}
