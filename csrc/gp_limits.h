/* gp_limits.h: the kernel's limits, as ganpack_kernel.h states them. dense_stack.c enforces them;
 * ganpack_model.c checks a model file against the same numbers first, so that its reason names the
 * file's field rather than a kernel call.
 */
#ifndef GP_LIMITS_H
#define GP_LIMITS_H

#define GP_MAX_LAYERS 64
#define GP_MAX_WIDTH (1 << 20)
#define GP_MAX_THREADS 64
#define GP_MAX_CLASSES 65536 /* rows of a class-bias table */

#endif /* GP_LIMITS_H */
