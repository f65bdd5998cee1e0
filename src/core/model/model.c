/* Loading a Hugging Face checkpoint directory into an sl_model. */
#define _DEFAULT_SOURCE /* madvise */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "util/error.h"
#include "util/file_io.h"
#include "internal.h"
#include "kernels/kernels_q8.h"
#include "util/json_util.h"

#define BIG_BUFFER ((size_t)2 << 20)

static sl_status own_buffer(sl_model *m, void **out, size_t bytes, const char *what, sl_error *err)
{
    void **grown = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *grown);
    if (!grown)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for %s", m->path, what);
    m->owned = grown;
    *out = NULL;
    if (bytes >= BIG_BUFFER) {
        /* converted weights, streamed once per decode step: on huge pages where the kernel gives
         * them (fewer TLB misses; a Q8_0 product of one row with SmolLM2-135M's LM head reads
         * 15 -> 31 GB/s on a Zen 4) */
        if (posix_memalign(out, BIG_BUFFER, bytes) == 0)
            madvise(*out, bytes, MADV_HUGEPAGE); /* a hint: without it the memory still works */
        else
            *out = NULL;
    } else
        *out = malloc(bytes ? bytes : 1);
    if (!*out)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for %s", m->path, what);
    m->owned[m->n_owned++] = *out;
    return SL_STATUS_OK;
}

static sl_status own_vector(sl_model *m, float **out, int64_t n, const char *what, sl_error *err)
{
    void *p = NULL;
    sl_status rc = own_buffer(m, &p, (size_t)n * sizeof **out, what, err);
    *out = p;
    return rc;
}

static sl_status bind_weight(sl_model *m, const char *name, int64_t rows, int64_t cols, sl_weight *w,
                             sl_error *err)
{
    const sl_st_tensor *t = sl_st_find(m->st, name);
    if (!t)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing tensor '%s' (required by config.json)",
                            sl_st_label(m->st), name);
    bool vector = rows == 1;
    /* a one-row matrix (Qwen2-MoE's shared-expert gate) may be stored as [1, cols] */
    bool shape_ok = vector ? ((t->ndim == 1 && t->shape[0] == cols) ||
                              (t->ndim == 2 && t->shape[0] == 1 && t->shape[1] == cols))
                           : (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!shape_ok) {
        char got[128] = "[";
        for (int32_t i = 0; i < t->ndim; i++) {
            size_t len = strlen(got);
            snprintf(got + len, sizeof got - len, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        }
        strncat(got, "]", sizeof got - strlen(got) - 1);
        if (vector)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: tensor '%s' has shape %s, expected [%lld]", t->file,
                                name, got, (long long)cols);
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: tensor '%s' has shape %s, expected [%lld, %lld]", t->file,
                            name, got, (long long)rows, (long long)cols);
    }
    *w = (sl_weight){0}; /* every field: the callers' weights live on the stack too */
    switch (t->dtype) {
    case SL_ST_F32: w->dtype = SL_DTYPE_F32; break;
    case SL_ST_F16: w->dtype = SL_DTYPE_F16; break;
    case SL_ST_BF16: w->dtype = SL_DTYPE_BF16; break;
    default:
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: tensor '%s' has unsupported dtype %s (F32, F16, BF16)",
                            t->file, name, sl_st_dtype_name(t->dtype));
    }
    w->data = t->data;
    /* The format promises no alignment (a header may end with any number of padding spaces), but
     * the kernels read elements through typed pointers: a misaligned tensor is copied once. */
    if ((uintptr_t)t->data % sl_st_dtype_size(t->dtype) != 0) {
        void *copy;
        sl_status rc = own_buffer(m, &copy, (size_t)t->nbytes, name, err);
        if (rc != SL_STATUS_OK)
            return rc;
        memcpy(copy, t->data, (size_t)t->nbytes);
        w->data = copy;
    }
    w->rows = rows;
    w->cols = cols;
    return SL_STATUS_OK;
}

/* A vector weight converted to float32; absent optional vectors leave *out NULL. */
static sl_status bind_vector(sl_model *m, const char *name, int64_t n, bool required, float **out, sl_error *err)
{
    *out = NULL;
    if (!required && !sl_st_find(m->st, name))
        return SL_STATUS_OK;
    sl_weight w;
    sl_status rc = bind_weight(m, name, 1, n, &w, err);
    if (rc == SL_STATUS_OK)
        rc = own_vector(m, out, n, name, err);
    if (rc == SL_STATUS_OK)
        sl_weight_to_f32(*out, &w);
    return rc;
}

/* Rows [row0, row0 + rows) of a stored matrix as a matrix of their own (a fused projection's
 * parts); the products see it as any other weight. */
static sl_weight weight_rows(const sl_weight *w, int64_t row0, int64_t rows)
{
    sl_weight part = *w;
    part.data = (const char *)w->data + row0 * w->cols * (w->dtype == SL_DTYPE_F32 ? 4 : 2);
    part.rows = rows;
    return part;
}

/* A norm weight as the block applies it: Gemma stores w and scales by (1 + w), which float32
 * computes as HF does (1 + w in float32, then the product). */
static sl_status bind_norm(sl_model *m, const char *name, int64_t n, float **out, sl_error *err)
{
    sl_status rc = bind_vector(m, name, n, true, out, err);
    if (rc == SL_STATUS_OK && m->arch.norm_add_one)
        for (int64_t i = 0; i < n; i++)
            (*out)[i] = 1.0f + (*out)[i];
    return rc;
}

/* The router and experts of MoE layer i (and its shared expert when the family has one). */
static sl_status bind_experts(sl_model *m, int32_t i, sl_block *b, sl_error *err)
{
    const sl_arch *a = &m->arch;
    const sl_family *f = a->family;
    int64_t D = m->cfg.n_embd, F = a->moe_ff, S = a->shared_ff;
    char name[200], part[160];
    sl_status rc;
    void *mem = NULL;
    if ((rc = own_buffer(m, &mem, 3 * (size_t)a->n_expert * sizeof(sl_weight), "experts", err)))
        return rc;
    b->n_expert = a->n_expert;
    b->ex_gate = mem;
    b->ex_up = b->ex_gate + a->n_expert;
    b->ex_down = b->ex_up + a->n_expert;
#define NAME(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", i, suffix), name)
#define PART(k, e) (snprintf(part, sizeof part, f->moe_expert[k], e), NAME(part))
    if ((rc = bind_weight(m, NAME(f->moe_router), a->n_expert, D, &b->router, err)))
        return rc;
    for (int32_t e = 0; e < a->n_expert; e++)
        if ((rc = bind_weight(m, PART(0, e), F, D, &b->ex_gate[e], err)) ||
            (rc = bind_weight(m, PART(1, e), F, D, &b->ex_up[e], err)) ||
            (rc = bind_weight(m, PART(2, e), D, F, &b->ex_down[e], err)))
            return rc;
    if (f->moe_shared_gate &&
        ((rc = bind_weight(m, NAME(f->moe_shared[0]), S, D, &b->sh_gate, err)) ||
         (rc = bind_weight(m, NAME(f->moe_shared[1]), S, D, &b->sh_up, err)) ||
         (rc = bind_weight(m, NAME(f->moe_shared[2]), D, S, &b->sh_down, err)) ||
         (rc = bind_weight(m, NAME(f->moe_shared_gate), 1, D, &b->sh_router, err))))
        return rc;
#undef PART
#undef NAME
    return SL_STATUS_OK;
}

static sl_status bind_block(sl_model *m, int32_t i, sl_error *err)
{
    const sl_model_config *c = &m->cfg;
    const sl_arch *a = &m->arch;
    sl_block *b = &m->blocks[i];
    int64_t D = c->n_embd, F = c->n_ff, QD = (int64_t)c->n_head * c->head_dim,
            KVD = (int64_t)c->n_head_kv * c->head_dim;
    char name[160];
    sl_status rc;
#define NAME(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", i, suffix), name)
    if (a->family->fused_qkv) {
        sl_weight qkv;
        if ((rc = bind_weight(m, NAME(a->family->fused_qkv), QD + 2 * KVD, D, &qkv, err)))
            return rc;
        b->wq = weight_rows(&qkv, 0, QD);
        b->wk = weight_rows(&qkv, QD, KVD);
        b->wv = weight_rows(&qkv, QD + KVD, KVD);
    } else if ((rc = bind_weight(m, NAME("self_attn.q_proj.weight"), QD, D, &b->wq, err)) ||
               (rc = bind_weight(m, NAME("self_attn.k_proj.weight"), KVD, D, &b->wk, err)) ||
               (rc = bind_weight(m, NAME("self_attn.v_proj.weight"), KVD, D, &b->wv, err))) {
        return rc;
    }
    if (sl_arch_layer_moe(a, i)) {
        if ((rc = bind_experts(m, i, b, err)))
            return rc;
    } else if (a->family->fused_gate_up) {
        sl_weight gate_up;
        if ((rc = bind_weight(m, NAME(a->family->fused_gate_up), 2 * F, D, &gate_up, err)))
            return rc;
        b->w_gate = weight_rows(&gate_up, 0, F);
        b->w_up = weight_rows(&gate_up, F, F);
    } else if ((rc = bind_weight(m, NAME("mlp.gate_proj.weight"), F, D, &b->w_gate, err)) ||
               (rc = bind_weight(m, NAME("mlp.up_proj.weight"), F, D, &b->w_up, err))) {
        return rc;
    }
    if ((rc = bind_weight(m, NAME("self_attn.o_proj.weight"), D, QD, &b->wo, err)) ||
        (b->n_expert == 0 && (rc = bind_weight(m, NAME("mlp.down_proj.weight"), D, F, &b->w_down, err))))
        return rc;
    for (int k = 0; k < SL_NORM_SLOTS; k++) {
        char suffix[96];
        snprintf(suffix, sizeof suffix, "%s.weight", a->family->norm[k] ? a->family->norm[k] : "");
        if (a->family->norm[k] && (rc = bind_norm(m, NAME(suffix), D, &b->norm[k], err)))
            return rc;
    }
    if (a->qk_norm != SL_QK_NORM_NONE) {
        bool full = a->qk_norm == SL_QK_NORM_FULL;
        if ((rc = bind_norm(m, NAME("self_attn.q_norm.weight"), full ? QD : c->head_dim, &b->q_norm, err)) ||
            (rc = bind_norm(m, NAME("self_attn.k_norm.weight"), full ? KVD : c->head_dim, &b->k_norm, err)))
            return rc;
    }
    if (a->qkv_bias &&
        ((rc = bind_vector(m, NAME("self_attn.q_proj.bias"), QD, true, &b->bq, err)) ||
         (rc = bind_vector(m, NAME("self_attn.k_proj.bias"), KVD, true, &b->bk, err)) ||
         (rc = bind_vector(m, NAME("self_attn.v_proj.bias"), KVD, true, &b->bv, err))))
        return rc;
    if (a->o_bias && (rc = bind_vector(m, NAME("self_attn.o_proj.bias"), D, true, &b->bo, err)))
        return rc;
    if (a->mlp_bias &&
        ((rc = bind_vector(m, NAME("mlp.gate_proj.bias"), F, true, &b->b_gate, err)) ||
         (rc = bind_vector(m, NAME("mlp.up_proj.bias"), F, true, &b->b_up, err)) ||
         (rc = bind_vector(m, NAME("mlp.down_proj.bias"), D, true, &b->b_down, err))))
        return rc;
#undef NAME
    b->window = sl_arch_layer_window(a, i);
    b->inv_freq = b->window > 0 && a->local_rope_theta > 0 ? m->inv_freq_local : m->inv_freq;
    return SL_STATUS_OK;
}

/* The converted matrices share one buffer: a first walk over them sizes it (take_converted only
 * counts), a second converts into it. */
static void *take_converted(sl_model *m, size_t bytes)
{
    bytes = (bytes + 63) & ~(size_t)63;
    if (m->sizing_converted) {
        m->converted_cap += bytes;
        return NULL;
    }
    void *p = m->converted + m->converted_used;
    m->converted_used += bytes;
    return p;
}

/* w (a stored matrix) converted to Q8_0 in the model's buffer; packed where the kernel level in
 * use takes that layout. */
static sl_status quantize_q8(sl_model *m, sl_weight *w, const char *what, sl_error *err)
{
    int64_t blocks = sl_q8_blocks(w->cols);
    bool pack = sl_q8_packed_native();
    int64_t rows = pack ? sl_q8_groups(w->rows) * 16 : w->rows;
    void *q = take_converted(m, (size_t)(rows * blocks * SL_Q8_BLOCK));
    void *d = take_converted(m, (size_t)(rows * blocks) * (pack ? sizeof(uint16_t) : sizeof(float)));
    if (m->sizing_converted)
        return SL_STATUS_OK;
    int8_t *plain_q = pack ? malloc((size_t)(w->rows * blocks * SL_Q8_BLOCK)) : q;
    float *plain_d = pack ? malloc((size_t)(w->rows * blocks) * sizeof *plain_d) : d;
    bool ok = plain_q && plain_d && sl_q8_convert(plain_q, plain_d, w);
    if (ok && pack)
        sl_q8_pack(q, d, plain_q, plain_d, w->rows, w->cols);
    if (pack) {
        free(plain_q);
        free(plain_d);
    }
    if (!ok)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory converting %s to q8_0", m->path, what);
    w->data = q;
    w->q8_scales = d;
    w->q8_packed = pack;
    return SL_STATUS_OK;
}

/* fn on every matrix a lossy weight format or compute mode converts: the blocks' projections,
 * MLPs and experts, and the LM head (a tied one then gets its own copy; the embedding lookup
 * keeps the stored values). The routers stay as stored: converting them would move which
 * experts a token takes. */
static sl_status each_converted_matrix(sl_model *m, sl_status (*fn)(sl_model *, sl_weight *, const char *, sl_error *),
                                       sl_error *err)
{
    sl_status rc;
    for (int32_t i = 0; i < m->cfg.n_layer; i++) {
        sl_block *b = &m->blocks[i];
        sl_weight *ws[] = {&b->wq, &b->wk, &b->wv, &b->wo, &b->w_gate, &b->w_up, &b->w_down,
                           &b->sh_gate, &b->sh_up, &b->sh_down};
        for (size_t k = 0; k < sizeof ws / sizeof *ws; k++)
            if (ws[k]->rows > 0 && (rc = fn(m, ws[k], "a block's matrices", err)))
                return rc;
        for (int32_t e = 0; e < b->n_expert; e++)
            if ((rc = fn(m, &b->ex_gate[e], "an expert's matrices", err)) ||
                (rc = fn(m, &b->ex_up[e], "an expert's matrices", err)) ||
                (rc = fn(m, &b->ex_down[e], "an expert's matrices", err)))
                return rc;
    }
    return fn(m, &m->lm_head, "lm_head", err);
}

/* w (a stored matrix) marked for BF16 compute, converted to BF16 in a buffer the model owns when
 * stored otherwise. */
static sl_status to_bf16_compute(sl_model *m, sl_weight *w, const char *what, sl_error *err)
{
    if (w->dtype != SL_DTYPE_BF16) {
        uint16_t *buf = take_converted(m, (size_t)(w->rows * w->cols) * sizeof(uint16_t));
        if (m->sizing_converted)
            return SL_STATUS_OK;
        float *row = malloc((size_t)w->cols * sizeof *row);
        if (!row)
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory converting %s to bf16", m->path, what);
        for (int64_t r = 0; r < w->rows; r++) {
            sl_weight_row(row, w, r);
            sl_round_bf16(buf + r * w->cols, row, w->cols);
        }
        free(row);
        w->data = buf;
        w->dtype = SL_DTYPE_BF16;
    }
    w->bf16_compute = !m->sizing_converted;
    return SL_STATUS_OK;
}

/* fn over every converted matrix twice: sizing the model's buffer, then converting into it. */
static sl_status convert_matrices(sl_model *m, sl_status (*fn)(sl_model *, sl_weight *, const char *, sl_error *),
                                  sl_error *err)
{
    m->sizing_converted = true;
    sl_status rc = each_converted_matrix(m, fn, err);
    m->sizing_converted = false;
    void *mem = NULL;
    if (rc == SL_STATUS_OK && m->converted_cap > 0 &&
        (rc = own_buffer(m, &mem, m->converted_cap, "the converted matrices", err)) == SL_STATUS_OK)
        m->converted = mem;
    return rc == SL_STATUS_OK ? each_converted_matrix(m, fn, err) : rc;
}

/* RoPE inverse frequencies exactly as HF computes them in float32 over the rotated channels,
 * including the linear and llama3 rescalings (with `scaled`; windowed layers with their own
 * base have none) and, given `divisors`, longrope's 1 / (factor * base^e). */
static void compute_inv_freq(const sl_model *m, float *out, float theta, bool scaled_rope, const float *divisors)
{
    const sl_rope_scaling *rs = &m->arch.rope_scaling;
    int32_t dims = m->arch.rope_dims, half = dims / 2;
    for (int32_t i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)dims;
        float power = (float)pow((double)theta, (double)e);
        float inv = divisors ? 1.0f / (divisors[i] * power) : 1.0f / power;
        if (scaled_rope && rs->type == SL_ROPE_LINEAR) {
            inv = inv / rs->factor;
        } else if (scaled_rope && rs->type == SL_ROPE_LLAMA3) {
            float old_ctx = (float)rs->original_max_position;
            float low_wavelen = old_ctx / rs->low_freq_factor;
            float high_wavelen = old_ctx / rs->high_freq_factor;
            float wavelen = (float)(2.0 * 3.14159265358979323846) / inv;
            float scaled = wavelen > low_wavelen ? inv / rs->factor : inv;
            if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
                float smooth = (old_ctx / wavelen - rs->low_freq_factor) / (rs->high_freq_factor - rs->low_freq_factor);
                scaled = (1.0f - smooth) * scaled / rs->factor + smooth * scaled;
            }
            inv = scaled;
        }
        out[i] = inv;
    }
}

static sl_status load_config(sl_model *m, sl_error *err)
{
    char path[4096];
    json_object *root = NULL;
    snprintf(path, sizeof path, "%s/config.json", m->path);
    sl_status rc = sl_json_load_file(path, &root, err);
    if (rc == SL_STATUS_OK)
        rc = sl_config_parse(path, root, &m->cfg, &m->arch, err);
    json_object_put(root);
    if (rc != SL_STATUS_OK)
        return rc;
    snprintf(path, sizeof path, "%s/generation_config.json", m->path);
    if (sl_file_kind_of(path) == SL_FILE_MISSING)
        return SL_STATUS_OK;
    root = NULL;
    rc = sl_json_load_file(path, &root, err);
    if (rc == SL_STATUS_OK)
        rc = sl_config_add_generation_eos(path, root, &m->cfg, err);
    json_object_put(root);
    return rc;
}

sl_model *sl_model_load(const char *dir, sl_error *err) { return sl_model_load_params(dir, NULL, err); }

sl_model *sl_model_load_params(const char *dir, const sl_load_params *params, sl_error *err)
{
    sl_error_clear(err);
    sl_weight_format weights = params ? params->weights : SL_WEIGHTS_STORED;
    if (weights != SL_WEIGHTS_STORED && weights != SL_WEIGHTS_Q8_0) {
        sl_error_set(err, SL_STATUS_E_ARG, "sl_model_load_params: unknown weight format %d", (int)weights);
        return NULL;
    }
    sl_compute_mode compute = params ? params->compute : SL_COMPUTE_EXACT;
    if (compute != SL_COMPUTE_EXACT && compute != SL_COMPUTE_BF16) {
        sl_error_set(err, SL_STATUS_E_ARG, "sl_model_load_params: unknown compute mode %d", (int)compute);
        return NULL;
    }
    if (compute == SL_COMPUTE_BF16 && weights == SL_WEIGHTS_Q8_0) {
        sl_error_set(err, SL_STATUS_E_ARG, "sl_model_load_params: compute bf16 with q8_0 weights (q8_0 has its own)");
        return NULL;
    }
    if (!dir || !*dir) {
        sl_error_set(err, SL_STATUS_E_ARG, "sl_model_load: empty model directory");
        return NULL;
    }
    sl_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(dir))) {
        free(m);
        sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", dir);
        return NULL;
    }
    atomic_init(&m->refs, 1);
    const sl_model_config *c = &m->cfg;
    sl_status rc = load_config(m, err);
    if (rc != SL_STATUS_OK)
        goto fail;
    if (!(m->st = sl_st_open_dir(dir, params && params->mmap, err)))
        goto fail;
    m->blocks = calloc((size_t)c->n_layer, sizeof *m->blocks);
    if (!m->blocks || own_vector(m, &m->inv_freq, c->head_dim / 2, "rope", err) != SL_STATUS_OK ||
        (m->arch.local_rope_theta > 0 &&
         own_vector(m, &m->inv_freq_local, c->head_dim / 2, "rope", err) != SL_STATUS_OK) ||
        (m->arch.rope_long_after > 0 &&
         own_vector(m, &m->inv_freq_long, c->head_dim / 2, "rope", err) != SL_STATUS_OK)) {
        sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    if ((rc = bind_weight(m, "model.embed_tokens.weight", c->n_vocab, c->n_embd, &m->embed, err)) ||
        (rc = bind_norm(m, "model.norm.weight", c->n_embd, &m->final_norm, err)))
        goto fail;
    if (c->tie_word_embeddings)
        m->lm_head = m->embed;
    else if ((rc = bind_weight(m, "lm_head.weight", c->n_vocab, c->n_embd, &m->lm_head, err)))
        goto fail;
    for (int32_t i = 0; i < c->n_layer; i++)
        if ((rc = bind_block(m, i, err)))
            goto fail;
    m->cfg.dtype = m->embed.dtype;
    if (weights == SL_WEIGHTS_Q8_0 && (rc = convert_matrices(m, quantize_q8, err)))
        goto fail;
    if (compute == SL_COMPUTE_BF16 && (rc = convert_matrices(m, to_bf16_compute, err)))
        goto fail;
    m->weights = weights;
    m->compute = compute;
    const sl_arch *a = &m->arch;
    compute_inv_freq(m, m->inv_freq, c->rope_theta, true, a->rope_long_after > 0 ? a->rope_short : NULL);
    if (m->inv_freq_local)
        compute_inv_freq(m, m->inv_freq_local, a->local_rope_theta, false, NULL);
    if (m->inv_freq_long)
        compute_inv_freq(m, m->inv_freq_long, c->rope_theta, true, a->rope_long);
    return m;
fail:
    sl_model_free(m);
    return NULL;
}

sl_model *sl_model_retain(sl_model *m)
{
    if (m)
        atomic_fetch_add(&m->refs, 1);
    return m;
}

void sl_model_free(sl_model *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    for (int32_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->blocks);
    sl_st_close(m->st);
    free(m->path);
    free(m);
}

const sl_model_config *sl_model_get_config(const sl_model *m) { return &m->cfg; }
const char *sl_model_path(const sl_model *m) { return m->path; }
sl_weight_format sl_model_weight_format(const sl_model *m) { return m->weights; }
sl_compute_mode sl_model_compute(const sl_model *m) { return m->compute; }
bool sl_compute_bf16_native(void) { return sl_bf16_dot_native(); }
int32_t sl_model_n_layer(const sl_model *m) { return m->cfg.n_layer; }
int32_t sl_model_n_vocab(const sl_model *m) { return m->cfg.n_vocab; }
int32_t sl_model_n_embd(const sl_model *m) { return m->cfg.n_embd; }
size_t sl_model_weight_bytes(const sl_model *m) { return (size_t)sl_st_mapped_bytes(m->st); }

bool sl_model_is_eos(const sl_model *m, sl_token tok)
{
    for (int32_t i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos[i] == tok)
            return true;
    return false;
}
