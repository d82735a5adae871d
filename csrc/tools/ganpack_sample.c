/* ganpack-sample: digits from a ganpack-c model file (ganpack.h), as a PNG or PGM grid.
 *
 *   ganpack-sample MODEL.gpkc [-n 64] [--seed S] [--digit D] [-o digits.png|digits.pgm]
 *                  [--columns C] [--threads T] [--isa auto|portable|avx2_fma|avx512] [--info] [--time]
 *
 * The grid has exactly the layout of ganpack's Python grids (runtime/ganpack/grid.py, save_grid):
 * `columns` columns (default ceil(sqrt(n))), 2 black pixels around each cell, then every pixel a
 * 2x2 block; a PNG carries the same `ganpack-grid` tEXt chunk, so `ganpack score grid.png` reads
 * its digits back. The PNG is 8-bit grayscale, its pixels in stored (uncompressed) deflate blocks:
 * no zlib needed. The digits are those of `Model.sample(n, seed)` (`label=D`) on the same ISA.
 *
 * --info prints the model's facts; --time prints to stderr the time of the sample call alone,
 * best of TIME_REPEATS, as "ganpack-sample: time: X us per digit (...)". The grid is written when
 * -o is given, or when neither --info nor --time is (to digits.png). Errors: one line on stderr,
 * "ganpack-sample: error: ...", and exit status 2 (bad input: options, model file, output;
 * control characters in it, say a newline in a path, escaped as \n or \xHH). The grid is written to
 * a temporary file beside the output (".NAME.partial.XXXXXX") and renamed over it once complete:
 * a failed write leaves an existing output untouched and no partial file.
 * This file lives in tools/ because it has a main(): every .c file directly in csrc/ is the library.
 */
#define _POSIX_C_SOURCE 200809L
#include "ganpack.h"
#include "gp_crc32.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h> /* fchmod, umask */
#include <time.h>
#include <unistd.h>   /* close, unlink */

#define MAX_DIGITS 10000          /* as `ganpack sample`: a PNG grid of more is not for looking at */
#define MAX_GRID_PIXELS (1u << 28) /* 256 MiB of pixels, scaled */
#define PADDING 2
#define SCALE 2
#define TIME_REPEATS 5

typedef struct {
    const char *model, *output;
    int n, digit, columns, threads, isa, info, time, output_given; /* digit -1: none */
    uint64_t seed;
} options;

/* One line on stderr, whatever the paths in it hold; returns the exit status, 2. */
static int error(const char *format, ...) {
    char message[8192];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    fputs("ganpack-sample: error: ", stderr);
    for (const unsigned char *c = (const unsigned char *)message; *c != '\0'; c++) {
        if (*c == '\n') fputs("\\n", stderr);
        else if (*c == '\t') fputs("\\t", stderr);
        else if (*c == '\r') fputs("\\r", stderr);
        else if (*c < 0x20 || *c == 0x7f) fprintf(stderr, "\\x%02x", *c);
        else fputc(*c, stderr);
    }
    fputc('\n', stderr);
    return 2;
}

/* ---------------------------------------------------------------- options */

static const char USAGE[] =
    "usage: ganpack-sample MODEL.gpkc [-n 64] [--seed S] [--digit D] [-o digits.png|digits.pgm]\n"
    "                      [--columns C] [--threads T] [--isa auto|portable|avx2_fma|avx512]\n"
    "                      [--info] [--time]\n";

/* A plain decimal number (digits only) in [0, max] into *value; 0 if it is not one. */
static int parse_number(const char *text, uint64_t max, uint64_t *value) {
    uint64_t v = 0;
    if (text == NULL || text[0] == '\0') return 0;
    for (const char *c = text; *c != '\0'; c++) {
        if (*c < '0' || *c > '9') return 0;
        const uint64_t digit = (uint64_t)(*c - '0');
        if (v > (max - digit) / 10) return 0;
        v = v * 10 + digit;
    }
    *value = v;
    return 1;
}

static int parse_isa(const char *text, int *isa) {
    const char *names[4] = {"auto", "portable", "avx2_fma", "avx512"};
    const int codes[4] = {GP_ISA_AUTO, GP_ISA_PORTABLE, GP_ISA_AVX2_FMA, GP_ISA_AVX512};
    for (int i = 0; i < 4; i++)
        if (text != NULL && strcmp(text, names[i]) == 0) return *isa = codes[i], 1;
    return 0;
}

/* 0 (*done set after --help), or the exit status after printing the error. */
static int parse_options(int argc, char **argv, options *o, int *done) {
    *o = (options){NULL, "digits.png", 64, -1, 0, 0, GP_ISA_AUTO, 0, 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(USAGE, stdout);
            *done = 1;
            return 0;
        }
        if (strcmp(arg, "--info") == 0) { o->info = 1; continue; }
        if (strcmp(arg, "--time") == 0) { o->time = 1; continue; }
        if (arg[0] != '-' || arg[1] == '\0') {
            if (o->model != NULL) return error("more than one model file ('%s', '%s')", o->model, arg);
            o->model = arg;
            continue;
        }
        /* an option with a value: "--seed 5" or "--seed=5" */
        const char *names[7] = {"-n", "--seed", "--digit", "-o", "--columns", "--threads", "--isa"};
        const char *equals = strchr(arg, '=');
        const size_t name_length = equals != NULL ? (size_t)(equals - arg) : strlen(arg);
        int which = -1;
        for (int k = 0; k < 7; k++)
            if (strlen(names[k]) == name_length && strncmp(arg, names[k], name_length) == 0) which = k;
        if (which < 0) return error("unknown option '%s' (see --help)", arg);
        const char *value = equals != NULL ? equals + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (value == NULL) return error("%s needs a value", names[which]);
        uint64_t number = 0;
        const uint64_t max[7] = {MAX_DIGITS, UINT64_MAX, 65535, 0, MAX_DIGITS, 64, 0};
        if (which != 3 && which != 6 && (!parse_number(value, max[which], &number) ||
                                         (number == 0 && (which == 0 || which == 4))))
            return error("%s '%s' is not a whole number in %s..%llu", names[which], value,
                         which == 0 || which == 4 ? "1" : "0", (unsigned long long)max[which]);
        switch (which) {
        case 0: o->n = (int)number; break;
        case 1: o->seed = number; break;
        case 2: o->digit = (int)number; break;
        case 3: o->output = value, o->output_given = 1; break;
        case 4: o->columns = (int)number; break;
        case 5: o->threads = (int)number; break;
        default:
            if (!parse_isa(value, &o->isa))
                return error("--isa '%s' is not one of auto, portable, avx2_fma, avx512", value);
        }
    }
    if (o->model == NULL) return error("no model file given (usage: ganpack-sample MODEL.gpkc ...)");
    return 0;
}

/* ---------------------------------------------------------------- the grid */

typedef struct {
    int n, columns, rows, cell_height, cell_width;
    size_t height, width; /* of the picture, scaled */
    uint8_t *pixels;      /* (height, width) */
} grid;

/* Tiles images (n, cell_height * cell_width) as grid.py's tile, then scales by SCALE. */
static int make_grid(grid *g, const uint8_t *images) {
    g->rows = (g->n + g->columns - 1) / g->columns;
    g->height = (size_t)SCALE * ((size_t)g->rows * (size_t)(g->cell_height + PADDING) + PADDING);
    g->width = (size_t)SCALE * ((size_t)g->columns * (size_t)(g->cell_width + PADDING) + PADDING);
    if (g->height * g->width > MAX_GRID_PIXELS)
        return error("a %zux%zu grid is too large (over %u pixels)", g->width, g->height, MAX_GRID_PIXELS);
    g->pixels = calloc(g->height * g->width, 1);
    if (g->pixels == NULL) return error("out of memory for a %zux%zu grid", g->width, g->height);
    for (int i = 0; i < g->n; i++) {
        const size_t top = PADDING + (size_t)(i / g->columns) * (size_t)(g->cell_height + PADDING);
        const size_t left = PADDING + (size_t)(i % g->columns) * (size_t)(g->cell_width + PADDING);
        for (size_t y = 0; y < (size_t)g->cell_height * SCALE; y++)
            for (size_t x = 0; x < (size_t)g->cell_width * SCALE; x++)
                g->pixels[(top * SCALE + y) * g->width + left * SCALE + x] =
                    images[((size_t)i * (size_t)g->cell_height + y / SCALE) * (size_t)g->cell_width + x / SCALE];
    }
    return 0;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* One PNG chunk: length, type, data, CRC-32 of type and data. */
static int put_chunk(FILE *file, const char type[4], const uint8_t *data, size_t size) {
    uint8_t head[8], tail[4];
    put_be32(head, (uint32_t)size);
    memcpy(head + 4, type, 4);
    put_be32(tail, gp_crc32(gp_crc32(0, head + 4, 4), data, size));
    return fwrite(head, 1, 8, file) == 8 && (size == 0 || fwrite(data, 1, size, file) == size) &&
           fwrite(tail, 1, 4, file) == 4;
}

/* The PNG's bytes into `file`: IHDR, the ganpack-grid tEXt, one IDAT holding a zlib stream of
   stored deflate blocks (each at most 65535 bytes) of the rows (filter byte 0, pixels), IEND. */
static int put_png(FILE *file, const grid *g) {
    const size_t raw = g->height * (g->width + 1), blocks = (raw + 65534) / 65535;
    const size_t size = 2 + raw + 5 * blocks + 4;
    uint8_t *zlib = malloc(size);
    if (zlib == NULL) return 0;
    zlib[0] = 0x78, zlib[1] = 0x01; /* deflate, 32 KiB window, no dictionary: (0x7801 % 31 == 0) */
    size_t at = 2, done = 0, row = 0, column = 0;
    uint32_t a = 1, b = 0; /* adler32 */
    while (done < raw) {
        const size_t length = raw - done < 65535 ? raw - done : 65535;
        zlib[at] = done + length == raw ? 1 : 0; /* BFINAL, BTYPE 00 (stored) */
        zlib[at + 1] = (uint8_t)length, zlib[at + 2] = (uint8_t)(length >> 8);
        zlib[at + 3] = (uint8_t)~length, zlib[at + 4] = (uint8_t)(~length >> 8);
        at += 5;
        for (size_t i = 0; i < length; i++) { /* byte `column` of row `row`: 0 is the filter */
            const uint8_t byte = column == 0 ? 0 : g->pixels[row * g->width + column - 1];
            zlib[at++] = byte;
            a = (a + byte) % 65521u, b = (b + a) % 65521u;
            if (++column == g->width + 1) column = 0, row++;
        }
        done += length;
    }
    put_be32(zlib + at, b << 16 | a);
    uint8_t header[13] = {0};
    put_be32(header, (uint32_t)g->width);
    put_be32(header + 4, (uint32_t)g->height);
    header[8] = 8; /* bits per pixel; color type 0 (grayscale), compression, filter, interlace 0 */
    char text[160];
    const int text_length = snprintf(text, sizeof text, "ganpack-grid%cversion=1 n=%d columns=%d rows=%d "
                                     "cell=%dx%d padding=%d scale=%d", 0, g->n, g->columns, g->rows,
                                     g->cell_width, g->cell_height, PADDING, SCALE);
    const int ok = fwrite("\x89PNG\r\n\x1a\n", 1, 8, file) == 8 && put_chunk(file, "IHDR", header, 13) &&
                   put_chunk(file, "tEXt", (const uint8_t *)text, (size_t)text_length) &&
                   put_chunk(file, "IDAT", zlib, size) && put_chunk(file, "IEND", NULL, 0);
    free(zlib);
    return ok;
}

static int write_grid(const char *path, const grid *g) {
    const size_t length = strlen(path);
    const int png = length > 4 && strcmp(path + length - 4, ".png") == 0;
    const int pgm = length > 4 && strcmp(path + length - 4, ".pgm") == 0;
    if (!png && !pgm) return error("output '%s' must end in .png or .pgm", path);
    /* the temporary: DIR/.NAME.partial.XXXXXX, in the output's folder so that rename() is atomic */
    const char *slash = strrchr(path, '/');
    const size_t folder = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    char *temporary = malloc(length + 32);
    if (temporary == NULL) return error("out of memory");
    snprintf(temporary, length + 32, "%.*s.%s.partial.XXXXXX", (int)folder, path, path + folder);
    const int fd = mkstemp(temporary);
    if (fd < 0) {
        const int saved = errno;
        free(temporary);
        return error("cannot write '%s': %s", path, strerror(saved));
    }
    const mode_t mask = umask(0); /* the final file as fopen would make it: 0666 & ~umask */
    umask(mask);
    FILE *file = fchmod(fd, 0666 & ~mask) == 0 ? fdopen(fd, "wb") : NULL;
    int ok = file != NULL;
    errno = 0;
    if (ok) ok = png ? put_png(file, g)
                     : fprintf(file, "P5\n%zu %zu\n255\n", g->width, g->height) > 0 &&
                           fwrite(g->pixels, 1, g->height * g->width, file) == g->height * g->width;
    int saved = errno;
    if (file != NULL) {
        ok = fflush(file) == 0 && !ferror(file) && ok;
        if (!ok && saved == 0) saved = errno;
        ok = fclose(file) == 0 && ok;
    } else {
        close(fd);
    }
    if (!ok && saved == 0) saved = errno;
    if (ok && rename(temporary, path) != 0) ok = 0, saved = errno;
    if (!ok) unlink(temporary);
    free(temporary);
    if (!ok) return error("cannot write '%s': %s", path, saved ? strerror(saved) : "write failed");
    return 0;
}

/* ---------------------------------------------------------------- main */

static void print_info(const options *o, const gp_model *model) {
    printf("model: %s\nlatent dim: %d\nimage: %dx%d (height x width)\nclasses: %d", o->model,
           gp_model_latent_dim(model), gp_model_image_height(model), gp_model_image_width(model),
           gp_model_classes(model));
    for (int c = 0; c < gp_model_classes(model); c++)
        printf("%s%d %s", c == 0 ? " (" : ", ", c, gp_model_class_name(model, c));
    printf("%s\nisa: %s\nthreads: %d\n", gp_model_classes(model) ? ")" : " (unconditional)",
           gp_isa_name(gp_model_isa(model)), gp_model_threads(model));
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int run(const options *o, gp_model *model, grid *g, int32_t *labels) {
    const int classes = gp_model_classes(model);
    /* a --digit given is checked whatever else is asked (--info too) */
    if (classes == 0 && o->digit >= 0)
        return error("--digit %d: the model '%s' is unconditional (it has no classes)", o->digit, o->model);
    if (o->digit >= classes && classes > 0)
        return error("--digit %d is out of range: the model has %d classes, 0..%d", o->digit, classes,
                     classes - 1);
    if (o->info) print_info(o, model);
    const int write = o->output_given || (!o->info && !o->time);
    if (!write && !o->time) return 0; /* --info alone needs no --digit */
    if (classes > 0 && o->digit < 0)
        return error("the model '%s' is class-conditional (%d classes): give --digit 0..%d", o->model,
                     classes, classes - 1);
    const size_t pixels = (size_t)gp_model_image_height(model) * (size_t)gp_model_image_width(model);
    uint8_t *images = malloc((size_t)o->n * pixels); /* (n, height * width) */
    if (images == NULL) return error("out of memory for %d images", o->n);
    for (int i = 0; i < o->n; i++) labels[i] = o->digit;
    double best = -1.0;
    gp_status s = GP_OK;
    for (int repeat = 0; repeat < (o->time ? TIME_REPEATS : 1) && s == GP_OK; repeat++) {
        const double start = seconds_now();
        s = gp_model_sample(model, o->seed, 0, o->n, classes ? labels : NULL, images, GP_U8);
        const double took = seconds_now() - start;
        if (best < 0.0 || took < best) best = took;
    }
    int status = s == GP_OK ? 0 : error("sampling failed: %s", gp_status_message((int)s));
    if (status == 0 && o->time)
        fprintf(stderr, "ganpack-sample: time: %.3f us per digit (best of %d sample calls of %d digits, "
                "isa %s, %d threads)\n", 1e6 * best / o->n, TIME_REPEATS, o->n,
                gp_isa_name(gp_model_isa(model)), gp_model_threads(model));
    if (status == 0 && write) {
        g->n = o->n;
        g->cell_height = gp_model_image_height(model);
        g->cell_width = gp_model_image_width(model);
        g->columns = o->columns;
        if (g->columns == 0) /* grid.py's ceil(sqrt(n)), in integers */
            for (g->columns = 1; g->columns * g->columns < o->n;) g->columns++;
        status = make_grid(g, images);
        if (status == 0) status = write_grid(o->output, g);
    }
    free(images);
    return status;
}

/* The exit status once stdout is flushed: output lost (say to /dev/full) is an error too. */
static int flushed(int status) {
    if ((fflush(stdout) != 0 || ferror(stdout)) && status == 0)
        return error("cannot write to standard output: %s", errno ? strerror(errno) : "write failed");
    return status;
}

static int run_program(int argc, char **argv) {
    options o;
    int done = 0;
    int status = parse_options(argc, argv, &o, &done);
    if (status != 0 || done) return status;
    char why[4352] = ""; /* room for a path of PATH_MAX (4096) */
    gp_model *model = NULL;
    const gp_status s = gp_model_open(o.model, o.isa, o.threads, &model, why, sizeof why);
    if (s == GP_ERR_UNSUPPORTED_ISA && o.isa != GP_ISA_AUTO) /* the option, not the model */
        return error("--isa %s: this CPU or this build lacks it (the best here is %s)", gp_isa_name(o.isa),
                     gp_isa_name(gp_best_isa()));
    if (s != GP_OK) return error("cannot use the model '%s': %s", o.model, why[0] ? why : gp_status_message((int)s));
    grid g = {0, 0, 0, 0, 0, 0, 0, NULL};
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)o.n);
    status = labels == NULL ? error("out of memory") : run(&o, model, &g, labels);
    free(labels);
    free(g.pixels);
    gp_model_free(model);
    return status;
}

int main(int argc, char **argv) {
    errno = 0;
    return flushed(run_program(argc, argv));
}
