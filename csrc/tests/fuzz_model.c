/* fuzz_model.c: libFuzzer target for the ganpack-c reader (`make fuzz`).
 *
 * Each input is opened twice: as it is, and with file_bytes set to its size and its CRC-32
 * recomputed. Random mutations nearly always break the CRC, so the raw bytes exercise the header
 * checks only; the patched copy carries the mutation past the CRC into the names, widths,
 * activations and weights. When a copy opens, the model must keep its invariants: a few sampled
 * rows as uint8 are the uint8 mapping of the float32 rows, generate(latents) equals sample, and
 * scores are probabilities. The sanitizers (ASan, UBSan) catch the rest.
 */
#include "ganpack.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_writer.h" /* tm_fix: file_bytes and the CRC-32 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROWS 3

static void fail_invariant(const char *what) {
    fprintf(stderr, "fuzz_model: invariant broken: %s\n", what);
    abort();
}

static void exercise(const gp_model *model) {
    const int pixels = gp_model_image_height(model) * gp_model_image_width(model);
    const int latent = gp_model_latent_dim(model), classes = gp_model_classes(model);
    if (pixels < 1 || latent < 1 || classes < 0) fail_invariant("facts out of range");
    int32_t labels[ROWS];
    for (int i = 0; i < ROWS; i++) labels[i] = classes ? (int32_t)(i % classes) : 0;
    const int32_t *use = classes ? labels : NULL;
    for (int c = 0; c < classes; c++)
        if (gp_model_class_name(model, c) == NULL || gp_model_class_name(model, c)[0] == '\0')
            fail_invariant("a class without a name");
    float *y = malloc(sizeof(float) * (size_t)(ROWS * pixels));
    float *y2 = malloc(sizeof(float) * (size_t)(ROWS * pixels));
    float *z = malloc(sizeof(float) * (size_t)(ROWS * latent));
    uint8_t *u = malloc((size_t)(ROWS * pixels));
    float p[ROWS];
    if (y == NULL || y2 == NULL || z == NULL || u == NULL) abort();
    if (gp_model_sample(model, 42, 7, ROWS, use, y, GP_F32) != GP_OK ||
        gp_model_sample(model, 42, 7, ROWS, use, u, GP_U8) != GP_OK)
        fail_invariant("sample failed on a model that opened");
    for (int i = 0; i < ROWS * pixels; i++) {
        if (!isfinite(y[i])) continue; /* an identity last layer may overflow: no mapping to check */
        const float scaled = rintf((y[i] + 1.0f) * 127.5f);
        const uint8_t want = scaled <= 0.0f ? 0 : scaled >= 255.0f ? 255 : (uint8_t)scaled;
        if (u[i] != want) fail_invariant("uint8 sample != the mapping of the float32 sample");
    }
    if (gp_model_latents(model, 42, 7, ROWS, z) != GP_OK ||
        gp_model_generate(model, z, ROWS, use, y2, GP_F32) != GP_OK)
        fail_invariant("latents or generate failed");
    if (memcmp(y, y2, sizeof(float) * (size_t)(ROWS * pixels)) != 0)
        fail_invariant("generate(latents) != sample");
    if (gp_model_score(model, u, GP_U8, ROWS, use, p) != GP_OK) fail_invariant("score failed");
    for (int i = 0; i < ROWS; i++)
        if (!(p[i] >= 0.0f && p[i] <= 1.0f) && !isnan(p[i])) fail_invariant("a score outside [0, 1]");
    if (classes && gp_model_sample(model, 1, 0, ROWS, NULL, u, GP_U8) != GP_ERR_ARGUMENT)
        fail_invariant("a conditional model sampled without labels");
    free(y), free(y2), free(z), free(u);
}

static void open_and_check(const uint8_t *data, size_t size) {
    gp_model *model = NULL;
    char why[256];
    const gp_status s = gp_model_open_memory(data, size, GP_ISA_AUTO, 1, &model, why, sizeof why);
    if ((s == GP_OK) != (model != NULL)) fail_invariant("status and model disagree");
    if (s != GP_OK && why[0] == '\0') fail_invariant("a refusal without a reason");
    if (model != NULL) exercise(model);
    gp_model_free(model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    open_and_check(data, size);
    if (size >= 68) {
        uint8_t *copy = malloc(size);
        if (copy == NULL) return 0;
        memcpy(copy, data, size);
        tm_fix(copy, size);
        open_and_check(copy, size);
        free(copy);
    }
    return 0;
}
