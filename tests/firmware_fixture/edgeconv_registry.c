/* A hand-written registry with trivial layers: the harness and protocol under test
 * without codegen. Expected outputs are easy to compute independently on the host. */
#include <stdint.h>

#include "edgeconv_registry.h"

/* add_one: int8 x -> x + 1 (wrapping), 1000 elements. */
static int add_one(const void *input, void *output, void *scratch)
{
    (void)scratch;
    const int8_t *in = input;
    int8_t *out = output;
    for (uint32_t i = 0; i < 1000; i++)
        out[i] = (int8_t)(uint8_t)((uint8_t)in[i] + 1u);
    return 0;
}

/* negate16: int16 x -> -x (saturating at 32767), 600 elements. */
static int negate16(const void *input, void *output, void *scratch)
{
    (void)scratch;
    const int16_t *in = input;
    int16_t *out = output;
    for (uint32_t i = 0; i < 600; i++)
        out[i] = in[i] == INT16_MIN ? INT16_MAX : (int16_t)-in[i];
    return 0;
}

/* sum8: int8[16] -> int32[1], the sum; a layer whose output is wider than its input. */
static int sum8(const void *input, void *output, void *scratch)
{
    (void)scratch;
    const int8_t *in = input;
    int32_t acc = 0;
    for (uint32_t i = 0; i < 16; i++)
        acc += in[i];
    *(int32_t *)output = acc;
    return 0;
}

/* spin: int32 n -> n, after a loop of exactly 2n instructions (subs + bne) on Arm:
 * a known instruction count to check the kernel counters against. */
static int spin(const void *input, void *output, void *scratch)
{
    (void)scratch;
    uint32_t n = *(const uint32_t *)input;
    *(uint32_t *)output = n;
    if (n == 0)
        return 1;
#if defined(__arm__)
    /* GCC wraps inline asm in ".syntax divided" on ARMv6-M and restores it after. */
    __asm volatile(".syntax unified\n1:\n\tsubs %0, %0, #1\n\tbne 1b\n\t.syntax divided"
                   : "+l"(n)
                   :
                   : "cc");
#else
    for (volatile uint32_t i = 0; i < n; i++)
        ;
#endif
    return 0;
}

/* crash: on Arm an undefined instruction (HardFault: the firmware reports its registers
 * and exits); on the host a failing status, 7. */
static int crash(const void *input, void *output, void *scratch)
{
    (void)input;
    (void)output;
    (void)scratch;
#if defined(__arm__)
    __asm volatile("udf #0x42");
#endif
    return 7;
}

const edgeconv_layer_t edgeconv_registry[] = {
    {"add_one", add_one, 1000, 1000, 1, 1, 0},
    {"negate16", negate16, 600, 600, 2, 2, 0},
    {"sum8", sum8, 16, 1, 1, 4, 0},
    {"spin", spin, 1, 1, 4, 4, 0},
    {"crash", crash, 1, 1, 1, 1, 0},
};
const uint32_t edgeconv_registry_count = 5;
const char edgeconv_registry_hash[] = "f1f2f3f4f5f6f7f8";
