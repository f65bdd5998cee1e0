#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "kernels/kernels_simd.h"

const char *tu_src(const char *rel)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", SL_SOURCE_DIR, rel);
    return b;
}

json_object *tu_load_json(const char *path)
{
    json_object *root = json_object_from_file(path);
    if (!root)
        cr_assert_fail("cannot parse JSON file %s", path);
    return root;
}

json_object *tu_get(json_object *root, const char *dotted)
{
    char key[256];
    const char *p = dotted;
    json_object *cur = root;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        snprintf(key, sizeof key, "%.*s", (int)len, p);
        json_object *next = NULL;
        if (!json_object_object_get_ex(cur, key, &next))
            return NULL;
        cur = next;
        p += len + (dot ? 1 : 0);
    }
    return cur;
}

float *tu_floats(json_object *arr, size_t *n)
{
    *n = json_object_array_length(arr);
    float *out = malloc((*n ? *n : 1) * sizeof *out);
    for (size_t i = 0; i < *n; i++)
        out[i] = (float)json_object_get_double(json_object_array_get_idx(arr, i));
    return out;
}

int32_t *tu_ints(json_object *arr, size_t *n)
{
    *n = json_object_array_length(arr);
    int32_t *out = malloc((*n ? *n : 1) * sizeof *out);
    for (size_t i = 0; i < *n; i++)
        out[i] = (int32_t)json_object_get_int(json_object_array_get_idx(arr, i));
    return out;
}

double tu_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d))
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

sl_model *tu_load_model(const char *dir)
{
    sl_error err;
    sl_model *m = sl_model_load(dir, &err);
    if (!m)
        cr_assert_fail("cannot load %s: %s", dir, err.msg);
    return m;
}

const char *tu_tmpdir(void)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "/tmp/slua-test-XXXXXX");
    if (!mkdtemp(dir))
        cr_assert_fail("mkdtemp failed");
    return dir;
}

void tu_write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len)
        cr_assert_fail("cannot write %s", path);
    fclose(f);
}

void *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        cr_assert_fail("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)size + 1);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size)
        cr_assert_fail("short read on %s", path);
    fclose(f);
    ((char *)buf)[size] = 0;
    *len = (size_t)size;
    return buf;
}

void tu_cap_kernels(const char *var, bool on)
{
    if (on)
        setenv(var, "1", 1);
    else
        unsetenv(var);
    sl_kernel_isa_reload();
}

const char *const tu_tiny_models[3] = {"tiny-llama", "tiny-llama-tied", "tiny-qwen2"};

const char *tu_tiny_file(const char *name, const char *rel)
{
    char buf[512];
    snprintf(buf, sizeof buf, "tests/data/hf-tiny/%s%s%s", name, *rel ? "/" : "", rel);
    return tu_src(buf);
}

sl_model *tu_load_tiny(const char *name) { return tu_load_model(tu_tiny_file(name, "")); }

sl_session *tu_session(sl_model *m)
{
    sl_error err;
    sl_session *s = sl_session_init(m, NULL, &err);
    cr_assert_not_null(s, "%s", err.msg);
    return s;
}

void tu_eval(sl_session *s, const sl_token *tokens, int32_t n, unsigned flags)
{
    sl_error err;
    cr_assert_eq(sl_session_eval(s, tokens, n, flags, &err), SL_STATUS_OK, "%s", err.msg);
}

sl_token tu_argmax(const float *x, int32_t n)
{
    sl_token best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}
