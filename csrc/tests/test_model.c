/* test_model.c: the ganpack-c reader and the whole-model API (ganpack.h).
 *
 * Two small valid files (tests/model_writer.h: unconditional and conditional) are opened and
 * their facts checked; sample, latents, generate and score are checked bit for bit against the
 * same stacks built through the kernel API (gp_stack_sample, gp_stack_run_typed), which is what
 * the Python C backend calls. Then hostile files: truncated at every length (as written, and with
 * file_bytes and the CRC-32 patched so the body parser meets the truncation), every bit of every
 * byte flipped (the CRC-32 covers every byte, so each must fail), and one file per refusal of the
 * spec (magic, version, sizes, huge shapes, non-finite numbers, reserved bytes, names, widths,
 * activations), each patched to a valid CRC so that the named check is the one that refuses it.
 * Then paths (a FIFO with no writer, /dev/zero, a sparse 3 GiB file, a pipe, a file longer than
 * its file_bytes: each answered without reading it all), the isa and n_threads arguments (checked
 * before the file, `why` naming them), NULL arguments and label errors.
 *
 * GP_TEST_QUICK=1 (valgrind) flips every bit only of the first 160 bytes and every 7th byte after.
 * GP_TEST_WRITE_CORPUS=DIR writes the two valid files into DIR (the fuzz target's seeds) and exits.
 * Last line: "N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L
#include "ganpack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h> /* mkfifo */
#include <unistd.h>   /* mkstemp, mkdtemp, ftruncate, pipe, alarm, close, unlink */

#include "model_writer.h"
#include "test_check.h"

/* ---------------------------------------------------------------- helpers */

static gp_model *open_bytes(const uint8_t *data, size_t size, int n_threads, gp_status *status,
                            char *why, size_t why_size) {
    gp_model *model = NULL;
    *status = gp_model_open_memory(data, size, GP_ISA_AUTO, n_threads, &model, why, why_size);
    return model;
}

/* The status of opening data, checking that a failure leaves *out NULL and says why. */
static gp_status status_of(test_counts *counts, const uint8_t *data, size_t size, char *why) {
    gp_status status;
    gp_model *model = open_bytes(data, size, 1, &status, why, 200);
    if (status != GP_OK && !(model == NULL && why[0] != '\0'))
        check(counts, 0, "a refused file: out NULL and a reason"); /* counted only when it fails */
    gp_model_free(model);
    return status;
}

/* A copy of m's file with a u32 (or f32 bits) at `offset` replaced, file_bytes and CRC fixed. */
static gp_status patched(test_counts *counts, const tm_model *m, size_t offset, uint32_t value,
                         char *why) {
    size_t size;
    uint8_t *data = tm_write(m, &size);
    tm_put_u32(data + offset, value);
    tm_fix(data, size);
    const gp_status status = status_of(counts, data, size, why);
    free(data);
    return status;
}

static uint32_t f32_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/* The kernel stacks the Python C backend builds for network n of m. */
static gp_stack *reference_stack(const tm_model *m, int n) {
    const tm_net *net = &m->net[n];
    gp_stack *stack = NULL;
    gp_status s = gp_stack_create(net->layers, net->widths, GP_ISA_AUTO, &stack);
    for (int l = 0; l < net->layers && s == GP_OK; l++)
        s = gp_stack_set_layer(stack, l, net->weight[l], net->bias[l], net->activation[l], net->alpha[l]);
    if (s == GP_OK && m->classes) s = gp_stack_set_class_bias(stack, m->classes, net->table);
    if (s != GP_OK) {
        printf("FAIL: reference stack: %s\n", gp_status_message((int)s));
        exit(1);
    }
    return stack;
}

/* ---------------------------------------------------------------- valid files */

static void test_valid(test_counts *counts, int conditional) {
    tm_model m;
    tm_example(&m, conditional);
    size_t size;
    uint8_t *data = tm_write(&m, &size);
    char why[200] = "unchanged";
    gp_status s;
    gp_model *model = open_bytes(data, size, 2, &s, why, sizeof why);
    check(counts, s == GP_OK && model != NULL && why[0] == '\0', "a valid file opens, why empty");
    if (model == NULL) {
        printf("  (why: %s)\n", why);
        free(data), tm_free(&m);
        return;
    }
    const int latent = m.net[0].widths[0], pixels = m.height * m.width;
    check(counts, gp_model_latent_dim(model) == latent, "latent_dim");
    check(counts, gp_model_image_height(model) == m.height && gp_model_image_width(model) == m.width,
          "image height and width");
    check(counts, gp_model_classes(model) == m.classes, "classes");
    int names_ok = gp_model_class_name(model, -1) == NULL && gp_model_class_name(model, m.classes) == NULL;
    for (int c = 0; c < m.classes; c++) names_ok &= strcmp(gp_model_class_name(model, c), m.names[c]) == 0;
    check(counts, names_ok, "class names, NULL out of range");
    check(counts, gp_model_isa(model) == gp_best_isa() && gp_model_threads(model) == 2, "isa and threads");
    printf("model %s: latent %d, %dx%d, %d classes, isa=%s\n", conditional ? "conditional" : "unconditional",
           latent, m.height, m.width, m.classes, gp_isa_name(gp_model_isa(model)));

    gp_stack *generator = reference_stack(&m, 0), *discriminator = reference_stack(&m, 1);
    enum { N = 37 };
    int32_t labels[N];
    for (int i = 0; i < N; i++) labels[i] = (int32_t)(i * 7 % (m.classes ? m.classes : 1));
    const int32_t *use = m.classes ? labels : NULL;
    uint8_t got_u8[N * 16], want_u8[N * 16];
    float got[N * 16], want[N * 16], z[N * 6], probabilities[N], want_p[N];
    const uint64_t seeds[3] = {0, 1, UINT64_MAX};
    int same_u8 = 1, same_f32 = 1, same_z = 1, same_generate = 1;
    for (int k = 0; k < 3; k++) {
        for (int64_t first = 0; first < 100; first += 41) {
            s = gp_model_sample(model, seeds[k], first, N, use, got_u8, GP_U8);
            gp_status r = use ? gp_stack_sample_labels(generator, seeds[k], first, N, m.distribution, m.scale,
                                                       m.offset, use, want_u8, GP_U8)
                              : gp_stack_sample(generator, seeds[k], first, N, m.distribution, m.scale,
                                                m.offset, want_u8, GP_U8);
            same_u8 &= s == GP_OK && r == GP_OK && memcmp(got_u8, want_u8, (size_t)(N * pixels)) == 0;
            s = gp_model_sample(model, seeds[k], first, N, use, got, GP_F32);
            r = use ? gp_stack_sample_labels(generator, seeds[k], first, N, m.distribution, m.scale,
                                             m.offset, use, want, GP_F32)
                    : gp_stack_sample(generator, seeds[k], first, N, m.distribution, m.scale, m.offset,
                                      want, GP_F32);
            same_f32 &= s == GP_OK && r == GP_OK && memcmp(got, want, sizeof(float) * (size_t)(N * pixels)) == 0;
            float z_want[N * 6];
            s = gp_model_latents(model, seeds[k], first, N, z);
            r = gp_latents(seeds[k], first, N, latent, m.distribution, m.scale, m.offset, z_want);
            same_z &= s == GP_OK && r == GP_OK && memcmp(z, z_want, sizeof(float) * (size_t)(N * latent)) == 0;
            s = gp_model_generate(model, z, N, use, want, GP_F32);
            same_generate &= s == GP_OK && memcmp(got, want, sizeof(float) * (size_t)(N * pixels)) == 0;
        }
    }
    check(counts, same_u8, "sample uint8 == gp_stack_sample on the same weights, bit for bit");
    check(counts, same_f32, "sample float32 == gp_stack_sample, bit for bit");
    check(counts, same_z, "latents == gp_latents with the file's distribution, scale, offset");
    check(counts, same_generate, "generate(latents) == sample, bit for bit");

    s = gp_model_score(model, got_u8, GP_U8, N, use, probabilities);
    gp_status r = use ? gp_stack_run_labels(discriminator, got_u8, GP_U8, use, N, want_p, GP_F32)
                      : gp_stack_run_typed(discriminator, got_u8, GP_U8, N, want_p, GP_F32);
    int in_range = 1;
    for (int i = 0; i < N; i++) in_range &= probabilities[i] >= 0.0f && probabilities[i] <= 1.0f;
    check(counts, s == GP_OK && r == GP_OK && in_range && memcmp(probabilities, want_p, sizeof want_p) == 0,
          "score uint8 == the discriminator stack, probabilities in [0, 1]");
    s = gp_model_score(model, got, GP_F32, N, use, probabilities);
    r = use ? gp_stack_run_labels(discriminator, got, GP_F32, use, N, want_p, GP_F32)
            : gp_stack_run_typed(discriminator, got, GP_F32, N, want_p, GP_F32);
    check(counts, s == GP_OK && r == GP_OK && memcmp(probabilities, want_p, sizeof want_p) == 0,
          "score float32 == the discriminator stack");

    /* argument and label errors */
    got[3] = 1.5f;
    check(counts, gp_model_score(model, got, GP_F32, N, use, probabilities) == GP_ERR_INPUT,
          "score: a float pixel outside [-1, 1] is GP_ERR_INPUT");
    got[3] = NAN;
    check(counts, gp_model_score(model, got, GP_F32, N, use, probabilities) == GP_ERR_INPUT, "score: NaN");
    check(counts, gp_model_score(model, got_u8, 7, N, use, probabilities) == GP_ERR_ARGUMENT,
          "score: unknown images dtype");
    z[0] = INFINITY;
    check(counts, gp_model_generate(model, z, N, use, got, GP_F32) == GP_ERR_INPUT, "generate: inf latent");
    check(counts, gp_model_sample(model, 1, 0, N, use, got, 9) == GP_ERR_ARGUMENT, "sample: bad dtype");
    check(counts, gp_model_sample(model, 1, -1, N, use, got, GP_F32) == GP_ERR_SHAPE, "sample: first_row < 0");
    check(counts, gp_model_sample(model, 1, 0, -1, use, got, GP_F32) == GP_ERR_SHAPE, "sample: n < 0");
    check(counts, gp_model_sample(model, 1, 0, 0, NULL, NULL, GP_U8) == GP_OK, "sample: n 0 is a no-op");
    check(counts, gp_model_sample(model, 1, 0, N, use, NULL, GP_U8) == GP_ERR_NULL, "sample: out NULL");
    check(counts, gp_model_latents(model, 1, 0, N, NULL) == GP_ERR_NULL, "latents: z NULL");
    if (m.classes) {
        check(counts, gp_model_sample(model, 1, 0, N, NULL, got, GP_U8) == GP_ERR_ARGUMENT,
              "conditional sample without labels: GP_ERR_ARGUMENT");
        check(counts, gp_model_score(model, got_u8, GP_U8, N, NULL, probabilities) == GP_ERR_ARGUMENT,
              "conditional score without labels: GP_ERR_ARGUMENT");
        check(counts, gp_model_generate(model, z, N, NULL, got, GP_F32) == GP_ERR_ARGUMENT,
              "conditional generate without labels: GP_ERR_ARGUMENT");
        memset(got_u8, 0xAB, sizeof got_u8);
        labels[N - 1] = m.classes;
        s = gp_model_sample(model, 1, 0, N, labels, got_u8, GP_U8);
        int untouched = 1;
        for (size_t i = 0; i < sizeof got_u8; i++) untouched &= got_u8[i] == 0xAB;
        check(counts, s == GP_ERR_INPUT && untouched, "a label out of range: GP_ERR_INPUT, nothing written");
        labels[N - 1] = -1;
        check(counts, gp_model_score(model, want_u8, GP_U8, N, labels, probabilities) == GP_ERR_INPUT,
              "score: a negative label is GP_ERR_INPUT");
    } else {
        check(counts, gp_model_sample(model, 1, 0, N, labels, got, GP_U8) == GP_ERR_ARGUMENT,
              "unconditional sample with labels: GP_ERR_ARGUMENT");
        check(counts, gp_model_score(model, got_u8, GP_U8, N, labels, probabilities) == GP_ERR_ARGUMENT,
              "unconditional score with labels: GP_ERR_ARGUMENT");
    }
    gp_stack_free(generator);
    gp_stack_free(discriminator);
    gp_model_free(model);

    /* the caller's bytes may be freed after open; a model opened from a file is the same */
    model = open_bytes(data, size, 1, &s, NULL, 0);
    memset(data, 0, size);
    s = gp_model_sample(model, 5, 0, 4, use, got_u8, GP_U8);
    check(counts, s == GP_OK, "the model does not read the caller's bytes after open");
    gp_model_free(model);
    free(data);
    tm_free(&m);
}

/* Where the tests make their files: $TMPDIR, else /tmp. */
static const char *temp_dir(void) {
    const char *tmp = getenv("TMPDIR");
    return tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp";
}

static void test_open_file(test_counts *counts) {
    tm_model m;
    tm_example(&m, 1);
    size_t size;
    uint8_t *data = tm_write(&m, &size);
    char path[512], why[200];
    snprintf(path, sizeof path, "%s/gpkc_test_XXXXXX", temp_dir());
    const int fd = mkstemp(path);
    FILE *file = fd >= 0 ? fdopen(fd, "wb") : NULL;
    const int written = file != NULL && fwrite(data, 1, size, file) == size;
    if (file != NULL) fclose(file);
    check(counts, written, "the test writes a model file");
    gp_model *model = NULL;
    gp_status s = gp_model_open(path, GP_ISA_AUTO, 1, &model, why, sizeof why);
    check(counts, s == GP_OK && gp_model_classes(model) == 3, "gp_model_open reads a file");
    gp_model_free(model);
    unlink(path);
    s = gp_model_open(path, GP_ISA_AUTO, 1, &model, why, sizeof why);
    check(counts, s == GP_ERR_FILE && model == NULL && strstr(why, path) != NULL,
          "a missing file: GP_ERR_FILE, why names it");
    s = gp_model_open(temp_dir(), GP_ISA_AUTO, 1, &model, why, sizeof why);
    check(counts, s == GP_ERR_FILE && model == NULL, "a directory: GP_ERR_FILE");
    printf("  a directory: %s\n", why);
    s = gp_model_open("/dev/null", GP_ISA_AUTO, 1, &model, why, sizeof why);
    check(counts, s == GP_ERR_CORRUPT, "an empty file: GP_ERR_CORRUPT");
    free(data);
    tm_free(&m);
}

/* Files that must be answered without reading them to their end (or blocking). A hang is
   killed by alarm(): the test program dies, and the make target fails. */
static void test_special_files(test_counts *counts) {
    tm_model m;
    tm_example(&m, 0);
    size_t size;
    uint8_t *data = tm_write(&m, &size);
    char folder[512], path[600], why[300];
    snprintf(folder, sizeof folder, "%s/gpkc_special_XXXXXX", temp_dir());
    check(counts, mkdtemp(folder) != NULL, "the test makes a folder");
    gp_model *model = NULL;
    gp_status s;
    alarm(60);
    /* a FIFO with no writer: open would block; read gives EOF at once, an empty file */
    snprintf(path, sizeof path, "%s/fifo.gpkc", folder);
    if (mkfifo(path, 0600) == 0) {
        s = gp_model_open(path, GP_ISA_AUTO, 1, &model, why, sizeof why);
        check(counts, s == GP_ERR_CORRUPT && model == NULL && strstr(why, "empty") != NULL,
              "a FIFO with no writer: GP_ERR_CORRUPT (empty), at once");
        unlink(path);
    } else {
        printf("  (mkfifo fails here: the FIFO case is skipped)\n");
    }
    /* /dev/zero: its magic is wrong, seen in the first bytes */
    s = gp_model_open("/dev/zero", GP_ISA_AUTO, 1, &model, why, sizeof why);
    check(counts, s == GP_ERR_FORMAT && model == NULL, "/dev/zero: GP_ERR_FORMAT, at once");
    /* a sparse 3 GiB file with a valid header: refused by its size, unread */
    snprintf(path, sizeof path, "%s/sparse.gpkc", folder);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0 && write(fd, data, 64) == 64 && ftruncate(fd, (off_t)3 << 30) == 0) {
        close(fd);
        s = gp_model_open(path, GP_ISA_AUTO, 1, &model, why, sizeof why);
        check(counts, s == GP_ERR_CORRUPT && model == NULL && strstr(why, "3221225472") != NULL,
              "a sparse 3 GiB file: GP_ERR_CORRUPT, why names its size");
        printf("  a sparse 3 GiB file: %s\n", why);
    } else {
        if (fd >= 0) close(fd);
        printf("  (a 3 GiB file cannot be made here: the case is skipped)\n");
    }
    unlink(path);
    /* a file longer than its file_bytes: read up to file_bytes + 1, then refused */
    snprintf(path, sizeof path, "%s/long.gpkc", folder);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int long_written = fd >= 0 && write(fd, data, size) == (ssize_t)size &&
                             ftruncate(fd, (off_t)size + 100000) == 0;
    if (fd >= 0) close(fd);
    s = gp_model_open(path, GP_ISA_AUTO, 1, &model, why, sizeof why);
    check(counts, long_written && s == GP_ERR_CORRUPT && model == NULL && strstr(why, "at least") != NULL,
          "a file longer than file_bytes: GP_ERR_CORRUPT");
    printf("  a file longer than file_bytes: %s\n", why);
    unlink(path);
    /* a pipe (as /dev/stdin would be): read in chunks to its end */
    int ends[2];
    if (pipe(ends) == 0) {
        const int piped = write(ends[1], data, size) == (ssize_t)size; /* ~1 KB: within the pipe's buffer */
        close(ends[1]);
        snprintf(path, sizeof path, "/dev/fd/%d", ends[0]);
        if (access(path, R_OK) == 0) {
            s = gp_model_open(path, GP_ISA_AUTO, 1, &model, why, sizeof why);
            check(counts, piped && s == GP_OK && gp_model_latent_dim(model) == m.net[0].widths[0],
                  "a pipe: read to its end, GP_OK");
            gp_model_free(model);
            model = NULL;
        } else {
            printf("  (no /dev/fd here: the pipe case is skipped)\n");
        }
        close(ends[0]);
    }
    alarm(0);
    rmdir(folder);
    free(data);
    tm_free(&m);
}

/* isa and n_threads are checked before the file, and `why` names them, not the model. */
static void test_arguments(test_counts *counts) {
    tm_model m;
    tm_example(&m, 0);
    size_t size;
    uint8_t *data = tm_write(&m, &size);
    gp_model *model = NULL;
    char why[300];
    gp_status s = gp_model_open_memory(data, size, GP_ISA_AUTO, 65, &model, why, sizeof why);
    check(counts, s == GP_ERR_SHAPE && strcmp(why, "n_threads 65 is outside 0..64") == 0,
          "65 threads: GP_ERR_SHAPE, why names n_threads");
    s = gp_model_open_memory(data, size, 99, 1, &model, why, sizeof why);
    check(counts, s == GP_ERR_UNSUPPORTED_ISA && strstr(why, "isa 99 (unknown)") == why,
          "isa 99: GP_ERR_UNSUPPORTED_ISA, why names it");
    s = gp_model_open("/no/such/file.gpkc", GP_ISA_AUTO, -1, &model, why, sizeof why);
    check(counts, s == GP_ERR_SHAPE && strstr(why, "n_threads -1") == why, "open: n_threads before the file");
    s = gp_model_open("/no/such/file.gpkc", 99, 1, &model, why, sizeof why);
    check(counts, s == GP_ERR_UNSUPPORTED_ISA && model == NULL, "open: isa before the file");
    if (gp_best_isa() != GP_ISA_AVX512) { /* then this CPU or this build lacks AVX-512 */
        s = gp_model_open_memory(data, size, GP_ISA_AVX512, 1, &model, why, sizeof why);
        check(counts, s == GP_ERR_UNSUPPORTED_ISA && model == NULL &&
                      strcmp(why, "isa 2 (avx512): not supported by this CPU or build") == 0,
              "avx512 where it is missing: GP_ERR_UNSUPPORTED_ISA, why names it");
        printf("  avx512: %s\n", why);
    }
    s = gp_model_open_memory(data, size, GP_ISA_PORTABLE, 0, &model, why, sizeof why);
    check(counts, s == GP_OK && gp_model_isa(model) == GP_ISA_PORTABLE, "portable, n_threads 0: GP_OK");
    gp_model_free(model);
    free(data);
    tm_free(&m);
}

/* ---------------------------------------------------------------- hostile files */

static void test_truncated_and_flipped(test_counts *counts, int conditional, int quick) {
    tm_model m;
    tm_example(&m, conditional);
    size_t size;
    uint8_t *data = tm_write(&m, &size);
    uint8_t *copy = malloc(size + 64);
    char why[200];
    int all_corrupt = 1, all_patched = 1, all_flips = 1, flips = 0, lengths = 0;
    for (size_t length = 0; length < size; length++) /* as a cut-off download: file_bytes says more */
        all_corrupt &= status_of(counts, data, length, why) == GP_ERR_CORRUPT;
    check(counts, all_corrupt, "truncated at every length: GP_ERR_CORRUPT");
    for (size_t length = 68; length < size + 64; length++) { /* sizes and CRC consistent */
        if (length == size) continue;
        memcpy(copy, data, size < length - 4 ? size : length - 4);
        if (length - 4 > size) memset(copy + size, 0, length - 4 - size);
        tm_fix(copy, length);
        all_patched &= status_of(counts, copy, length, why) == GP_ERR_CORRUPT;
        lengths++;
    }
    check(counts, all_patched, "cut or extended body, file_bytes and CRC fixed: GP_ERR_CORRUPT");
    for (size_t i = 0; i < size; i++) {
        if (quick && i >= 160 && i % 7 != 0) continue;
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, data, size);
            copy[i] ^= (uint8_t)(1u << bit);
            all_flips &= status_of(counts, copy, size, why) != GP_OK;
            flips++;
        }
    }
    check(counts, all_flips, "every bit flip is refused (the CRC-32 covers every byte)");
    printf("  %zu-byte file: %zu truncations, %d patched lengths, %d bit flips refused\n", size, size,
           lengths, flips);
    free(copy);
    free(data);
    tm_free(&m);
}

static void test_refusals(test_counts *counts) {
    tm_model m;
    tm_example(&m, 1);
    const tm_layout at = tm_layout_of(&m);
    size_t size;
    uint8_t *data = tm_write(&m, &size);
    char why[200];
    struct { size_t offset; uint32_t value; gp_status want; const char *what; } cases[] = {
        {0, 0x43504B48u, GP_ERR_FORMAT, "magic HKPC"},
        {4, 2, GP_ERR_VERSION, "version 2"},
        {4, 0, GP_ERR_VERSION, "version 0"},
        {8, 63, GP_ERR_CORRUPT, "header_bytes 63"},
        {16, 2, GP_ERR_CORRUPT, "latent_stream 2"},
        {20, 2, GP_ERR_CORRUPT, "latent_distribution 2"},
        {24, f32_bits(NAN), GP_ERR_CORRUPT, "latent_scale NaN"},
        {28, f32_bits(-INFINITY), GP_ERR_CORRUPT, "latent_offset -inf"},
        {32, 0, GP_ERR_CORRUPT, "image_height 0"},
        {36, 4097, GP_ERR_CORRUPT, "image_width 4097"},
        {32, 2048, GP_ERR_CORRUPT, "2048x4 image: widths do not chain"},
        {40, 0x80000000u, GP_ERR_CORRUPT, "classes 2^31"},
        {40, 65537, GP_ERR_CORRUPT, "classes 65537"},
        {40, 0, GP_ERR_CORRUPT, "classes 0 with names"},
        {40, 4, GP_ERR_CORRUPT, "classes 4: a name runs past names_bytes"},
        {44, 0xFFFFFFFCu, GP_ERR_CORRUPT, "names_bytes 4 GiB - 4"},
        {44, 1u << 21, GP_ERR_CORRUPT, "names_bytes 2 MiB"},
        {44, 18, GP_ERR_CORRUPT, "names_bytes not a multiple of 4"},
        {48, 1000000, GP_ERR_CORRUPT, "generator_layers 10^6"},
        {52, 0, GP_ERR_CORRUPT, "discriminator_layers 0"},
        {52, 65, GP_ERR_CORRUPT, "discriminator_layers 65"},
        {56, 1, GP_ERR_CORRUPT, "reserved byte 56"},
        {60, 1u << 24, GP_ERR_CORRUPT, "reserved byte 63"},
        {at.names + 12, 0x41414141u, GP_ERR_CORRUPT, "a name without its NUL"},
        {at.names, 0, GP_ERR_CORRUPT, "an empty name"},
        {at.names, 0x6f7265ffu, GP_ERR_CORRUPT, "a name that is not UTF-8"},
        {at.names + 4, 0x6e41c300u, GP_ERR_CORRUPT, "a name's UTF-8 sequence cut"},
        {at.names + 12, 0x01006565u, GP_ERR_CORRUPT, "name padding not zero"},
        {at.widths[0] + 4, 0x80000000u, GP_ERR_CORRUPT, "a width of 2^31"},
        {at.widths[0] + 4, 1u << 20, GP_ERR_CORRUPT, "a width of 2^20: far more weights than bytes"},
        {at.widths[0] + 4, 0, GP_ERR_CORRUPT, "a width of 0"},
        {at.widths[0] + 12, 15, GP_ERR_CORRUPT, "generator's last width != height * width"},
        {at.widths[1], 12, GP_ERR_CORRUPT, "discriminator's first width != height * width"},
        {at.widths[1] + 12, 2, GP_ERR_CORRUPT, "discriminator's last width 2"},
        {at.widths[0], 7, GP_ERR_CORRUPT, "a latent dim that does not match the weights"},
        {at.params[0], 5, GP_ERR_CORRUPT, "activation 5"},
        {at.params[0] + 4, f32_bits(0.5f), GP_ERR_CORRUPT, "relu with alpha 0.5"},
        {at.params[0] + 12, f32_bits(1.0f), GP_ERR_CORRUPT, "leaky_relu alpha 1"},
        {at.params[0] + 12, f32_bits(-0.1f), GP_ERR_CORRUPT, "leaky_relu alpha -0.1"},
        {at.params[0] + 12, f32_bits(NAN), GP_ERR_CORRUPT, "leaky_relu alpha NaN"},
        {at.params[1] + 16, 3, GP_ERR_CORRUPT, "discriminator's last activation tanh"},
        {at.weight[0][0], f32_bits(NAN), GP_ERR_CORRUPT, "a NaN weight"},
        {at.weight[0][2] + 8, f32_bits(INFINITY), GP_ERR_CORRUPT, "an infinite weight"},
        {at.bias[1][2], f32_bits(-INFINITY), GP_ERR_CORRUPT, "an infinite bias"},
        {at.table[0] + 4, f32_bits(NAN), GP_ERR_CORRUPT, "a NaN in the generator's class-bias table"},
        {at.table[1] + 4 * 14, f32_bits(INFINITY), GP_ERR_CORRUPT, "inf, last of the D table"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const gp_status s = patched(counts, &m, cases[i].offset, cases[i].value, why);
        char what[200];
        snprintf(what, sizeof what, "%s: status %d, want %d", cases[i].what, (int)s, (int)cases[i].want);
        check(counts, s == cases[i].want, what);
        printf("  %-50s %s\n", cases[i].what, why);
    }
    uint8_t *copy = malloc(size);
    memcpy(copy, data, size);
    copy[size - 1] ^= 0x80;
    check(counts, status_of(counts, copy, size, why) == GP_ERR_CORRUPT && strstr(why, "CRC") != NULL,
          "a CRC-32 mismatch says so");
    memcpy(copy, data, size);
    tm_put_u32(copy + 12, (uint32_t)size + 1);
    check(counts, status_of(counts, copy, size, why) == GP_ERR_CORRUPT, "file_bytes one more than the size");
    tm_put_u32(copy + 12, (uint32_t)size - 1);
    check(counts, status_of(counts, copy, size, why) == GP_ERR_CORRUPT, "file_bytes one less than the size");
    check(counts, status_of(counts, (const uint8_t *)"PK\3\4", 4, why) == GP_ERR_FORMAT, "a zip: GP_ERR_FORMAT");
    check(counts, status_of(counts, (const uint8_t *)"GP", 2, why) == GP_ERR_CORRUPT, "2 bytes of the magic");
    check(counts, status_of(counts, (const uint8_t *)"x", 1, why) == GP_ERR_FORMAT, "1 byte, not the magic");
    check(counts, status_of(counts, data, 0, why) == GP_ERR_CORRUPT, "0 bytes: GP_ERR_CORRUPT");

    /* why: cut to why_size, NUL-terminated; untouched for why_size 0 */
    char small[8] = "xxxxxxx";
    gp_model *model = (gp_model *)1;
    gp_status s = gp_model_open_memory("GPKC", 4, GP_ISA_AUTO, 1, &model, small, sizeof small);
    check(counts, s == GP_ERR_CORRUPT && model == NULL && strlen(small) == 7, "why cut to why_size");
    small[0] = 'y';
    gp_model_open_memory("GPKC", 4, GP_ISA_AUTO, 1, &model, small, 0);
    check(counts, small[0] == 'y', "why_size 0 writes nothing");
    /* the kernel's refusals pass through */
    s = gp_model_open_memory(data, size, 99, 1, &model, why, sizeof why);
    check(counts, s == GP_ERR_UNSUPPORTED_ISA && model == NULL, "an unknown isa: GP_ERR_UNSUPPORTED_ISA");
    s = gp_model_open_memory(data, size, GP_ISA_AUTO, 65, &model, why, sizeof why);
    check(counts, s == GP_ERR_SHAPE && model == NULL, "65 threads: GP_ERR_SHAPE");
    free(copy);
    free(data);
    tm_free(&m);
}

static void test_null_arguments(test_counts *counts) {
    gp_model *model = NULL;
    char why[100];
    check(counts, gp_model_open_memory(NULL, 10, GP_ISA_AUTO, 1, &model, why, sizeof why) == GP_ERR_NULL,
          "data NULL with a size: GP_ERR_NULL");
    check(counts, gp_model_open_memory("GPKC", 4, GP_ISA_AUTO, 1, NULL, why, sizeof why) == GP_ERR_NULL,
          "out NULL: GP_ERR_NULL");
    check(counts, gp_model_open(NULL, GP_ISA_AUTO, 1, &model, why, sizeof why) == GP_ERR_NULL, "path NULL");
    check(counts, gp_model_open("x", GP_ISA_AUTO, 1, NULL, NULL, 0) == GP_ERR_NULL, "open: out NULL");
    check(counts, gp_model_latent_dim(NULL) == -1 && gp_model_image_height(NULL) == -1 &&
                  gp_model_image_width(NULL) == -1 && gp_model_classes(NULL) == -1 &&
                  gp_model_isa(NULL) == -1 && gp_model_threads(NULL) == -1 &&
                  gp_model_class_name(NULL, 0) == NULL, "facts of NULL: -1, NULL");
    float f[4];
    uint8_t u[4];
    check(counts, gp_model_sample(NULL, 0, 0, 1, NULL, u, GP_U8) == GP_ERR_NULL &&
                  gp_model_latents(NULL, 0, 0, 1, f) == GP_ERR_NULL &&
                  gp_model_generate(NULL, f, 1, NULL, u, GP_U8) == GP_ERR_NULL &&
                  gp_model_score(NULL, u, GP_U8, 1, NULL, f) == GP_ERR_NULL, "calls on NULL: GP_ERR_NULL");
    gp_model_free(NULL);
    check(counts, strcmp(gp_status_message(GP_ERR_CORRUPT), "unknown status") != 0 &&
                  strcmp(gp_status_message(GP_ERR_FILE), "unknown status") != 0 &&
                  strcmp(gp_status_message(GP_ERR_FORMAT), "unknown status") != 0 &&
                  strcmp(gp_status_message(GP_ERR_VERSION), "unknown status") != 0,
          "gp_status_message knows the file codes");
}

/* ---------------------------------------------------------------- the fuzz seeds */

static int write_corpus(const char *folder) {
    for (int conditional = 0; conditional < 2; conditional++) {
        tm_model m;
        tm_example(&m, conditional);
        size_t size;
        uint8_t *data = tm_write(&m, &size);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.gpkc", folder, conditional ? "conditional" : "unconditional");
        FILE *file = fopen(path, "wb");
        const int ok = file != NULL && fwrite(data, 1, size, file) == size;
        if (file != NULL && fclose(file) != 0) return 1;
        free(data);
        tm_free(&m);
        if (!ok) {
            printf("cannot write %s\n", path);
            return 1;
        }
        printf("wrote %s (%zu bytes)\n", path, size);
    }
    return 0;
}

int main(void) {
    const char *corpus = getenv("GP_TEST_WRITE_CORPUS");
    if (corpus != NULL && corpus[0] != '\0') return write_corpus(corpus);
    const char *quick_env = getenv("GP_TEST_QUICK");
    const int quick = quick_env != NULL && strcmp(quick_env, "1") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_counts counts = {0, 0};
    test_valid(&counts, 0);
    test_valid(&counts, 1);
    test_open_file(&counts);
    test_special_files(&counts);
    test_arguments(&counts);
    test_truncated_and_flipped(&counts, 0, quick);
    test_truncated_and_flipped(&counts, 1, quick);
    test_refusals(&counts);
    test_null_arguments(&counts);
    printf("%d passed, %d failed\n", counts.passed, counts.failed);
    return counts.failed == 0 ? 0 : 1;
}
