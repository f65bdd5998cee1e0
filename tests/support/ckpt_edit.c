#include "ckpt_edit.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "kernels/kernels.h"
#include "test_util.h"

static char *dup_text(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    cr_assert_not_null(d);
    return strcpy(d, s);
}

int64_t tu_ckpt_values(const tu_tensor *t)
{
    int64_t n = 1;
    for (int32_t d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

tu_tensor *tu_ckpt_add(tu_ckpt *c, const char *name, int32_t ndim, const int64_t *shape, const float *data)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->t = realloc(c->t, (size_t)c->cap * sizeof *c->t);
        cr_assert_not_null(c->t);
    }
    tu_tensor *t = &c->t[c->n++];
    *t = (tu_tensor){.name = dup_text(name), .dtype = "F32"};
    tu_ckpt_set(t, ndim, shape, data);
    return t;
}

void tu_ckpt_set(tu_tensor *t, int32_t ndim, const int64_t *shape, const float *data)
{
    t->ndim = ndim;
    for (int32_t d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    size_t bytes = (size_t)tu_ckpt_values(t) * sizeof(float);
    float *buf = calloc(1, bytes + 1);
    cr_assert_not_null(buf);
    if (data)
        memcpy(buf, data, bytes);
    free((void *)t->data);
    t->data = buf;
    t->nbytes = bytes;
    t->dtype = "F32";
}

tu_ckpt tu_ckpt_read(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tu_st_copy copy = tu_st_read(path);
    tu_ckpt c = {0};
    for (int32_t i = 0; i < copy.n; i++) {
        const tu_tensor *t = &copy.tensors[i];
        cr_assert_str_eq(t->dtype, "F32", "%s: %s is %s", path, t->name, t->dtype);
        tu_ckpt_add(&c, t->name, t->ndim, t->shape, t->data);
    }
    tu_st_release(&copy);
    return c;
}

void tu_ckpt_free(tu_ckpt *c)
{
    for (int32_t i = 0; i < c->n; i++) {
        free((void *)c->t[i].name);
        free((void *)c->t[i].data);
    }
    free(c->t);
    *c = (tu_ckpt){0};
}

static tu_tensor *find_v(tu_ckpt *c, const char *fmt, va_list ap, char *name, size_t size)
{
    vsnprintf(name, size, fmt, ap);
    for (int32_t i = 0; i < c->n; i++)
        if (strcmp(c->t[i].name, name) == 0)
            return &c->t[i];
    return NULL;
}

tu_tensor *tu_ckpt_find(tu_ckpt *c, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    tu_tensor *t = find_v(c, fmt, ap, name, sizeof name);
    va_end(ap);
    return t;
}

tu_tensor *tu_ckpt_get(tu_ckpt *c, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    tu_tensor *t = find_v(c, fmt, ap, name, sizeof name);
    va_end(ap);
    cr_assert_not_null(t, "no tensor %s", name);
    return t;
}

void tu_ckpt_remove(tu_ckpt *c, const char *name)
{
    tu_tensor *t = tu_ckpt_get(c, "%s", name);
    free((void *)t->name);
    free((void *)t->data);
    int32_t i = (int32_t)(t - c->t);
    memmove(&c->t[i], &c->t[i + 1], (size_t)(c->n - i - 1) * sizeof *c->t);
    c->n--;
}

void tu_ckpt_rename(tu_ckpt *c, const char *from, const char *to)
{
    tu_tensor *t = tu_ckpt_get(c, "%s", from);
    free((void *)t->name);
    t->name = dup_text(to);
}

void tu_ckpt_round_bf16(tu_ckpt *c, bool store_bf16)
{
    for (int32_t i = 0; i < c->n; i++) {
        tu_tensor *t = &c->t[i];
        int64_t n = tu_ckpt_values(t);
        float *v = (float *)t->data;
        if (!store_bf16) {
            for (int64_t k = 0; k < n; k++)
                v[k] = sl_bf16_to_f32(sl_f32_to_bf16(v[k]));
            continue;
        }
        uint16_t *h = malloc((size_t)n * sizeof *h + 1);
        cr_assert_not_null(h);
        for (int64_t k = 0; k < n; k++)
            h[k] = sl_f32_to_bf16(v[k]);
        free(v);
        t->data = h;
        t->nbytes = (size_t)n * sizeof *h;
        t->dtype = "BF16";
    }
}

const char *tu_ckpt_write(const tu_ckpt *c, json_object *config, int32_t shards)
{
    static char dirs[8][256];
    static int next;
    char *dir = dirs[next++ % 8];
    snprintf(dir, sizeof dirs[0], "%s", tu_tmpdir());
    const char *text = json_object_to_json_string_ext(config, JSON_C_TO_STRING_PRETTY);
    tu_write_file(dir, "config.json", text, strlen(text));
    char path[4096];
    if (shards <= 1) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        tu_st_write(path, c->t, c->n);
        return dir;
    }
    tu_tensor *part = malloc((size_t)c->n * sizeof *part);
    json_object *map = json_object_new_object();
    for (int32_t s = 0; s < shards; s++) {
        char file[64];
        snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, shards);
        int32_t n = 0;
        for (int32_t i = s; i < c->n; i += shards) {
            part[n++] = c->t[i];
            json_object_object_add(map, c->t[i].name, json_object_new_string(file));
        }
        snprintf(path, sizeof path, "%s/%s", dir, file);
        tu_st_write(path, part, n);
    }
    free(part);
    json_object *index = json_object_new_object();
    json_object_object_add(index, "metadata", json_object_new_object());
    json_object_object_add(index, "weight_map", map);
    text = json_object_to_json_string(index);
    tu_write_file(dir, "model.safetensors.index.json", text, strlen(text));
    json_object_put(index);
    return dir;
}

json_object *tu_arch_config(const char *family)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/arch/%s/config.json", family);
    return tu_load_json(tu_src(rel));
}

tu_ckpt tu_arch_weights(const char *family)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/arch/%s", family);
    return tu_ckpt_read(tu_src(rel));
}

float *tu_logits_run(const char *dir, int32_t *n_vocab)
{
    sl_model *m = tu_load_model(dir);
    int32_t V = sl_model_get_config(m)->n_vocab;
    sl_session *s = tu_session(m);
    sl_token ids[TU_RUN_ROWS];
    for (int32_t i = 0; i < TU_RUN_ROWS; i++)
        ids[i] = (sl_token)((i * 37) % 500 + 3);
    float *out = malloc((size_t)TU_RUN_ROWS * (size_t)V * sizeof *out);
    cr_assert_not_null(out);
    int32_t prompt = TU_RUN_ROWS - 3, rows = 0;
    sl_error err;
    cr_assert_eq(sl_session_eval(s, ids, prompt, SL_EVAL_ALL_LOGITS, &err), SL_STATUS_OK, "%s: %s", dir, err.msg);
    const float *all = sl_session_logits_all(s, &rows);
    cr_assert_eq(rows, prompt);
    memcpy(out, all, (size_t)prompt * (size_t)V * sizeof *out);
    for (int32_t i = prompt; i < TU_RUN_ROWS; i++) {
        cr_assert_eq(sl_session_eval(s, &ids[i], 1, 0, &err), SL_STATUS_OK, "%s: %s", dir, err.msg);
        memcpy(out + (size_t)i * (size_t)V, sl_session_logits(s), (size_t)V * sizeof *out);
    }
    sl_session_free(s);
    sl_model_free(m);
    *n_vocab = V;
    return out;
}

float *tu_ckpt_logits(const tu_ckpt *c, json_object *config, int32_t shards, int32_t *n_vocab)
{
    char dir[256], path[4096];
    snprintf(dir, sizeof dir, "%s", tu_ckpt_write(c, config, shards));
    float *out = tu_logits_run(dir, n_vocab);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot list %s", dir);
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
    return out;
}
