/* ganpack_model.c: the ganpack-c model file (docs/embedding-format.md) read into two dense stacks,
 * and the whole-model API of ganpack.h over them.
 *
 * Sections: the reader (a cursor over the bytes: every read is bounds-checked, every size is
 * computed in uint64_t and compared with the bytes left before anything is allocated); the
 * header; the class names; a network (widths, activations, weights into a stack); open and free;
 * facts; sample, latents, generate, score.
 *
 * Why the reader validates what the kernel would refuse anyway (alpha, widths): so that `why`
 * names the field and offset, and every bad file is GP_ERR_CORRUPT rather than a kernel code.
 * The CRC-32 is checked once the header is known to be sane and before the body is parsed: a file
 * whose bytes were damaged stops there, whatever the damage.
 */
#define _POSIX_C_SOURCE 200809L /* open, fstat, fcntl, read */
#include "ganpack.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gp_crc32.h"
#include "gp_isa.h" /* gp_isa_supported */
#include "gp_limits.h"

#define GPKC_HEADER_BYTES 64u
#define GPKC_VERSION 1u
#define GPKC_STREAM_PHILOX 1u
#define GPKC_MAX_FILE ((uint64_t)1 << 31) /* 2 GiB */
#define GPKC_MAX_SIDE 4096u
#define GPKC_MAX_NAME 255u
#define GPKC_MAX_NAMES_BYTES (1u << 20)   /* 1 MiB */
#define GPKC_FIRST_CHUNK (1u << 16)       /* bytes read at once from a file of unknown size */

struct gp_model {
    gp_stack *generator;     /* latent_dim -> height * width (its last activation as stored: tanh) */
    gp_stack *discriminator; /* height * width -> 1, sigmoid applied in C */
    int latent_dim, height, width, classes;
    int distribution;        /* gp_latent_distribution */
    float scale, offset;     /* the latent stream's, float32 as stored */
    char *names;             /* (names_bytes): the file's class-name block, NUL-terminated names */
    uint32_t *name_at;       /* (classes): offset of each name in `names` */
};

/* ---------------------------------------------------------------- the reader */

typedef struct {
    const uint8_t *data; /* (size) */
    size_t size, at;     /* at: the next byte to read */
    char *why;           /* (why_size) or NULL */
    size_t why_size;
    int at_least;        /* 1: the file goes on past `size` (gp_model_open stopped reading) */
} reader;

/* Records the reason (when the caller asked for one) and returns `status`. */
static gp_status fail(reader *r, gp_status status, const char *format, ...) {
    if (r->why != NULL && r->why_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(r->why, r->why_size, format, args);
        va_end(args);
    }
    return status;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float le_f32(const uint8_t *p) {
    const uint32_t bits = le32(p);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* True when `count` more items of `item` bytes lie within the file; the product cannot overflow
   since count < 2^32 and item <= 8. */
static int has(const reader *r, uint64_t count, uint64_t item) {
    return count * item <= (uint64_t)(r->size - r->at);
}

static gp_status read_u32(reader *r, const char *field, uint32_t *value) {
    if (!has(r, 1, 4)) return fail(r, GP_ERR_CORRUPT, "truncated: %s at offset %zu", field, r->at);
    *value = le32(r->data + r->at);
    r->at += 4;
    return GP_OK;
}

/* n float32 values from the file into `out` (n), each finite. A reason names them: `net`'s `what`
   of layer `layer` (-1: of no layer). */
static gp_status read_floats(reader *r, size_t n, float *out, const char *net, const char *what,
                             int layer) {
    char where[32] = "";
    if (layer >= 0) snprintf(where, sizeof where, " of layer %d", layer);
    if (!has(r, n, 4))
        return fail(r, GP_ERR_CORRUPT, "truncated: the %s %s%s at offset %zu", net, what, where, r->at);
    for (size_t i = 0; i < n; i++) {
        out[i] = le_f32(r->data + r->at + 4 * i);
        if (!isfinite(out[i]))
            return fail(r, GP_ERR_CORRUPT, "the %s %s%s: value %zu (offset %zu) is not finite", net,
                        what, where, i, r->at + 4 * i);
    }
    r->at += 4 * n;
    return GP_OK;
}

/* ---------------------------------------------------------------- the header */

typedef struct {
    uint32_t height, width, classes, names_bytes, layers[2]; /* layers: generator, discriminator */
} header;

/* The magic number and the version (the first 8 bytes): checked alone by gp_model_open before it
   reads the rest of a file. */
static gp_status read_magic_and_version(reader *r) {
    static const uint8_t magic[4] = {'G', 'P', 'K', 'C'};
    const size_t present = r->size < 4 ? r->size : 4;
    if (memcmp(r->data, magic, present) != 0)
        return fail(r, GP_ERR_FORMAT, "not a ganpack-c model file: its magic number is not \"GPKC\"");
    if (r->size < 8) return fail(r, GP_ERR_CORRUPT, "truncated: %zu bytes, the header is 64", r->size);
    const uint32_t version = le32(r->data + 4);
    if (version != GPKC_VERSION)
        return fail(r, GP_ERR_VERSION, "ganpack-c version %u; this library reads version 1", version);
    return GP_OK;
}

static gp_status read_header(reader *r, gp_model *m, header *h) {
    const gp_status start = read_magic_and_version(r);
    if (start != GP_OK) return start;
    if (r->size < GPKC_HEADER_BYTES)
        return fail(r, GP_ERR_CORRUPT, "truncated: %zu bytes, the header is 64", r->size);
    const uint8_t *p = r->data; /* (64): every field below lies in it */
    const uint32_t header_bytes = le32(p + 8), file_bytes = le32(p + 12), stream = le32(p + 16);
    const uint32_t distribution = le32(p + 20);
    m->scale = le_f32(p + 24);
    m->offset = le_f32(p + 28);
    h->height = le32(p + 32);
    h->width = le32(p + 36);
    h->classes = le32(p + 40);
    h->names_bytes = le32(p + 44);
    h->layers[0] = le32(p + 48);
    h->layers[1] = le32(p + 52);
    if (header_bytes != GPKC_HEADER_BYTES)
        return fail(r, GP_ERR_CORRUPT, "header_bytes (offset 8) is %u, not 64", header_bytes);
    const char *at_least = r->at_least ? "at least " : "";
    if ((uint64_t)r->size > GPKC_MAX_FILE)
        return fail(r, GP_ERR_CORRUPT, "the file is %s%zu bytes, more than 2 GiB", at_least, r->size);
    if (file_bytes != r->size || r->at_least)
        return fail(r, GP_ERR_CORRUPT, "file_bytes (offset 12) is %u, the file is %s%zu bytes%s",
                    file_bytes, at_least, r->size, file_bytes > r->size ? " (truncated)" : "");
    if (stream != GPKC_STREAM_PHILOX)
        return fail(r, GP_ERR_CORRUPT, "latent_stream (offset 16) is %u; 1 (ganpack-philox/1) is "
                    "the only one", stream);
    if (distribution > GP_LATENT_UNIFORM)
        return fail(r, GP_ERR_CORRUPT, "latent_distribution (offset 20) is %u, not 0 or 1", distribution);
    m->distribution = (int)distribution;
    if (!isfinite(m->scale)) return fail(r, GP_ERR_CORRUPT, "latent_scale (offset 24) is not finite");
    if (!isfinite(m->offset)) return fail(r, GP_ERR_CORRUPT, "latent_offset (offset 28) is not finite");
    if (h->height < 1 || h->height > GPKC_MAX_SIDE || h->width < 1 || h->width > GPKC_MAX_SIDE)
        return fail(r, GP_ERR_CORRUPT, "image_height x image_width (offsets 32, 36) is %ux%u, "
                    "sides must lie in 1..4096", h->height, h->width);
    if ((uint64_t)h->height * h->width > GP_MAX_WIDTH)
        return fail(r, GP_ERR_CORRUPT, "image %ux%u has more than 2^20 pixels", h->height, h->width);
    if (h->classes > GP_MAX_CLASSES)
        return fail(r, GP_ERR_CORRUPT, "classes (offset 40) is %u, more than 65536", h->classes);
    if (h->names_bytes % 4 != 0 || h->names_bytes > GPKC_MAX_NAMES_BYTES ||
        (h->classes == 0) != (h->names_bytes == 0) || h->names_bytes < 2ull * h->classes)
        return fail(r, GP_ERR_CORRUPT, "names_bytes (offset 44) is %u: for %u classes it must be a "
                    "multiple of 4, at most 1 MiB, 0 without classes, and at least 2 per class",
                    h->names_bytes, h->classes);
    for (int net = 0; net < 2; net++)
        if (h->layers[net] < 1 || h->layers[net] > GP_MAX_LAYERS)
            return fail(r, GP_ERR_CORRUPT, "%s_layers (offset %d) is %u, not in 1..64",
                        net ? "discriminator" : "generator", 48 + 4 * net, h->layers[net]);
    for (size_t i = 56; i < GPKC_HEADER_BYTES; i++)
        if (p[i] != 0) return fail(r, GP_ERR_CORRUPT, "reserved byte at offset %zu is not zero", i);
    if (r->size < GPKC_HEADER_BYTES + 4)
        return fail(r, GP_ERR_CORRUPT, "truncated: %zu bytes, a header and a CRC-32 are 68", r->size);
    const uint32_t stored = le32(r->data + r->size - 4), computed = gp_crc32(0, r->data, r->size - 4);
    if (stored != computed)
        return fail(r, GP_ERR_CORRUPT, "CRC-32 mismatch: the file says %08x, its bytes give %08x",
                    stored, computed);
    r->size -= 4; /* the body ends where the CRC-32 starts */
    r->at = GPKC_HEADER_BYTES;
    return GP_OK;
}

/* ---------------------------------------------------------------- the class names */

/* Length of the well-formed UTF-8 sequence at s[0..n) (1..4), or 0 if it is not one. */
static size_t utf8_sequence(const uint8_t *s, size_t n) {
    const uint8_t c = s[0];
    size_t length;
    uint32_t code;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) length = 2, code = c & 0x1Fu;
    else if (c >= 0xE0 && c <= 0xEF) length = 3, code = c & 0x0Fu;
    else if (c >= 0xF0 && c <= 0xF4) length = 4, code = c & 0x07u;
    else return 0;
    if (length > n) return 0;
    for (size_t i = 1; i < length; i++) {
        if ((s[i] & 0xC0u) != 0x80u) return 0;
        code = code << 6 | (s[i] & 0x3Fu);
    }
    const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000}; /* no overlong forms */
    if (code < least[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
    return length;
}

static gp_status read_names(reader *r, gp_model *m, const header *h) {
    if (!has(r, h->names_bytes, 1))
        return fail(r, GP_ERR_CORRUPT, "truncated: the class names at offset %zu", r->at);
    if (h->classes == 0) return GP_OK; /* names_bytes is 0 too */
    const uint8_t *block = r->data + r->at; /* (names_bytes) */
    m->names = malloc(h->names_bytes);
    m->name_at = malloc(h->classes * sizeof *m->name_at);
    if (m->names == NULL || m->name_at == NULL) return fail(r, GP_ERR_NOMEM, "out of memory");
    memcpy(m->names, block, h->names_bytes);
    size_t at = 0;
    for (uint32_t c = 0; c < h->classes; c++) {
        const uint8_t *end = memchr(block + at, 0, h->names_bytes - at);
        const size_t length = end == NULL ? h->names_bytes - at : (size_t)(end - (block + at));
        if (end == NULL || length < 1 || length > GPKC_MAX_NAME)
            return fail(r, GP_ERR_CORRUPT, "class name %u (offset %zu) is not 1..255 bytes ended "
                        "by a NUL within names_bytes", c, r->at + at);
        for (size_t i = 0, step; i < length; i += step)
            if ((step = utf8_sequence(block + at + i, length - i)) == 0)
                return fail(r, GP_ERR_CORRUPT, "class name %u: byte %zu (offset %zu) is not UTF-8",
                            c, i, r->at + at + i);
        m->name_at[c] = (uint32_t)at;
        at += length + 1;
    }
    for (; at < h->names_bytes; at++)
        if (block[at] != 0)
            return fail(r, GP_ERR_CORRUPT, "name padding at offset %zu is not zero", r->at + at);
    r->at += h->names_bytes;
    return GP_OK;
}

/* ---------------------------------------------------------------- a network */

/* Reads one network (net 0 generator, 1 discriminator) of n_layers into a new stack *out. first
   and last: what widths[0] and widths[n_layers] must be (first 0: any, the latent dim). */
static gp_status read_network(reader *r, int net, uint32_t n_layers, uint32_t first, uint32_t last,
                              const header *h, int isa, int n_threads, gp_stack **out) {
    const char *name = net ? "discriminator" : "generator";
    int widths[GP_MAX_LAYERS + 1];
    uint32_t activation[GP_MAX_LAYERS] = {0};
    float alpha[GP_MAX_LAYERS] = {0};
    uint64_t floats = 0, largest = 0; /* the network's weights + biases + table; one layer's */
    for (uint32_t l = 0; l <= n_layers; l++) {
        uint32_t width = 0;
        const size_t at = r->at;
        gp_status s = read_u32(r, "a width", &width);
        if (s != GP_OK) return s;
        if (width < 1 || width > GP_MAX_WIDTH)
            return fail(r, GP_ERR_CORRUPT, "%s widths[%u] (offset %zu) is %u, not in 1..2^20", name, l,
                        at, width);
        if ((l == 0 && first != 0 && width != first) || (l == n_layers && width != last))
            return fail(r, GP_ERR_CORRUPT, "%s widths[%u] (offset %zu) is %u, must be %u", name, l,
                        at, width, l == 0 ? first : last);
        widths[l] = (int)width;
    }
    for (uint32_t l = 0; l < n_layers; l++) {
        const size_t at = r->at;
        gp_status s = read_u32(r, "an activation", &activation[l]);
        if (s == GP_OK) s = read_floats(r, 1, &alpha[l], name, "alpha", (int)l);
        if (s != GP_OK) return s;
        if (activation[l] > GP_ACT_SIGMOID)
            return fail(r, GP_ERR_CORRUPT, "%s layer %u: unknown activation %u (offset %zu)", name,
                        l, activation[l], at);
        const int leaky = activation[l] == GP_ACT_LEAKY_RELU;
        if (leaky ? !(alpha[l] >= 0.0f && alpha[l] < 1.0f) : alpha[l] != 0.0f)
            return fail(r, GP_ERR_CORRUPT, "%s layer %u: alpha (offset %zu) must be %s", name, l,
                        at + 4, leaky ? "in [0, 1) for leaky_relu" : "0 for this activation");
        const uint64_t layer = (uint64_t)widths[l + 1] * (uint64_t)widths[l] + (uint64_t)widths[l + 1];
        floats += layer;
        if (layer > largest) largest = layer;
    }
    if (net == 1 && activation[n_layers - 1] != GP_ACT_SIGMOID)
        return fail(r, GP_ERR_CORRUPT, "discriminator: its last activation is %u, not sigmoid (4)",
                    activation[n_layers - 1]);
    const uint64_t table = (uint64_t)h->classes * (uint64_t)widths[1]; /* (classes, widths[1]) */
    floats += table;
    if (table > largest) largest = table;
    if (!has(r, floats, 4)) /* before any allocation: the sizes are the file's own */
        return fail(r, GP_ERR_CORRUPT, "truncated: the %s's %llu weights need %llu bytes from offset "
                    "%zu", name, (unsigned long long)floats, (unsigned long long)floats * 4, r->at);
    gp_status s = gp_stack_create_threads((int)n_layers, widths, isa, n_threads, out);
    if (s != GP_OK) return fail(r, s, "%s: %s", name, gp_status_message((int)s));
    float *buffer = malloc((size_t)largest * sizeof(float)); /* one layer: weight (out, in), bias (out) */
    if (buffer == NULL) return fail(r, GP_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < n_layers && s == GP_OK; l++) {
        const size_t n_weight = (size_t)widths[l + 1] * (size_t)widths[l];
        s = read_floats(r, n_weight, buffer, name, "weight", (int)l);
        if (s == GP_OK) s = read_floats(r, (size_t)widths[l + 1], buffer + n_weight, name, "bias", (int)l);
        if (s == GP_OK) {
            s = gp_stack_set_layer(*out, (int)l, buffer, buffer + n_weight, (int)activation[l], alpha[l]);
            if (s != GP_OK) fail(r, s, "%s layer %u: %s", name, l, gp_status_message((int)s));
        }
    }
    if (s == GP_OK && h->classes > 0) {
        s = read_floats(r, (size_t)table, buffer, name, "class-bias table", -1);
        if (s == GP_OK) {
            s = gp_stack_set_class_bias(*out, (int)h->classes, buffer);
            if (s != GP_OK) fail(r, s, "%s class-bias table: %s", name, gp_status_message((int)s));
        }
    }
    free(buffer);
    return s;
}

/* ---------------------------------------------------------------- open and free */

/* The caller's isa and n_threads, checked as gp_stack_create_threads would (same codes) but
   before any file is read, and with a `why` that names them rather than the model. */
static gp_status check_arguments(reader *r, int isa, int n_threads) {
    if (n_threads < 0 || n_threads > GP_MAX_THREADS)
        return fail(r, GP_ERR_SHAPE, "n_threads %d is outside 0..%d", n_threads, GP_MAX_THREADS);
    if (isa != GP_ISA_AUTO && !gp_isa_supported(isa))
        return fail(r, GP_ERR_UNSUPPORTED_ISA, "isa %d (%s): not supported by this CPU or build", isa,
                    gp_isa_name(isa));
    return GP_OK;
}

/* gp_model_open_memory, where at_least = 1 says the file goes on past `size` bytes. */
static gp_status open_bytes(const void *data, size_t size, int at_least, int isa, int n_threads,
                            gp_model **out, char *why, size_t why_size) {
    reader r = {data, size, 0, why, why_size, at_least};
    if (why != NULL && why_size > 0) why[0] = '\0';
    if (out != NULL) *out = NULL;
    if (out == NULL || (data == NULL && size > 0)) return fail(&r, GP_ERR_NULL, "a required pointer is NULL");
    gp_status s = check_arguments(&r, isa, n_threads);
    if (s != GP_OK) return s;
    if (size == 0) return fail(&r, GP_ERR_CORRUPT, "truncated: the file is empty");
    gp_model *m = calloc(1, sizeof *m);
    if (m == NULL) return fail(&r, GP_ERR_NOMEM, "out of memory");
    header h = {0, 0, 0, 0, {0, 0}};
    s = read_header(&r, m, &h);
    if (s == GP_OK) s = read_names(&r, m, &h);
    const uint32_t pixels = h.height * h.width; /* <= 2^20, checked in read_header */
    if (s == GP_OK) s = read_network(&r, 0, h.layers[0], 0, pixels, &h, isa, n_threads, &m->generator);
    if (s == GP_OK)
        s = read_network(&r, 1, h.layers[1], pixels, 1, &h, isa, n_threads, &m->discriminator);
    if (s == GP_OK && r.at != r.size) /* the CRC-32 must follow the last network directly */
        s = fail(&r, GP_ERR_CORRUPT, "%zu bytes between the discriminator (ending at offset %zu) "
                 "and the CRC-32", r.size - r.at, r.at);
    if (s != GP_OK) {
        gp_model_free(m);
        return s;
    }
    m->latent_dim = (int)le32(r.data + GPKC_HEADER_BYTES + h.names_bytes); /* generator widths[0] */
    m->height = (int)h.height;
    m->width = (int)h.width;
    m->classes = (int)h.classes;
    *out = m;
    return GP_OK;
}

gp_status gp_model_open_memory(const void *data, size_t size, int isa, int n_threads,
                               gp_model **out, char *why, size_t why_size) {
    return open_bytes(data, size, 0, isa, n_threads, out, why, why_size);
}

/* The bytes of a file as gp_model_open reads them: never more allocated than read plus the next
   chunk (or the size fstat gave, for a regular file). */
typedef struct {
    uint8_t *data; /* (capacity), the first `size` read */
    size_t size, capacity, hint; /* hint: a regular file's size + 1, else 0 */
    int end;       /* read returned 0: `size` is the whole file */
} file_bytes;

/* Reads until `want` bytes are in or the file ends; GP_ERR_FILE / GP_ERR_NOMEM on failure. */
static gp_status read_until(reader *r, int fd, const char *path, file_bytes *f, size_t want) {
    while (f->size < want && !f->end) {
        if (f->size == f->capacity) { /* grow: double, or to the regular file's size; never past want */
            size_t grow = f->capacity < GPKC_FIRST_CHUNK ? GPKC_FIRST_CHUNK : f->capacity * 2;
            if (grow < f->hint) grow = f->hint;
            if (grow > want) grow = want;
            uint8_t *grown = realloc(f->data, grow);
            if (grown == NULL) return fail(r, GP_ERR_NOMEM, "out of memory reading '%s'", path);
            f->data = grown, f->capacity = grow;
        }
        const size_t room = (want < f->capacity ? want : f->capacity) - f->size;
        const ssize_t got = read(fd, f->data + f->size, room);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return fail(r, GP_ERR_FILE, "cannot read '%s': %s", path, strerror(errno));
        if (got == 0) f->end = 1;
        f->size += (size_t)got;
    }
    return GP_OK;
}

/* Opens without blocking (a FIFO with no writer would block in open), refuses a directory and a
   regular file over 2 GiB by their fstat, then reads the header, checks the magic number and the
   version, and reads on only up to file_bytes + 1 (2 GiB + 1 at most): enough to see that a file
   is too long, without reading, say, /dev/zero to its end. */
gp_status gp_model_open(const char *path, int isa, int n_threads, gp_model **out, char *why,
                        size_t why_size) {
    reader r = {NULL, 0, 0, why, why_size, 0};
    if (why != NULL && why_size > 0) why[0] = '\0';
    if (out != NULL) *out = NULL;
    if (path == NULL || out == NULL) return fail(&r, GP_ERR_NULL, "a required pointer is NULL");
    gp_status s = check_arguments(&r, isa, n_threads);
    if (s != GP_OK) return s;
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fail(&r, GP_ERR_FILE, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    file_bytes f = {NULL, 0, 0, 0, 0};
    const int flags = fstat(fd, &st) == 0 ? fcntl(fd, F_GETFL) : -1;
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) /* then a FIFO with no writer reads EOF */
        s = fail(&r, GP_ERR_FILE, "cannot open '%s': %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        s = fail(&r, GP_ERR_FILE, "cannot read '%s': %s", path, strerror(EISDIR));
    else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > GPKC_MAX_FILE)
        s = fail(&r, GP_ERR_CORRUPT, "'%s' is %llu bytes, more than 2 GiB", path,
                 (unsigned long long)st.st_size);
    else if (S_ISREG(st.st_mode) && st.st_size > 0)
        f.hint = (size_t)st.st_size + 1;
    if (s == GP_OK) s = read_until(&r, fd, path, &f, GPKC_HEADER_BYTES);
    if (s == GP_OK && f.size >= 8 && !f.end) {
        reader start = {f.data, f.size, 0, why, why_size, 0};
        s = read_magic_and_version(&start);
        uint64_t limit = GPKC_MAX_FILE + 1; /* past file_bytes, or 2 GiB: too long either way */
        if (s == GP_OK && f.size >= 16 && (uint64_t)le32(f.data + 12) + 1 < limit)
            limit = (uint64_t)le32(f.data + 12) + 1;
        if (limit < GPKC_HEADER_BYTES + 1) limit = GPKC_HEADER_BYTES + 1;
        if (s == GP_OK) s = read_until(&r, fd, path, &f, (size_t)limit);
    }
    close(fd);
    if (s == GP_OK) s = open_bytes(f.data, f.size, !f.end, isa, n_threads, out, why, why_size);
    free(f.data);
    return s;
}

void gp_model_free(gp_model *model) {
    if (model == NULL) return;
    gp_stack_free(model->generator);
    gp_stack_free(model->discriminator);
    free(model->names);
    free(model->name_at);
    free(model);
}

/* ---------------------------------------------------------------- facts */

int gp_model_latent_dim(const gp_model *model) { return model ? model->latent_dim : -1; }
int gp_model_image_height(const gp_model *model) { return model ? model->height : -1; }
int gp_model_image_width(const gp_model *model) { return model ? model->width : -1; }
int gp_model_classes(const gp_model *model) { return model ? model->classes : -1; }
int gp_model_isa(const gp_model *model) { return model ? gp_stack_isa(model->generator) : -1; }
int gp_model_threads(const gp_model *model) { return model ? gp_stack_threads(model->generator) : -1; }

const char *gp_model_class_name(const gp_model *model, int label) {
    if (model == NULL || label < 0 || label >= model->classes) return NULL;
    return model->names + model->name_at[label];
}

/* ---------------------------------------------------------------- sample, latents, generate, score */

/* GP_ERR_ARGUMENT unless labels are given exactly when the model is conditional. */
static gp_status check_labels(const gp_model *model, const int32_t *labels) {
    return (labels != NULL) == (model->classes > 0) ? GP_OK : GP_ERR_ARGUMENT;
}

gp_status gp_model_sample(const gp_model *model, uint64_t seed, int64_t first_row, int n,
                          const int32_t *labels, void *out, int output_dtype) {
    if (model == NULL) return GP_ERR_NULL;
    if (n == 0) return GP_OK;
    gp_status s = check_labels(model, labels);
    if (s != GP_OK) return s;
    if (labels == NULL)
        return gp_stack_sample(model->generator, seed, first_row, n, model->distribution,
                               model->scale, model->offset, out, output_dtype);
    return gp_stack_sample_labels(model->generator, seed, first_row, n, model->distribution,
                                  model->scale, model->offset, labels, out, output_dtype);
}

gp_status gp_model_latents(const gp_model *model, uint64_t seed, int64_t first_row, int n, float *z) {
    if (model == NULL) return GP_ERR_NULL;
    return gp_latents(seed, first_row, n, model->latent_dim, model->distribution, model->scale,
                      model->offset, z);
}

gp_status gp_model_generate(const gp_model *model, const float *z, int n, const int32_t *labels,
                            void *out, int output_dtype) {
    if (model == NULL) return GP_ERR_NULL;
    if (n == 0) return GP_OK;
    gp_status s = check_labels(model, labels);
    if (s != GP_OK) return s;
    if (labels == NULL)
        return gp_stack_run_typed(model->generator, z, GP_F32_FINITE, n, out, output_dtype);
    return gp_stack_run_labels(model->generator, z, GP_F32_FINITE, labels, n, out, output_dtype);
}

gp_status gp_model_score(const gp_model *model, const void *images, int images_dtype, int n,
                         const int32_t *labels, float *probabilities) {
    if (model == NULL) return GP_ERR_NULL;
    if (images_dtype != GP_U8 && images_dtype != GP_F32) return GP_ERR_ARGUMENT;
    if (n == 0) return GP_OK;
    gp_status s = check_labels(model, labels);
    if (s != GP_OK) return s;
    /* float images are range-checked by the kernel chunk by chunk (GP_F32_IMAGE); the output is
       (n, 1), that is (n) probabilities */
    const int input = images_dtype == GP_U8 ? GP_U8 : GP_F32_IMAGE;
    if (labels == NULL)
        return gp_stack_run_typed(model->discriminator, images, input, n, probabilities, GP_F32);
    return gp_stack_run_labels(model->discriminator, images, input, labels, n, probabilities, GP_F32);
}
