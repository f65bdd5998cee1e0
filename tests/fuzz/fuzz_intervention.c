/* Intervention specs (sl_intervention_parse) on arbitrary bytes, against the bundled tiny Llama
 * (8 blocks, d_model 64, 4 heads of 16). An accepted spec must hold what the forward pass
 * indexes by, and must run: a prompt and a step of a session with it, capturing every hook it
 * touches. Vectors may name "v.safetensors:NAME" in a folder written at start-up. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "slua/sl_intervene.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sl_model *model;
static char vector_dir[64];

static void setup(void)
{
    sl_error err;
    model = sl_model_load(SL_SOURCE_DIR "/tests/data/hf-tiny/tiny-llama", &err);
    FUZZ_CHECK(model != NULL, "%s", err.msg);
    strcpy(vector_dir, "/tmp/fuzz_intervention_XXXXXX");
    FUZZ_CHECK(mkdtemp(vector_dir) != NULL, "mkdtemp");
    static float d_model[64], head[16], rows[3 * 64];
    for (int i = 0; i < 64; i++)
        d_model[i] = 0.01f * (float)i;
    for (int i = 0; i < 16; i++)
        head[i] = -0.5f;
    for (int i = 0; i < 3 * 64; i++)
        rows[i] = 0.001f * (float)i;
    const char *names[] = {"d_model", "head", "rows"};
    const float *vals[] = {d_model, head, rows};
    int64_t s0[] = {64}, s1[] = {16}, s2[] = {3, 64};
    const int64_t *shapes[] = {s0, s1, s2};
    int32_t ndims[] = {1, 1, 2};
    char path[128];
    snprintf(path, sizeof path, "%s/v.safetensors", vector_dir);
    FUZZ_CHECK(sl_safetensors_write(path, names, vals, shapes, ndims, 3, &err) == SL_STATUS_OK, "%s", err.msg);
}

static void check_ops(const sl_intervention *iv)
{
    int32_t N = sl_model_n_layer(model), D = sl_model_n_embd(model), H = 4, hd = 16;
    for (int32_t i = 0; i < sl_intervention_count(iv); i++) {
        const sl_op *o = sl_intervention_op(iv, i);
        FUZZ_CHECK(o && o->hook.block >= 0 && o->hook.block < N, "op %d block %d", i, o ? o->hook.block : -1);
        FUZZ_CHECK(o->hook.point >= 0 && o->hook.point < SL_HOOK_POINTS, "op %d point", i);
        int64_t width = sl_hook_width(model, o->hook);
        for (int32_t k = 0; k < o->n_heads; k++)
            FUZZ_CHECK(o->heads[k] >= 0 && o->heads[k] < H, "op %d head %d", i, o->heads[k]);
        if (o->positions.kind == SL_POSITIONS_LIST)
            for (int32_t k = 0; k < o->positions.n; k++)
                FUZZ_CHECK(o->positions.list[k] >= 0, "op %d position %d", i, o->positions.list[k]);
        if (o->kind == SL_OP_ADD && o->hook.point == SL_HOOK_ATTN_SCORES)
            FUZZ_CHECK(o->key_begin >= 0 && o->key_begin < o->key_end && o->key_end <= 256, "op %d keys [%d, %d)", i,
                       o->key_begin, o->key_end);
        else if (o->kind == SL_OP_ADD && o->hook.point == SL_HOOK_Z)
            FUZZ_CHECK(o->head >= 0 && o->head < H && o->n_vector == hd, "op %d head %d, %lld values", i, o->head,
                       (long long)o->n_vector);
        else if (o->kind == SL_OP_ADD)
            FUZZ_CHECK(o->n_vector == D && width == D, "op %d: %lld values", i, (long long)o->n_vector);
        if (o->kind == SL_OP_SET)
            FUZZ_CHECK(o->values && (o->n_rows == 1 || (o->positions.kind == SL_POSITIONS_LIST &&
                                                          o->positions.n == o->n_rows)),
                       "op %d: %d rows", i, o->n_rows);
    }
}

/* A prompt of 5 tokens and a step with the intervention, capturing the hooks it writes. */
static void run(sl_intervention *iv)
{
    sl_error err;
    sl_session *s = sl_session_init(model, NULL, &err);
    FUZZ_CHECK(s != NULL, "%s", err.msg);
    FUZZ_CHECK(sl_session_set_intervention(s, iv, &err) == SL_STATUS_OK, "%s", err.msg);
    sl_hook hooks[8];
    int32_t n = 0;
    for (int32_t i = 0; i < sl_intervention_count(iv) && n < 8; i++)
        hooks[n++] = sl_intervention_op(iv, i)->hook;
    FUZZ_CHECK(sl_session_capture(s, hooks, n, (sl_positions){SL_POSITIONS_ALL, NULL, 0}, &err) == SL_STATUS_OK,
               "%s", err.msg);
    static const sl_token prompt[] = {1, 20, 300, 4, 77};
    FUZZ_CHECK(sl_session_eval(s, prompt, 5, 0, &err) == SL_STATUS_OK, "%s", err.msg);
    sl_token next = 9;
    FUZZ_CHECK(sl_session_eval(s, &next, 1, 0, &err) == SL_STATUS_OK, "%s", err.msg);
    for (int32_t k = 0; k < n; k++) {
        sl_capture_view v;
        FUZZ_CHECK(sl_session_captured(s, hooks[k], &v, &err) == SL_STATUS_OK, "%s", err.msg);
        FUZZ_CHECK(v.n_pos == 6, "%d positions captured", v.n_pos);
    }
    sl_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model)
        setup();
    sl_error err;
    sl_intervention *iv = sl_intervention_parse(model, (const char *)data, size, "spec.json", vector_dir, &err);
    if (!iv) {
        fuzz_check_message(&err, "spec.json");
        FUZZ_CHECK(strchr(err.msg, '\n') == NULL, "a message of more than one line: %s", err.msg);
        return 0;
    }
    check_ops(iv);
    run(iv);
    sl_intervention_free(iv);
    return 0;
}
