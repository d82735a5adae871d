/* ganpack.h: a whole model from C. Open a model file, sample digits for a seed, score images.
 *
 * The model file ("ganpack-c", version 1, usually *.gpkc) is one flat little-endian binary that
 * `ganpack export-c PACKAGE OUT` writes from a model package: a header (magic, version, shapes,
 * the latent stream's parameters), the class names, both networks' activations and weights, and
 * a CRC-32 of everything before it. docs/embedding-format.md gives the layout byte by byte.
 *
 * Same digits as Python: gp_model_sample(model, seed, 0, n, labels, out, GP_U8) is, bit for bit,
 * ganpack's `Model.sample(n, seed)` (labels: its `labels=`) on the same ISA (gp_isa; results do
 * not depend on the thread count). A model is read-only once opened: any number of threads may
 * sample and score with one model at once.
 *
 * Errors: every function returns a gp_status (ganpack_kernel.h); nothing calls exit() or prints.
 * gp_model_open and gp_model_open_memory also write a one-line English reason (NUL-terminated,
 * cut to why_size bytes) into `why` when it is not NULL: what is wrong with the file, and where.
 *
 * This file is also read by the cffi build (after ganpack_kernel.h): a build script drops every
 * line starting with '#', so the declarations below use plain C types and no macros.
 */
#ifndef GANPACK_H
#define GANPACK_H

#include <stddef.h>
#include <stdint.h>

#include "ganpack_kernel.h"

typedef struct gp_model gp_model; /* opaque: a generator and a discriminator stack, the facts */

/* Limits checked when a file is read (GP_ERR_CORRUPT beyond them): 1 <= layers <= 64 per network,
   widths as gp_stack_create takes them, image sides 1..4096, 0 <= classes <= 65536, each class
   name 1..255 bytes of UTF-8 without NUL, the names block at most 1 MiB, the whole file at most
   2 GiB. */

/* Reads the model file at `path`. On success *out owns the model (free with gp_model_free); on
   failure *out is NULL (when out itself is not NULL). isa: a gp_isa (GP_ISA_AUTO: the best this
   CPU has); n_threads: as gp_stack_create_threads (0: one per online CPU, at most 8; 1: none),
   for each of the model's two stacks (so up to 2 x (n_threads - 1) worker threads).
   Status: GP_ERR_FILE (cannot open or read it), GP_ERR_FORMAT (not a ganpack-c file: wrong magic),
   GP_ERR_VERSION (a version this library does not read), GP_ERR_CORRUPT (truncated, too long, a
   size or shape out of range or inconsistent, a CRC-32 mismatch, a NaN or infinite weight, bias,
   alpha or latent parameter; also an empty file, or one cut inside the magic), or what
   gp_stack_create_threads / set_layer return (GP_ERR_UNSUPPORTED_ISA, GP_ERR_SHAPE for n_threads,
   GP_ERR_NOMEM, GP_ERR_THREAD). isa and n_threads are checked first, before the file is opened
   (GP_ERR_SHAPE: n_threads outside 0..64; GP_ERR_UNSUPPORTED_ISA: an isa this CPU or build lacks;
   `why` names the value). Then checks run in file order: magic, version, then the header's
   fields and the CRC-32, then names and networks; nothing large is allocated before the sizes
   are checked against the file. The file is opened without blocking (a FIFO with no writer reads
   as empty: GP_ERR_CORRUPT); a regular file over 2 GiB is refused by its size, unread; the first
   64 bytes are read, the magic and version checked, and then at most file_bytes + 1 bytes (so a
   pipe or a device such as /dev/zero is not read to its end). */
gp_status gp_model_open(const char *path, int isa, int n_threads, gp_model **out,
                        char *why, size_t why_size);

/* The same from `size` bytes in memory (the caller's; copied, so they may be freed after). */
gp_status gp_model_open_memory(const void *data, size_t size, int isa, int n_threads,
                               gp_model **out, char *why, size_t why_size);

/* Frees the model and its stacks; NULL is a no-op. */
void gp_model_free(gp_model *model);

/* ---- facts (each -1, or NULL, for a NULL model) ---- */
int gp_model_latent_dim(const gp_model *model);   /* z's width, e.g. 100 */
int gp_model_image_height(const gp_model *model); /* e.g. 28 */
int gp_model_image_width(const gp_model *model);  /* e.g. 28 */
int gp_model_classes(const gp_model *model);      /* 0: unconditional; else labels lie in [0, classes) */
const char *gp_model_class_name(const gp_model *model, int label); /* NULL out of range; the model owns it */
int gp_model_isa(const gp_model *model);          /* the gp_isa it runs, never GP_ISA_AUTO */
int gp_model_threads(const gp_model *model);      /* threads per call, as gp_stack_threads */

/* n images (n, height * width) from rows [first_row, first_row + n) of the model's latent stream
   for `seed`: uint8 pixels (output_dtype GP_U8) or float32 in [-1, 1] (GP_F32). labels: NULL for
   an unconditional model (else GP_ERR_ARGUMENT); n class indices for a conditional one (NULL:
   GP_ERR_ARGUMENT; one out of range: GP_ERR_INPUT, nothing written). n 0 does nothing (labels and
   out may then be NULL). */
gp_status gp_model_sample(const gp_model *model, uint64_t seed, int64_t first_row, int n,
                          const int32_t *labels /* (n) or NULL */,
                          void *out /* (n, height * width) */, int output_dtype);

/* z = rows [first_row, first_row + n) of the model's latent stream for `seed`, (n, latent_dim). */
gp_status gp_model_latents(const gp_model *model, uint64_t seed, int64_t first_row, int n,
                           float *z /* (n, latent_dim) */);

/* Images from the caller's latents z (n, latent_dim), finite (else GP_ERR_INPUT); labels as for
   gp_model_sample. */
gp_status gp_model_generate(const gp_model *model, const float *z /* (n, latent_dim) */, int n,
                            const int32_t *labels /* (n) or NULL */,
                            void *out /* (n, height * width) */, int output_dtype);

/* The discriminator's probability that each image is real (of class labels[i], for a conditional
   model). images: uint8 pixels (images_dtype GP_U8), or float32 in [-1, 1] (GP_F32; a value
   outside, or NaN: GP_ERR_INPUT). */
gp_status gp_model_score(const gp_model *model, const void *images /* (n, height * width) */,
                         int images_dtype, int n, const int32_t *labels /* (n) or NULL */,
                         float *probabilities /* (n) */);

#endif /* GANPACK_H */
