/* Fallback copy of the registry contract (docs/architecture.md) for the fixture;
 * firmware/common/edgeconv_registry.h takes precedence when it exists. */
#ifndef EDGECONV_REGISTRY_H
#define EDGECONV_REGISTRY_H

#include <stdint.h>

typedef int (*edgeconv_run_fn)(const void *input, void *output, void *scratch);
typedef struct {
    const char *name;
    edgeconv_run_fn run;
    uint32_t input_count, output_count;
    uint8_t input_elem_bytes, output_elem_bytes;
    uint32_t scratch_bytes;
} edgeconv_layer_t;
extern const edgeconv_layer_t edgeconv_registry[];
extern const uint32_t edgeconv_registry_count;
extern const char edgeconv_registry_hash[];

#endif
