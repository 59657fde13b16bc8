/*
 * edgeconv_registry.h - the table of generated layers the firmware harness runs.
 *
 * Static header owned by codegen (edgeconv/codegen.py). generate(..., registry=True)
 * writes edgeconv_registry.c (the table and one thunk per layer) and
 * edgeconv_registry_config.h (buffer sizes) against this declaration.
 * C99; needs only <stdint.h>.
 */
#ifndef EDGECONV_REGISTRY_H
#define EDGECONV_REGISTRY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Runs one layer: input/output point to input_count/output_count elements of
 * input_elem_bytes/output_elem_bytes each, scratch to at least scratch_bytes bytes
 * (4-byte aligned; may be NULL when scratch_bytes is 0). Returns 0 on success.
 * Each entry's run is a thunk that converts the pointers to the layer's element
 * types and calls the generated layer function, so no function pointer is cast.
 */
typedef int (*edgeconv_run_fn)(const void *input, void *output, void *scratch);

typedef struct {
    const char *name;                    /* the layer name, a C identifier */
    edgeconv_run_fn run;                 /* a thunk that casts and calls <name>() */
    uint32_t input_count, output_count;  /* elements */
    uint8_t input_elem_bytes, output_elem_bytes;
    uint32_t scratch_bytes;
} edgeconv_layer_t;

extern const edgeconv_layer_t edgeconv_registry[];
extern const uint32_t edgeconv_registry_count;
extern const char edgeconv_registry_hash[];   /* 16 lowercase hex chars + NUL */

#ifdef __cplusplus
}
#endif

#endif /* EDGECONV_REGISTRY_H */
