/* dense_stack_pool.h: the worker threads of a threaded stack (dense_stack_pool.c), and the part
 * of a run each thread is given (dense_stack.c plans the parts and runs them). Not part of the
 * API. How a run is split and how the workers wait: csrc/README.md, "Threads".
 */
#ifndef GANPACK_DENSE_STACK_POOL_H
#define GANPACK_DENSE_STACK_POOL_H

#include "ganpack_kernel.h"

#include <stdint.h>

/* Where a run's input rows come from: a float32 or uint8 array (batch, widths[0]), or the
   latent stream (rows first_row + i). */
enum { GP_SOURCE_F32 = 0, GP_SOURCE_U8 = 1, GP_SOURCE_LATENT = 2, GP_SOURCE_F32_IMAGE = 3,
       GP_SOURCE_F32_FINITE = 4 };
typedef struct {
    int kind;                   /* GP_SOURCE_* */
    const void *data;           /* F32, U8, F32_IMAGE, F32_FINITE: (batch, widths[0]) */
    uint64_t seed;              /* LATENT: the stream, its first row, distribution, scale, offset */
    int64_t first_row;
    int distribution;
    float scale, offset;
    const int32_t *labels;      /* NULL, or (batch) checked labels: layer 0's class-bias rows */
} gp_source;

/* A part is one slice of a run: rows [row_begin, row_end) of the batch, and of the last layer
   only the output panels [panel_begin, panel_end). Hidden layers are always computed whole for
   the part's rows. The pool runs one part on the calling thread and one on each worker. */
typedef struct {
    const struct gp_stack *stack;
    const gp_source *source;
    void *output;       /* (batch, widths[n_layers]) of output_dtype */
    int output_dtype;   /* GP_F32 or GP_U8 */
    int row_begin, row_end;
    int panel_begin, panel_end;
    gp_status status;   /* set by the part's runner */
} gp_part;

/* CLOCK_MONOTONIC in nanoseconds (dense_stack_pool.c; fma_ceiling.c times its loops with it). */
long long gp_now_ns(void);

typedef void (*gp_part_fn)(gp_part *part);
typedef struct gp_pool gp_pool;

/* Starts n_workers >= 1 threads that wait for parts and run them with `run`. */
gp_status gp_pool_create(int n_workers, gp_part_fn run, gp_pool **out);
/* Stops and joins the workers; NULL is a no-op. No call may be using the pool. */
void gp_pool_free(gp_pool *pool);
/* Takes the pool for one run; 0 if another thread holds it (or this is a forked child, which
   has no workers): run single-threaded then. */
int gp_pool_try_acquire(gp_pool *pool);
void gp_pool_release(gp_pool *pool);
/* 1 while every worker is awake (spinning right after a part), so a hand-off costs well under
   a microsecond; asleep, waking one costs a futex call. Advisory, read without the lock. */
int gp_pool_workers_awake(gp_pool *pool);
/* With the pool held: wakes the sleeping workers (with an empty part) without waiting, so that
   they are awake for the next run. */
void gp_pool_wake(gp_pool *pool);
/* With the pool held: parts[1 .. n_parts - 1] go to workers, parts[0] runs here, returns when
   all are done. 1 <= n_parts <= n_workers + 1. */
void gp_pool_run(gp_pool *pool, gp_part *parts /* (n_parts) */, int n_parts);

#endif /* GANPACK_DENSE_STACK_POOL_H */
