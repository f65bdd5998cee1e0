/* The safetensors header parser on arbitrary bytes. A file it accepts must be readable through the
 * returned pointers without any further check: every tensor's bytes are read here. */
#include <string.h>

#include "fuzz_util.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_error err;
    sl_st_set *set = sl_st_open_memory("fuzz.safetensors", data, size, &err);
    if (!set) {
        fuzz_check_message(&err, "fuzz.safetensors");
        return 0;
    }
    const uint8_t *end = data + size;
    volatile uint8_t sum = 0; /* keeps the reads */
    for (int32_t i = 0; i < sl_st_count(set); i++) {
        const sl_st_tensor *t = sl_st_at(set, i);
        const uint8_t *p = t->data;
        FUZZ_CHECK(p >= data && p + t->nbytes <= end, "tensor '%s' outside the input", t->name);
        uint64_t n = 1;
        for (int32_t d = 0; d < t->ndim; d++)
            n *= (uint64_t)t->shape[d];
        FUZZ_CHECK(n * sl_st_dtype_size(t->dtype) == t->nbytes, "tensor '%s' size", t->name);
        for (uint64_t k = 0; k < t->nbytes; k++)
            sum ^= p[k];
        FUZZ_CHECK(sl_st_find(set, t->name) == t, "lookup of '%s'", t->name);
    }
    sl_st_close(set);
    return 0;
}
