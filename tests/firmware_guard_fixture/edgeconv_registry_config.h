/* Buffer sizes of the guard fixture: "copy" is the largest layer, so the broken layers'
 * overruns land inside buffers sized for it, where only the harness's guards see them. */
#define EDGECONV_MAX_SCRATCH_BYTES 16
#define EDGECONV_MAX_INPUT_BYTES 64
#define EDGECONV_MAX_OUTPUT_BYTES 64
