/* Writing small safetensors files and model directories from tests. */
#ifndef SLUA_TEST_ST_WRITER_H
#define SLUA_TEST_ST_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tu_tensor {
    const char *name;
    const char *dtype; /* "F32", "BF16", ... */
    int32_t ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} tu_tensor;

/* Write a well-formed safetensors file holding the given tensors in order. */
void tu_st_write(const char *path, const tu_tensor *tensors, int32_t n);
/* The same, with the header padded (spaces, as the format allows) so that the data section starts
 * at a file offset of data_offset_mod8 modulo 8: 0 is the usual aligned layout. */
void tu_st_write_offset(const char *path, const tu_tensor *tensors, int32_t n, int32_t data_offset_mod8);

/* All tensors of an existing model.safetensors (borrowed views into a copy kept until
 * tu_st_release). */
typedef struct tu_st_copy {
    tu_tensor *tensors;
    int32_t n;
    void *blob;
} tu_st_copy;
tu_st_copy tu_st_read(const char *path);
void tu_st_release(tu_st_copy *c);

/* Copy a model directory's config files (config.json, generation_config.json if any) to dst. */
void tu_copy_config(const char *src_dir, const char *dst_dir);

#endif
