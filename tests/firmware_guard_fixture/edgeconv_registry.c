/* A hand-written registry of deliberately broken kernels (tests/test_guards.py): each
 * writes one byte outside the sizes its entry states, or changes its const input, or
 * leaves an output element unwritten. "copy" is a correct layer and the largest. */
#include <stdint.h>

#include "edgeconv_registry.h"

#define N 8 /* elements of every broken layer's input and output (int8) */

/* copy: int8[64] -> the same int8[64]; correct. */
static int copy(const void *input, void *output, void *scratch)
{
    (void)scratch;
    const int8_t *in = input;
    int8_t *out = output;
    for (uint32_t i = 0; i < 64; i++)
        out[i] = in[i];
    return 0;
}

/* Copies the N input bytes to the output; the broken layers' correct part. */
static void copy_n(const void *input, void *output)
{
    const int8_t *in = input;
    int8_t *out = output;
    for (uint32_t i = 0; i < N; i++)
        out[i] = in[i];
}

/* out_past: also writes the byte right after its N output bytes. */
static int out_past(const void *input, void *output, void *scratch)
{
    (void)scratch;
    copy_n(input, output);
    ((int8_t *)output)[N] = 0;
    return 0;
}

/* out_before: also writes the byte right before its output. */
static int out_before(const void *input, void *output, void *scratch)
{
    (void)scratch;
    copy_n(input, output);
    ((int8_t *)output)[-1] = 0;
    return 0;
}

/* scratch_past: uses the N scratch bytes it states, and one more. */
static int scratch_past(const void *input, void *output, void *scratch)
{
    uint8_t *s = scratch;
    for (uint32_t i = 0; i <= N; i++)
        s[i] = (uint8_t)i;
    copy_n(input, output);
    return 0;
}

/* in_past: writes the byte right after its (const) input. */
static int in_past(const void *input, void *output, void *scratch)
{
    (void)scratch;
    copy_n(input, output);
    ((int8_t *)(uintptr_t)input)[N] = 0;
    return 0;
}

/* in_change: changes the first byte of its const input. */
static int in_change(const void *input, void *output, void *scratch)
{
    (void)scratch;
    copy_n(input, output);
    int8_t *in = (int8_t *)(uintptr_t)input;
    in[0] = (int8_t)(uint8_t)((uint8_t)in[0] ^ 0x01u);
    return 0;
}

/* out_skip: leaves its last output element unwritten. */
static int out_skip(const void *input, void *output, void *scratch)
{
    (void)scratch;
    const int8_t *in = input;
    int8_t *out = output;
    for (uint32_t i = 0; i + 1 < N; i++)
        out[i] = in[i];
    return 0;
}

const edgeconv_layer_t edgeconv_registry[] = {
    {"copy", copy, 64, 64, 1, 1, 0},
    {"out_past", out_past, N, N, 1, 1, 0},
    {"out_before", out_before, N, N, 1, 1, 0},
    {"scratch_past", scratch_past, N, N, 1, 1, N},
    {"in_past", in_past, N, N, 1, 1, 0},
    {"in_change", in_change, N, N, 1, 1, 0},
    {"out_skip", out_skip, N, N, 1, 1, 0},
};
const uint32_t edgeconv_registry_count = 7;
const char edgeconv_registry_hash[] = "9a9b9c9d9e9f0a0b";
