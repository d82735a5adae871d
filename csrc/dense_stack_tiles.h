/* dense_stack_tiles.h: the tile driver of the AVX2 and portable paths (dense_stack_avx2.c,
 * dense_stack_portable.c; the AVX-512 path has its own, with bigger tiles). Not part of the API.
 *
 * Both run a layer as tiles of rows x panels, each shape a compile-time constant inside its
 * path's tile function: full tiles of full_rows x full_panels, panel-major (those panels,
 * K V floats each, stay hot in cache across all row blocks), then the rows left (a lone row is
 * batch 1) with more panels per tile (1 x 8, 2 x 4, 3 x 2), so that enough independent
 * accumulator chains hide the latency of each multiply-add.
 */
#ifndef GANPACK_DENSE_STACK_TILES_H
#define GANPACK_DENSE_STACK_TILES_H

#include "dense_stack_layer.h"

/* Every shape the driver can ask for, for the paths' dispatch switches. full_rows is 1 to 4 and
   divides 4 (threads split rows at multiples of 4); full_panels is at most 4 / full_rows * 2. */
#define GP_TILE_SHAPES(X) \
    X(4, 1); X(4, 2); X(3, 1); X(3, 2); X(2, 1); X(2, 2); X(2, 3); X(2, 4); \
    X(1, 1); X(1, 2); X(1, 3); X(1, 4); X(1, 5); X(1, 6); X(1, 7); X(1, 8)

/* One tile: rows x panels panels of outputs from x (rows, K), the packed panels (panels, K, V)
   starting at output column col, into y (rows, N); labels (rows) or NULL. */
typedef void (*gp_tile_fn)(int rows, int panels, const gp_layer *layer, const float *x,
                           const int32_t *labels, const float *packed, int col, void *y,
                           int y_dtype);

/* The panels [panel_begin, panel_end) of one layer over `rows` rows, tile by tile (see above). */
static inline void gp_forward_tiles(gp_tile_fn tile, int full_rows, int full_panels,
                                    const gp_layer *layer, const float *x /* (rows, K) */, int rows,
                                    const int32_t *labels /* (rows) or NULL */,
                                    void *y /* (rows, N) */, int y_dtype, int panel_begin,
                                    int panel_end) {
    const size_t K = (size_t)layer->in_width, N = (size_t)layer->out_width;
    const size_t V = (size_t)layer->panel_width;
    const size_t y_row = N * (y_dtype == GP_U8 ? 1 : sizeof(float)); /* bytes per output row */
    const int whole = rows / full_rows * full_rows; /* rows in full tiles */
    for (int p = panel_begin; p < panel_end && whole > 0; p += full_panels) {
        const int panels = panel_end - p < full_panels ? panel_end - p : full_panels;
        const float *packed = gp_panel(layer, p);
        for (int r = 0; r < whole; r += full_rows) {
            tile(full_rows, panels, layer, x + (size_t)r * K, labels == NULL ? NULL : labels + r,
                 packed, p * (int)V, (char *)y + (size_t)r * y_row, y_dtype);
        }
    }
    const int left = rows - whole;
    if (left == 0) return;
    const int step = left == 1 ? 8 : left == 2 ? 4 : 2;
    for (int p = panel_begin; p < panel_end; p += step) {
        const int panels = panel_end - p < step ? panel_end - p : step;
        tile(left, panels, layer, x + (size_t)whole * K, labels == NULL ? NULL : labels + whole,
             gp_panel(layer, p), p * (int)V, (char *)y + (size_t)whole * y_row, y_dtype);
    }
}

#endif /* GANPACK_DENSE_STACK_TILES_H */
