#include "st_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "model/safetensors.h"
#include "test_util.h"

void tu_st_write(const char *path, const tu_tensor *tensors, int32_t n) { tu_st_write_offset(path, tensors, n, 0); }

void tu_st_write_offset(const char *path, const tu_tensor *tensors, int32_t n, int32_t data_offset_mod8)
{
    size_t cap = 4096 + (size_t)n * 256, len = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", tensors[i].name,
                                tensors[i].dtype);
        for (int32_t d = 0; d < tensors[i].ndim; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%lld", d ? "," : "", (long long)tensors[i].shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + tensors[i].nbytes);
        off += tensors[i].nbytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while ((8 + len) % 8 != (size_t)data_offset_mod8)
        h[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f)
        cr_assert_fail("cannot write %s", path);
    uint8_t hl[8];
    for (int i = 0; i < 8; i++)
        hl[i] = (uint8_t)((uint64_t)len >> (8 * i));
    fwrite(hl, 1, 8, f);
    fwrite(h, 1, len, f);
    for (int32_t i = 0; i < n; i++)
        fwrite(tensors[i].data, 1, tensors[i].nbytes, f);
    fclose(f);
    free(h);
}

tu_st_copy tu_st_read(const char *path)
{
    sl_error err;
    sl_st_set *set = sl_st_open_file(path, true, &err);
    if (!set)
        cr_assert_fail("%s", err.msg);
    tu_st_copy c;
    c.n = sl_st_count(set);
    c.tensors = calloc((size_t)c.n, sizeof *c.tensors);
    size_t total = 0;
    for (int32_t i = 0; i < c.n; i++)
        total += sl_st_at(set, i)->nbytes;
    c.blob = malloc(total + 1);
    size_t names = 0;
    for (int32_t i = 0; i < c.n; i++)
        names += strlen(sl_st_at(set, i)->name) + 1;
    char *name_pool = malloc(names);
    size_t off = 0, noff = 0;
    for (int32_t i = 0; i < c.n; i++) {
        const sl_st_tensor *t = sl_st_at(set, i);
        tu_tensor *o = &c.tensors[i];
        memcpy((char *)c.blob + off, t->data, t->nbytes);
        strcpy(name_pool + noff, t->name);
        o->name = name_pool + noff;
        noff += strlen(t->name) + 1;
        o->dtype = sl_st_dtype_name(t->dtype);
        o->ndim = t->ndim;
        for (int32_t d = 0; d < t->ndim; d++)
            o->shape[d] = t->shape[d];
        o->data = (char *)c.blob + off;
        o->nbytes = t->nbytes;
        off += t->nbytes;
    }
    sl_st_close(set);
    return c;
}

void tu_st_release(tu_st_copy *c)
{
    if (c->n > 0)
        free((char *)c->tensors[0].name); /* the name pool starts with the first name */
    free(c->tensors);
    free(c->blob);
}

void tu_copy_config(const char *src_dir, const char *dst_dir)
{
    const char *files[] = {"config.json", "generation_config.json"};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", src_dir, files[i]);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fclose(f);
        size_t len;
        void *data = tu_read_file(path, &len);
        tu_write_file(dst_dir, files[i], data, len);
        free(data);
    }
}
