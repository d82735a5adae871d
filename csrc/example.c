/* example.c: a 2-layer stack, 4 -> 3 (leaky_relu 0.2) -> 2 (tanh), with literal weights.
 * Build and run: make && ./build/example
 */
#include "ganpack_kernel.h"

#include <stdio.h>

int main(void) {
    const int widths[3] = {4, 3, 2};
    /* nn.Linear layout: weight (out, in) row-major, bias (out) */
    const float weight0[3 * 4] = {0.5f, -0.25f, 0.125f, 1.0f,
                                  -1.0f, 0.75f, 0.5f, -0.5f,
                                  0.25f, 0.25f, -0.75f, 0.5f};
    const float bias0[3] = {0.1f, -0.2f, 0.0f};
    const float weight1[2 * 3] = {1.5f, -0.5f, 0.25f,
                                  -1.0f, 2.0f, 0.5f};
    const float bias1[2] = {0.05f, -0.1f};
    const float input[2 * 4] = {1.0f, 2.0f, 3.0f, 4.0f, /* (batch 2, 4) */
                                -1.0f, 0.5f, 0.0f, 2.0f};
    float output[2 * 2]; /* (batch 2, 2) */

    gp_stack *stack = NULL;
    gp_status status = gp_stack_create(2, widths, GP_ISA_AUTO, &stack);
    if (status == GP_OK) {
        status = gp_stack_set_layer(stack, 0, weight0, bias0, GP_ACT_LEAKY_RELU, 0.2f);
    }
    if (status == GP_OK) status = gp_stack_set_layer(stack, 1, weight1, bias1, GP_ACT_TANH, 0.0f);
    if (status == GP_OK) status = gp_stack_run(stack, input, 2, output);
    if (status != GP_OK) {
        fprintf(stderr, "ganpack kernel error %d: %s\n", (int)status, gp_status_message(status));
        gp_stack_free(stack);
        return 1;
    }
    printf("isa: %s (best on this CPU: %s)\n", gp_isa_name(gp_stack_isa(stack)),
           gp_isa_name(gp_best_isa()));
    for (int row = 0; row < 2; row++) {
        printf("output[%d] = [% .6f, % .6f]\n", row, (double)output[row * 2],
               (double)output[row * 2 + 1]);
    }
    gp_stack_free(stack);
    return 0;
}
