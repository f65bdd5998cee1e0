/* Safetensors reader: memory-maps one file or a sharded set and validates every header.
 *
 * Validation covers the 8-byte header length (bounds), the JSON itself, each tensor's dtype,
 * shape and data_offsets (shape x dtype size == byte span, span inside the data section,
 * spans non-overlapping). A file that passes can be read through the returned pointers
 * without any further bounds check. */
#ifndef SLUA_CORE_SAFETENSORS_H
#define SLUA_CORE_SAFETENSORS_H

#include <stdbool.h>
#include <stdint.h>

#include "slua/sl_base.h"

#define SL_ST_MAX_DIMS 8

typedef enum sl_st_dtype {
    SL_ST_F64, SL_ST_F32, SL_ST_F16, SL_ST_BF16, SL_ST_I64, SL_ST_I32, SL_ST_I16, SL_ST_I8,
    SL_ST_U64, SL_ST_U32, SL_ST_U16, SL_ST_U8, SL_ST_BOOL, SL_ST_F8_E4M3, SL_ST_F8_E5M2
} sl_st_dtype;

typedef struct sl_st_tensor {
    const char *name;
    const char *file;    /* path of the file holding it (borrowed from the set) */
    sl_st_dtype dtype;
    int32_t ndim;
    int64_t shape[SL_ST_MAX_DIMS];
    const void *data;    /* inside the mapping */
    uint64_t nbytes;
} sl_st_tensor;

typedef struct sl_st_set sl_st_set;

/* Open dir/model.safetensors, or every shard named by dir/model.safetensors.index.json: mapped
 * (map) or read into private memory. */
sl_st_set *sl_st_open_dir(const char *dir, bool map, sl_error *err);
/* Open one file. */
sl_st_set *sl_st_open_file(const char *path, bool map, sl_error *err);
/* Validate size bytes of a safetensors file already in memory (borrowed: they must outlive the
 * set); label names it in errors. */
sl_st_set *sl_st_open_memory(const char *label, const void *bytes, size_t size, sl_error *err);
void sl_st_close(sl_st_set *set);

/* Lookup by name; NULL if absent. */
const sl_st_tensor *sl_st_find(const sl_st_set *set, const char *name);
int32_t sl_st_count(const sl_st_set *set);
const sl_st_tensor *sl_st_at(const sl_st_set *set, int32_t i);
uint64_t sl_st_mapped_bytes(const sl_st_set *set);
/* The path errors should name: the index file of a sharded set, else the single file. */
const char *sl_st_label(const sl_st_set *set);

const char *sl_st_dtype_name(sl_st_dtype dtype);
uint32_t sl_st_dtype_size(sl_st_dtype dtype);

#endif
