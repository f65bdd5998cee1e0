/* Writes a random-weight Hugging Face checkpoint for a config.json, so benchmarks and load
 * tests can run at real model shapes without downloading weights.
 *   sl_make_checkpoint CONFIG_JSON OUT_DIR [--dtype f32|f16|bf16] [--seed N]
 * OUT_DIR receives a verbatim copy of the config and model.safetensors holding every tensor
 * the config implies (Llama/Mistral/Qwen2 names). Weights ~ N(0, 0.02); norm weights are
 * 1 + N(0, 0.02). The output is a pure function of the config, dtype and seed. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "model/config.h"
#include "util/json_util.h"
#include "kernels/kernels.h"

#define WEIGHT_STD 0.02
/* Values generated and converted per write; bounds the tool's memory to a few MiB however
 * large the model is. */
#define CHUNK_VALUES (1u << 20)

/* A norm is drawn around 1, or around 0 where the family applies (1 + w) (Gemma). */
typedef enum tensor_kind { KIND_MATRIX, KIND_NORM, KIND_NORM_DELTA, KIND_BIAS } tensor_kind;

typedef struct tensor_spec {
    char name[96];
    int64_t rows, cols; /* rows = 0: a vector of cols values */
    tensor_kind kind;
} tensor_spec;

typedef struct tensor_list {
    tensor_spec *items;
    int32_t n, cap;
} tensor_list;

static const char *g_out_path = "sl_make_checkpoint";

static void die(const char *file, const char *what, const char *detail)
{
    fprintf(stderr, "slua: %s: %s (%s)\n", file, what, detail);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: sl_make_checkpoint CONFIG_JSON OUT_DIR [--dtype f32|f16|bf16] [--seed N]\n");
    exit(2);
}

/* ------------------------------------------------------------------ random numbers */

/* xorshift64*: tiny, fast and identical on every platform, unlike rand(). */
typedef struct rng {
    uint64_t state;
} rng;

static uint64_t rng_next(rng *r)
{
    r->state ^= r->state >> 12;
    r->state ^= r->state << 25;
    r->state ^= r->state >> 27;
    return r->state * 0x2545F4914F6CDD1DULL;
}

/* Uniform in (0, 1]: never 0, so log() below stays finite. */
static double rng_uniform(rng *r) { return ((double)(rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0); }

/* Each tensor gets its own stream seeded from the global seed and its name, so a tensor's
 * values do not depend on which tensors precede it. */
static rng rng_for_tensor(uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ULL ^ seed; /* FNV-1a over the name */
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    rng r = {h ? h : 0x9E3779B97F4A7C15ULL};
    for (int i = 0; i < 4; i++) /* let nearby seeds diverge */
        rng_next(&r);
    return r;
}

/* Box-Muller: two standard normals per pair of uniforms. */
static void fill_normal(rng *r, float *out, size_t n, double mean, double std)
{
    size_t i = 0;
    for (; i + 1 < n; i += 2) {
        double radius = sqrt(-2.0 * log(rng_uniform(r))), angle = 6.283185307179586 * rng_uniform(r);
        out[i] = (float)(mean + std * radius * cos(angle));
        out[i + 1] = (float)(mean + std * radius * sin(angle));
    }
    if (i < n)
        out[i] = (float)(mean + std * sqrt(-2.0 * log(rng_uniform(r))) * cos(6.283185307179586 * rng_uniform(r)));
}

/* ------------------------------------------------------------------ the tensor list */

static void add_tensor(tensor_list *list, tensor_kind kind, int64_t rows, int64_t cols, const char *fmt, ...)
{
    if (list->n == list->cap) {
        int32_t cap = list->cap ? list->cap * 2 : 64;
        tensor_spec *grown = realloc(list->items, (size_t)cap * sizeof *grown);
        if (!grown)
            die(g_out_path, "out of memory", "tensor list");
        list->items = grown;
        list->cap = cap;
    }
    tensor_spec *t = &list->items[list->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->rows = rows;
    t->cols = cols;
    t->kind = kind;
}

/* The router, experts and shared expert of MoE layer i. */
static void list_experts(const sl_model_config *c, const sl_arch *a, int32_t i, tensor_list *list)
{
    const sl_family *f = a->family;
    int64_t D = c->n_embd, F = a->moe_ff, S = a->shared_ff;
    char part[160];
    add_tensor(list, KIND_MATRIX, a->n_expert, D, "model.layers.%d.%s", i, f->moe_router);
    for (int32_t e = 0; e < a->n_expert; e++) {
        int64_t rows[3] = {F, F, D}, cols[3] = {D, D, F};
        for (int k = 0; k < 3; k++) {
            snprintf(part, sizeof part, f->moe_expert[k], e);
            add_tensor(list, KIND_MATRIX, rows[k], cols[k], "model.layers.%d.%s", i, part);
        }
    }
    if (f->moe_shared_gate) {
        add_tensor(list, KIND_MATRIX, S, D, "model.layers.%d.%s", i, f->moe_shared[0]);
        add_tensor(list, KIND_MATRIX, S, D, "model.layers.%d.%s", i, f->moe_shared[1]);
        add_tensor(list, KIND_MATRIX, D, S, "model.layers.%d.%s", i, f->moe_shared[2]);
        add_tensor(list, KIND_MATRIX, 1, D, "model.layers.%d.%s", i, f->moe_shared_gate);
    }
}

/* Every tensor the loader binds for this config, in Hugging Face's module order. */
static void list_tensors(const sl_model_config *c, const sl_arch *a, tensor_list *list)
{
    const char *const *norm = a->family->norm;
    tensor_kind norm_kind = a->norm_add_one ? KIND_NORM_DELTA : KIND_NORM;
    int64_t D = c->n_embd, F = c->n_ff, V = c->n_vocab;
    int64_t QD = (int64_t)c->n_head * c->head_dim, KVD = (int64_t)c->n_head_kv * c->head_dim;
    add_tensor(list, KIND_MATRIX, V, D, "model.embed_tokens.weight");
    for (int32_t i = 0; i < c->n_layer; i++) {
        if (norm[SL_NORM_ATTN_PRE])
            add_tensor(list, norm_kind, 0, D, "model.layers.%d.%s.weight", i, norm[SL_NORM_ATTN_PRE]);
        if (a->family->fused_qkv) {
            add_tensor(list, KIND_MATRIX, QD + 2 * KVD, D, "model.layers.%d.%s", i, a->family->fused_qkv);
        } else {
            add_tensor(list, KIND_MATRIX, QD, D, "model.layers.%d.self_attn.q_proj.weight", i);
            add_tensor(list, KIND_MATRIX, KVD, D, "model.layers.%d.self_attn.k_proj.weight", i);
            add_tensor(list, KIND_MATRIX, KVD, D, "model.layers.%d.self_attn.v_proj.weight", i);
        }
        if (a->qk_norm != SL_QK_NORM_NONE) {
            bool full = a->qk_norm == SL_QK_NORM_FULL;
            add_tensor(list, norm_kind, 0, full ? QD : c->head_dim, "model.layers.%d.self_attn.q_norm.weight", i);
            add_tensor(list, norm_kind, 0, full ? KVD : c->head_dim, "model.layers.%d.self_attn.k_norm.weight", i);
        }
        if (a->qkv_bias) {
            add_tensor(list, KIND_BIAS, 0, QD, "model.layers.%d.self_attn.q_proj.bias", i);
            add_tensor(list, KIND_BIAS, 0, KVD, "model.layers.%d.self_attn.k_proj.bias", i);
            add_tensor(list, KIND_BIAS, 0, KVD, "model.layers.%d.self_attn.v_proj.bias", i);
        }
        add_tensor(list, KIND_MATRIX, D, QD, "model.layers.%d.self_attn.o_proj.weight", i);
        if (a->o_bias)
            add_tensor(list, KIND_BIAS, 0, D, "model.layers.%d.self_attn.o_proj.bias", i);
        for (int k = SL_NORM_ATTN_POST; k <= SL_NORM_FFN_PRE; k++)
            if (norm[k])
                add_tensor(list, norm_kind, 0, D, "model.layers.%d.%s.weight", i, norm[k]);
        if (sl_arch_layer_moe(a, i)) {
            list_experts(c, a, i, list);
        } else if (a->family->fused_gate_up) {
            add_tensor(list, KIND_MATRIX, 2 * F, D, "model.layers.%d.%s", i, a->family->fused_gate_up);
        } else {
            add_tensor(list, KIND_MATRIX, F, D, "model.layers.%d.mlp.gate_proj.weight", i);
            add_tensor(list, KIND_MATRIX, F, D, "model.layers.%d.mlp.up_proj.weight", i);
        }
        if (!sl_arch_layer_moe(a, i))
            add_tensor(list, KIND_MATRIX, D, F, "model.layers.%d.mlp.down_proj.weight", i);
        if (a->mlp_bias) {
            add_tensor(list, KIND_BIAS, 0, F, "model.layers.%d.mlp.gate_proj.bias", i);
            add_tensor(list, KIND_BIAS, 0, F, "model.layers.%d.mlp.up_proj.bias", i);
            add_tensor(list, KIND_BIAS, 0, D, "model.layers.%d.mlp.down_proj.bias", i);
        }
        if (norm[SL_NORM_FFN_POST])
            add_tensor(list, norm_kind, 0, D, "model.layers.%d.%s.weight", i, norm[SL_NORM_FFN_POST]);
    }
    add_tensor(list, norm_kind, 0, D, "model.norm.weight");
    if (!c->tie_word_embeddings)
        add_tensor(list, KIND_MATRIX, V, D, "lm_head.weight");
}

static int64_t tensor_values(const tensor_spec *t) { return (t->rows ? t->rows : 1) * t->cols; }

/* ------------------------------------------------------------------ output */

typedef struct out_dtype {
    const char *flag, *st_name;
    size_t size;
} out_dtype;

static const out_dtype dtypes[] = {{"f32", "F32", 4}, {"f16", "F16", 2}, {"bf16", "BF16", 2}};

typedef struct text {
    char *data;
    size_t len, cap;
} text;

static void text_append(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            die(g_out_path, "cannot format header", strerror(errno));
        if (t->data && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *grown = realloc(t->data, cap);
        if (!grown)
            die(g_out_path, "out of memory", "safetensors header");
        t->data = grown;
        t->cap = cap;
    }
}

/* The JSON header, padded with spaces so the data section starts 8-byte aligned. */
static text build_header(const tensor_list *list, const out_dtype *dt)
{
    text h = {0};
    text_append(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t offset = 0;
    for (int32_t i = 0; i < list->n; i++) {
        const tensor_spec *t = &list->items[i];
        uint64_t bytes = (uint64_t)tensor_values(t) * dt->size;
        if (t->rows)
            text_append(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%" PRId64 ",%" PRId64 "]", t->name, dt->st_name,
                        t->rows, t->cols);
        else
            text_append(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%" PRId64 "]", t->name, dt->st_name, t->cols);
        text_append(&h, ",\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", offset, offset + bytes);
        offset += bytes;
    }
    text_append(&h, "}");
    while (h.len % 8 != 0)
        text_append(&h, " ");
    return h;
}

static void write_bytes(FILE *f, const void *p, size_t n)
{
    if (fwrite(p, 1, n, f) != n)
        die(g_out_path, "write failed", strerror(errno));
}

/* Generate one tensor chunk by chunk, converting to the stored type as it goes. */
static void write_tensor(FILE *f, const tensor_spec *t, const out_dtype *dt, uint64_t seed, float *values,
                         uint16_t *halves)
{
    rng r = rng_for_tensor(seed, t->name);
    double mean = t->kind == KIND_NORM ? 1.0 : 0.0;
    int64_t total = tensor_values(t);
    for (int64_t done = 0; done < total;) {
        size_t n = total - done < (int64_t)CHUNK_VALUES ? (size_t)(total - done) : CHUNK_VALUES;
        fill_normal(&r, values, n, mean, WEIGHT_STD);
        if (dt->size == 4) {
            write_bytes(f, values, n * sizeof *values);
        } else {
            bool bf16 = strcmp(dt->flag, "bf16") == 0;
            for (size_t i = 0; i < n; i++)
                halves[i] = bf16 ? sl_f32_to_bf16(values[i]) : sl_f32_to_f16(values[i]);
            write_bytes(f, halves, n * sizeof *halves);
        }
        done += (int64_t)n;
    }
}

static void write_safetensors(const char *path, const tensor_list *list, const out_dtype *dt, uint64_t seed)
{
    /* Written under a temporary name and renamed at the end, so an interrupted run never
     * leaves a truncated model.safetensors that a later "generate if absent" would trust. */
    char tmp_path[4200];
    snprintf(tmp_path, sizeof tmp_path, "%s.partial", path);
    g_out_path = tmp_path;
    FILE *f = fopen(tmp_path, "wb");
    if (!f)
        die(tmp_path, "cannot create file", strerror(errno));
    text header = build_header(list, dt);
    uint8_t len_le[8];
    for (int i = 0; i < 8; i++)
        len_le[i] = (uint8_t)((uint64_t)header.len >> (8 * i));
    write_bytes(f, len_le, sizeof len_le);
    write_bytes(f, header.data, header.len);
    free(header.data);

    float *values = malloc(CHUNK_VALUES * sizeof *values);
    uint16_t *halves = malloc(CHUNK_VALUES * sizeof *halves);
    if (!values || !halves)
        die(tmp_path, "out of memory", "conversion buffers");
    for (int32_t i = 0; i < list->n; i++)
        write_tensor(f, &list->items[i], dt, seed, values, halves);
    free(values);
    free(halves);
    if (fclose(f) != 0)
        die(tmp_path, "write failed", strerror(errno));
    if (rename(tmp_path, path) != 0)
        die(path, "cannot rename finished file into place", strerror(errno));
    g_out_path = path;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        die(from, "cannot open", strerror(errno));
    FILE *out = fopen(to, "wb");
    if (!out)
        die(to, "cannot create file", strerror(errno));
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            die(to, "write failed", strerror(errno));
    if (ferror(in))
        die(from, "read failed", strerror(errno));
    fclose(in);
    if (fclose(out) != 0)
        die(to, "write failed", strerror(errno));
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    const char *config_path = NULL, *out_dir = NULL, *dtype_flag = "bf16";
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
        } else if (strcmp(a, "--dtype") == 0 || strcmp(a, "--seed") == 0) {
            if (i + 1 >= argc)
                die("sl_make_checkpoint", "missing value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--dtype") == 0) {
                dtype_flag = v;
            } else {
                char *end;
                errno = 0;
                unsigned long long s = strtoull(v, &end, 10);
                if (errno || end == v || *end || v[0] == '-')
                    die("sl_make_checkpoint", "--seed must be a non-negative integer", v);
                seed = (uint64_t)s;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            die("sl_make_checkpoint", "unknown option", a);
        } else if (!config_path) {
            config_path = a;
        } else if (!out_dir) {
            out_dir = a;
        } else {
            die("sl_make_checkpoint", "too many arguments", a);
        }
    }
    if (!config_path || !out_dir)
        usage();
    const out_dtype *dt = NULL;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtype_flag, dtypes[i].flag) == 0)
            dt = &dtypes[i];
    if (!dt)
        die("sl_make_checkpoint", "--dtype must be f32, f16 or bf16", dtype_flag);

    json_object *root = NULL;
    sl_error err;
    sl_model_config cfg;
    sl_arch arch;
    if (sl_json_load_file(config_path, &root, &err) != SL_STATUS_OK ||
        sl_config_parse(config_path, root, &cfg, &arch, &err) != SL_STATUS_OK) {
        fprintf(stderr, "slua: %s\n", err.msg);
        return 1;
    }
    json_object_put(root);

    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        die(out_dir, "cannot create directory", strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", out_dir);
    copy_file(config_path, path);

    tensor_list list = {0};
    list_tensors(&cfg, &arch, &list);
    int64_t params = 0;
    for (int32_t i = 0; i < list.n; i++)
        params += tensor_values(&list.items[i]);
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    write_safetensors(path, &list, dt, seed);
    printf("%s: %d tensors, %" PRId64 " parameters, %.1f MB %s\n", path, list.n, params,
           (double)params * (double)dt->size / 1e6, dt->st_name);
    free(list.items);
    return 0;
}
