/* Writing float32 tensors as one safetensors file (captured activations, steering vectors),
 * readable back by sl_safetensors_read below and by the `safetensors` Python package. The file is written
 * beside its destination and renamed into place, so a reader never sees half of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "kernels/kernels.h"
#include "safetensors.h"
#include "slua/sl_intervene.h"
#include "util/error.h"

sl_status sl_safetensors_write(const char *path, const char *const *names, const float *const *data,
                               const int64_t *const *shapes, const int32_t *ndims, int32_t n, sl_error *err)
{
    if (!path || n < 0 || (n > 0 && (!names || !data || !shapes || !ndims)))
        return sl_error_set(err, SL_STATUS_E_ARG, "safetensors write: invalid arguments");
    json_object *header = json_object_new_object();
    uint64_t offset = 0;
    sl_status rc = SL_STATUS_OK;
    for (int32_t i = 0; i < n && rc == SL_STATUS_OK; i++) {
        if (!names[i] || !names[i][0] || !strcmp(names[i], "__metadata__") || json_object_object_get_ex(header, names[i], NULL)) {
            rc = sl_error_set(err, SL_STATUS_E_ARG, "%s: tensor %d: invalid or repeated name", path, i);
            break;
        }
        if (ndims[i] < 0 || ndims[i] > 8) {
            rc = sl_error_set(err, SL_STATUS_E_ARG, "%s: tensor '%s': %d dimensions", path, names[i], ndims[i]);
            break;
        }
        uint64_t count = 1;
        json_object *shape = json_object_new_array();
        for (int32_t d = 0; d < ndims[i]; d++) {
            if (shapes[i][d] < 0) {
                rc = sl_error_set(err, SL_STATUS_E_ARG, "%s: tensor '%s': negative dimension", path, names[i]);
                break;
            }
            count *= (uint64_t)shapes[i][d];
            json_object_array_add(shape, json_object_new_int64(shapes[i][d]));
        }
        json_object *t = json_object_new_object(), *offs = json_object_new_array();
        json_object_object_add(t, "dtype", json_object_new_string("F32"));
        json_object_object_add(t, "shape", shape);
        json_object_array_add(offs, json_object_new_int64((int64_t)offset));
        offset += count * 4;
        json_object_array_add(offs, json_object_new_int64((int64_t)offset));
        json_object_object_add(t, "data_offsets", offs);
        json_object_object_add(header, names[i], t);
    }
    if (rc != SL_STATUS_OK) {
        json_object_put(header);
        return rc;
    }
    const char *text = json_object_to_json_string_ext(header, JSON_C_TO_STRING_PLAIN);
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        json_object_put(header);
        return sl_error_set(err, SL_STATUS_E_ARG, "%s: path too long", path);
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        json_object_put(header);
        return sl_error_set(err, SL_STATUS_E_IO, "%s: cannot write", path);
    }
    unsigned char size[8];
    for (int k = 0; k < 8; k++)
        size[k] = (unsigned char)((uint64_t)padded >> (8 * k)); /* little-endian u64 */
    bool ok = fwrite(size, 1, 8, f) == 8 && fwrite(text, 1, len, f) == len;
    for (size_t k = len; ok && k < padded; k++)
        ok = fputc(' ', f) != EOF;
    for (int32_t i = 0; ok && i < n; i++) {
        uint64_t count = 1;
        for (int32_t d = 0; d < ndims[i]; d++)
            count *= (uint64_t)shapes[i][d];
        ok = count == 0 || fwrite(data[i], 4, count, f) == count;
    }
    ok = fclose(f) == 0 && ok;
    json_object_put(header);
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return sl_error_set(err, SL_STATUS_E_IO, "%s: cannot write", path);
    }
    return SL_STATUS_OK;
}

/* ------------------------------------------------------------------ reading back */

void sl_tensors_f32_free(sl_tensor_f32 *t, int32_t n)
{
    for (int32_t i = 0; t && i < n; i++) {
        free(t[i].name);
        free(t[i].data);
    }
    free(t);
}

sl_status sl_safetensors_read(const char *path, sl_tensor_f32 **out, int32_t *n_out, sl_error *err)
{
    if (!path || !out || !n_out)
        return sl_error_set(err, SL_STATUS_E_ARG, "safetensors read: invalid arguments");
    *out = NULL;
    *n_out = 0;
    sl_st_set *st = sl_st_open_file(path, false, err);
    if (!st)
        return err ? err->code : SL_STATUS_E_IO;
    int32_t n = sl_st_count(st);
    sl_tensor_f32 *ts = calloc((size_t)(n ? n : 1), sizeof *ts);
    sl_status rc = ts ? SL_STATUS_OK : sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", path);
    for (int32_t i = 0; i < n && rc == SL_STATUS_OK; i++) {
        const sl_st_tensor *t = sl_st_at(st, i);
        if (t->dtype != SL_ST_F32 && t->dtype != SL_ST_F16 && t->dtype != SL_ST_BF16) {
            rc = sl_error_set(err, SL_STATUS_E_FORMAT, "%s: tensor '%.120s' is %s (want F32, F16 or BF16)", path,
                              t->name, sl_st_dtype_name(t->dtype));
            break;
        }
        int64_t count = (int64_t)(t->nbytes / sl_st_dtype_size(t->dtype));
        size_t len = strlen(t->name);
        ts[i].name = malloc(len + 1);
        if (ts[i].name)
            memcpy(ts[i].name, t->name, len + 1);
        ts[i].data = malloc((size_t)(count ? count : 1) * sizeof(float));
        if (!ts[i].name || !ts[i].data) {
            rc = sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", path);
            break;
        }
        ts[i].ndim = t->ndim;
        memcpy(ts[i].shape, t->shape, sizeof ts[i].shape);
        ts[i].n = count;
        for (int64_t k = 0; k < count; k++) {
            if (t->dtype == SL_ST_F32) {
                memcpy(&ts[i].data[k], (const char *)t->data + k * 4, 4);
            } else {
                uint16_t h;
                memcpy(&h, (const char *)t->data + k * 2, 2);
                ts[i].data[k] = t->dtype == SL_ST_F16 ? sl_f16_to_f32(h) : sl_bf16_to_f32(h);
            }
        }
    }
    sl_st_close(st);
    if (rc != SL_STATUS_OK) {
        sl_tensors_f32_free(ts, n);
        return rc;
    }
    *out = ts;
    *n_out = n;
    return SL_STATUS_OK;
}
