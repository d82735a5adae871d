/* model_writer.h: a small ganpack-c writer (docs/embedding-format.md) for the C tests and the
 * fuzz target, written from the spec apart from the reader (ganpack_model.c), so that the two
 * check each other. A tm_model holds every array the file holds, so a test can also build the
 * same stacks through the kernel API directly. Test code: exits on out-of-memory.
 */
#ifndef GANPACK_MODEL_WRITER_H
#define GANPACK_MODEL_WRITER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TM_MAX_LAYERS 4
#define TM_MAX_CLASSES 4

typedef struct {
    int layers;
    int widths[TM_MAX_LAYERS + 1];
    int activation[TM_MAX_LAYERS]; /* gp_activation */
    float alpha[TM_MAX_LAYERS];
    float *weight[TM_MAX_LAYERS];  /* (widths[l + 1], widths[l]) */
    float *bias[TM_MAX_LAYERS];    /* (widths[l + 1]) */
    float *table;                  /* (classes, widths[1]), or NULL without classes */
} tm_net;

typedef struct {
    int height, width, classes, distribution;
    float scale, offset;
    const char *names[TM_MAX_CLASSES];
    tm_net net[2]; /* generator, discriminator */
} tm_model;

/* Where each part lies in the file tm_write makes (offsets in bytes). */
typedef struct {
    size_t names, widths[2], params[2], weight[2][TM_MAX_LAYERS], bias[2][TM_MAX_LAYERS], table[2];
    size_t crc, size;
} tm_layout;

static inline uint32_t tm_crc32(const uint8_t *data, size_t size) { /* zlib's crc32, bit by bit */
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++) crc = crc & 1u ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    }
    return crc ^ 0xFFFFFFFFu;
}

static inline void tm_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static inline void tm_put_f32(uint8_t *p, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    tm_put_u32(p, bits);
}

/* Sets file_bytes to `size` and rewrites the trailing CRC-32 (size >= 68). */
static inline void tm_fix(uint8_t *data, size_t size) {
    tm_put_u32(data + 12, (uint32_t)size);
    tm_put_u32(data + size - 4, tm_crc32(data, size - 4));
}

static inline size_t tm_names_bytes(const tm_model *m) {
    size_t bytes = 0;
    for (int c = 0; c < m->classes; c++) bytes += strlen(m->names[c]) + 1;
    return (bytes + 3) / 4 * 4;
}

static inline tm_layout tm_layout_of(const tm_model *m) {
    tm_layout at;
    memset(&at, 0, sizeof at);
    size_t offset = 64;
    at.names = offset;
    offset += tm_names_bytes(m);
    for (int n = 0; n < 2; n++) {
        const tm_net *net = &m->net[n];
        at.widths[n] = offset;
        offset += 4 * (size_t)(net->layers + 1);
        at.params[n] = offset;
        offset += 8 * (size_t)net->layers;
        for (int l = 0; l < net->layers; l++) {
            at.weight[n][l] = offset;
            offset += 4 * (size_t)net->widths[l + 1] * (size_t)net->widths[l];
            at.bias[n][l] = offset;
            offset += 4 * (size_t)net->widths[l + 1];
        }
        at.table[n] = offset;
        offset += 4 * (size_t)m->classes * (size_t)net->widths[1];
    }
    at.crc = offset;
    at.size = offset + 4;
    return at;
}

static inline float *tm_floats(uint64_t *state, size_t count, float spread) {
    float *values = malloc((count ? count : 1) * sizeof(float));
    if (values == NULL) {
        printf("FAIL: test out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < count; i++) { /* splitmix64, 24 bits into (-spread, spread) */
        uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        values[i] = spread * ((float)(z >> 40) / 8388608.0f - 1.0f);
    }
    return values;
}

/* Random weights for every layer already shaped in m (layers, widths, classes). */
static inline void tm_fill(tm_model *m, uint64_t seed) {
    for (int n = 0; n < 2; n++) {
        tm_net *net = &m->net[n];
        for (int l = 0; l < net->layers; l++) {
            const size_t in = (size_t)net->widths[l], out = (size_t)net->widths[l + 1];
            net->weight[l] = tm_floats(&seed, out * in, 1.5f / (float)in + 0.3f);
            net->bias[l] = tm_floats(&seed, out, 0.2f);
        }
        net->table = m->classes ? tm_floats(&seed, (size_t)m->classes * (size_t)net->widths[1], 0.5f)
                                : NULL;
    }
}

static inline void tm_free(tm_model *m) {
    for (int n = 0; n < 2; n++) {
        for (int l = 0; l < m->net[n].layers; l++) free(m->net[n].weight[l]), free(m->net[n].bias[l]);
        free(m->net[n].table);
    }
}

/* The file's bytes (malloc'd; *size set), CRC-32 included. */
static inline uint8_t *tm_write(const tm_model *m, size_t *size) {
    const tm_layout at = tm_layout_of(m);
    uint8_t *data = calloc(at.size, 1);
    if (data == NULL) {
        printf("FAIL: test out of memory\n");
        exit(1);
    }
    memcpy(data, "GPKC", 4);
    const uint32_t header[12] = {1, 64, (uint32_t)at.size, 1, (uint32_t)m->distribution, 0, 0,
                                 (uint32_t)m->height, (uint32_t)m->width, (uint32_t)m->classes,
                                 (uint32_t)tm_names_bytes(m), 0};
    for (int i = 0; i < 12; i++) tm_put_u32(data + 4 + 4 * i, header[i]);
    tm_put_f32(data + 24, m->scale);
    tm_put_f32(data + 28, m->offset);
    tm_put_u32(data + 48, (uint32_t)m->net[0].layers);
    tm_put_u32(data + 52, (uint32_t)m->net[1].layers);
    size_t name_at = at.names;
    for (int c = 0; c < m->classes; c++) {
        memcpy(data + name_at, m->names[c], strlen(m->names[c])); /* then a NUL, from calloc */
        name_at += strlen(m->names[c]) + 1;
    }
    for (int n = 0; n < 2; n++) {
        const tm_net *net = &m->net[n];
        for (int l = 0; l <= net->layers; l++)
            tm_put_u32(data + at.widths[n] + 4 * (size_t)l, (uint32_t)net->widths[l]);
        for (int l = 0; l < net->layers; l++) {
            tm_put_u32(data + at.params[n] + 8 * (size_t)l, (uint32_t)net->activation[l]);
            tm_put_f32(data + at.params[n] + 8 * (size_t)l + 4, net->alpha[l]);
            const size_t in = (size_t)net->widths[l], out = (size_t)net->widths[l + 1];
            for (size_t i = 0; i < out * in; i++) tm_put_f32(data + at.weight[n][l] + 4 * i, net->weight[l][i]);
            for (size_t i = 0; i < out; i++) tm_put_f32(data + at.bias[n][l] + 4 * i, net->bias[l][i]);
        }
        for (size_t i = 0; i < (size_t)m->classes * (size_t)net->widths[1]; i++)
            tm_put_f32(data + at.table[n] + 4 * i, net->table[i]);
    }
    tm_put_u32(data + at.crc, tm_crc32(data, at.crc));
    *size = at.size;
    return data;
}

/* The two models the tests and the fuzz corpus use: small, every activation, both distributions.
   unconditional: z 5 -> 9 (leaky_relu 0.2) -> 12 (tanh) = 3x4 images; D 12 -> 7 -> 1 (sigmoid).
   conditional: 3 classes named "zero", "\u00fcn" (UTF-8) and "three" (16 bytes, 1 of padding), z 6 -> 10 (relu) -> 8 (leaky_relu 0.1) -> 16 (tanh) = 4x4 images;
   D 16 -> 5 (identity) -> 3 (leaky_relu 0.3) -> 1 (sigmoid). */
static inline void tm_example(tm_model *m, int conditional) {
    memset(m, 0, sizeof *m);
    if (!conditional) {
        *m = (tm_model){.height = 3, .width = 4, .classes = 0, .distribution = 0, .scale = 1.0f,
                        .offset = 0.0f,
                        .net = {{.layers = 2, .widths = {5, 9, 12}, .activation = {1, 3}, .alpha = {0.2f, 0}},
                                {.layers = 2, .widths = {12, 7, 1}, .activation = {1, 4}, .alpha = {0.2f, 0}}}};
    } else {
        *m = (tm_model){.height = 4, .width = 4, .classes = 3, .distribution = 1, .scale = 2.0f,
                        .offset = -1.0f, .names = {"zero", "\xc3\xbcn", "three"},
                        .net = {{.layers = 3, .widths = {6, 10, 8, 16}, .activation = {2, 1, 3},
                                 .alpha = {0, 0.1f, 0}},
                                {.layers = 3, .widths = {16, 5, 3, 1}, .activation = {0, 1, 4},
                                 .alpha = {0, 0.3f, 0}}}};
    }
    tm_fill(m, conditional ? 7u : 3u);
}

#endif /* GANPACK_MODEL_WRITER_H */
