/* Malformed checkpoints and configs: every failure is an error naming the file and the
 * problem, never a crash or an out-of-bounds read (the ASan build runs these too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "st_writer.h"
#include "test_util.h"

#define TINY "tests/data/hf-tiny/tiny-llama"

/* A model directory holding tiny-llama's config and the given safetensors bytes. */
static const char *dir_with_weights(const void *bytes, size_t len)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    tu_copy_config(tu_src(TINY), dir);
    tu_write_file(dir, "model.safetensors", bytes, len);
    return dir;
}

/* A model directory with tiny-llama's weights and the given config.json text. */
static const char *dir_with_config(const char *config)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    size_t len;
    void *w = tu_read_file(tu_src(TINY "/model.safetensors"), &len);
    tu_write_file(dir, "model.safetensors", w, len);
    tu_write_file(dir, "config.json", config, strlen(config));
    free(w);
    return dir;
}

static void expect_error(const char *dir, sl_status code, const char *file, const char *what)
{
    sl_error err;
    sl_model *m = sl_model_load(dir, &err);
    cr_assert_null(m, "loading should fail with: %s", what);
    cr_expect_eq(err.code, code, "code %s for: %s", sl_status_name(err.code), err.msg);
    cr_expect(strstr(err.msg, file) != NULL, "message names %s: %s", file, err.msg);
    cr_expect(strstr(err.msg, what) != NULL, "message says '%s': %s", what, err.msg);
}

/* tiny-llama's tensors with one changed by `edit` (which may drop it by returning 0). */
static const char *dir_with_edited(int (*edit)(tu_tensor *t))
{
    tu_st_copy w = tu_st_read(tu_src(TINY "/model.safetensors"));
    tu_tensor *kept = calloc((size_t)w.n, sizeof *kept);
    int32_t n = 0;
    for (int32_t i = 0; i < w.n; i++) {
        tu_tensor t = w.tensors[i];
        if (edit(&t))
            kept[n++] = t;
    }
    static char dir[256];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    tu_copy_config(tu_src(TINY), dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tu_st_write(path, kept, n);
    free(kept);
    tu_st_release(&w);
    return dir;
}

Test(load_errors, missing_directory)
{
    expect_error("/nonexistent/slua-model", SL_STATUS_E_IO, "/nonexistent/slua-model/config.json", "cannot open");
}

Test(load_errors, truncated_safetensors)
{
    size_t len;
    void *w = tu_read_file(tu_src(TINY "/model.safetensors"), &len);
    expect_error(dir_with_weights(w, len / 2), SL_STATUS_E_FORMAT, "model.safetensors", "past the end of the data");
    expect_error(dir_with_weights(w, 5), SL_STATUS_E_FORMAT, "model.safetensors", "too short for a safetensors header");
    free(w);
}

Test(load_errors, header_length_past_eof)
{
    uint8_t bytes[64] = {0};
    bytes[0] = 0x00;
    bytes[1] = 0x10; /* 4096-byte header in a 64-byte file */
    memcpy(bytes + 8, "{}", 2);
    expect_error(dir_with_weights(bytes, sizeof bytes), SL_STATUS_E_FORMAT, "model.safetensors",
                 "header length past end of file");
    uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_error(dir_with_weights(huge, sizeof huge), SL_STATUS_E_FORMAT, "model.safetensors",
                 "header length past end of file");
}

static void write_raw(const char *header, size_t data_len, const char **dir_out)
{
    size_t hl = strlen(header);
    size_t len = 8 + hl + data_len;
    uint8_t *bytes = calloc(1, len);
    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(bytes + 8, header, hl);
    *dir_out = dir_with_weights(bytes, len);
    free(bytes);
}

Test(load_errors, malformed_headers)
{
    const char *dir;
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
              12, &dir);
    expect_error(dir, SL_STATUS_E_FORMAT, "model.safetensors", "overlapping data spans");
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, &dir);
    expect_error(dir, SL_STATUS_E_FORMAT, "model.safetensors", "does not match its shape and dtype F32");
    write_raw("{\"a\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, &dir);
    expect_error(dir, SL_STATUS_E_FORMAT, "model.safetensors", "unknown dtype (\"F99\")");
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, &dir);
    expect_error(dir, SL_STATUS_E_FORMAT, "model.safetensors", "shape[0] is not a non-negative integer");
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, &dir);
    expect_error(dir, SL_STATUS_E_FORMAT, "model.safetensors", "does not match its shape");
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, &dir);
    expect_error(dir, SL_STATUS_E_FORMAT, "model.safetensors", "invalid data_offsets");
    write_raw("{\"a\": [1, 2", 0, &dir);
    expect_error(dir, SL_STATUS_E_FORMAT, "model.safetensors", "invalid JSON at byte");
    write_raw("[1, 2, 3]", 0, &dir);
    expect_error(dir, SL_STATUS_E_FORMAT, "model.safetensors", "header is not a JSON object");
}

static int shrink_q_proj(tu_tensor *t)
{
    if (!strcmp(t->name, "model.layers.3.self_attn.q_proj.weight")) {
        t->shape[0] = 32;
        t->nbytes /= 2;
    }
    return 1;
}

static int q_proj_as_i32(tu_tensor *t)
{
    if (!strcmp(t->name, "model.layers.0.self_attn.q_proj.weight"))
        t->dtype = "I32";
    return 1;
}

static int drop_final_norm(tu_tensor *t) { return strcmp(t->name, "model.norm.weight") != 0; }

Test(load_errors, wrong_shape_dtype_and_missing_tensor)
{
    expect_error(dir_with_edited(shrink_q_proj), SL_STATUS_E_FORMAT, "model.safetensors",
                 "tensor 'model.layers.3.self_attn.q_proj.weight' has shape [32, 64], expected [64, 64]");
    expect_error(dir_with_edited(q_proj_as_i32), SL_STATUS_E_FORMAT, "model.safetensors",
                 "'model.layers.0.self_attn.q_proj.weight' has unsupported dtype I32");
    expect_error(dir_with_edited(drop_final_norm), SL_STATUS_E_FORMAT, "model.safetensors",
                 "missing tensor 'model.norm.weight'");
}

/* The config.json of model directory `dir` with the line holding replace_key replaced. */
static const char *config_of_with(const char *dir, const char *replace_key, const char *replacement)
{
    size_t len;
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = tu_read_file(tu_src(path), &len);
    static char out[8192];
    char *at = strstr(text, replace_key);
    cr_assert_not_null(at, "fixture config lacks %s", replace_key);
    char *line_end = strchr(at, '\n');
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, replacement, line_end);
    free(text);
    return out;
}

static const char *config_with(const char *replace_key, const char *replacement)
{
    return config_of_with(TINY, replace_key, replacement);
}

Test(load_errors, malformed_and_incomplete_config)
{
    expect_error(dir_with_config("{\"architectures\": [\"LlamaForCausalLM\"], "), SL_STATUS_E_FORMAT, "config.json",
                 "invalid JSON at byte");
    expect_error(dir_with_config(config_with("\"hidden_size\"", "\"hidden_sizes\": 64,")), SL_STATUS_E_FORMAT,
                 "config.json", "missing key 'hidden_size'");
    expect_error(dir_with_config(config_with("\"num_hidden_layers\"", "\"num_hidden_layers\": \"eight\",")),
                 SL_STATUS_E_FORMAT, "config.json", "'num_hidden_layers' must be an integer in [1, 16777216] (got \"eight\")");
    expect_error(dir_with_config(config_with("\"num_key_value_heads\"", "\"num_key_value_heads\": 3,")),
                 SL_STATUS_E_FORMAT, "config.json", "'num_attention_heads' 4 is not a multiple of 'num_key_value_heads' 3");
    expect_error(dir_with_config(config_with("\"rope_scaling\"", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0},")),
                 SL_STATUS_E_FORMAT, "config.json", "unsupported 'rope_scaling.rope_type' (\"yarn\")");
    expect_error(dir_with_config(config_with("\"hidden_act\"", "\"hidden_act\": \"gelu\",")), SL_STATUS_E_FORMAT,
                 "config.json", "unsupported 'hidden_act' (\"gelu\"");
    expect_error(dir_with_config("[]"), SL_STATUS_E_FORMAT, "config.json", "not a JSON object");
}

/* Every family the loader knows, as the message lists them. */
#define SUPPORTED "supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Olmo2ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM, MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM)"

Test(load_errors, unsupported_architecture)
{
    expect_error(dir_with_config(config_with("\"LlamaForCausalLM\"", "\"GPT2LMHeadModel\"")), SL_STATUS_E_FORMAT,
                 "config.json", "unsupported architecture at 'architectures[0]' (\"GPT2LMHeadModel\"; " SUPPORTED);
    expect_error(dir_with_config(config_with("\"LlamaForCausalLM\"", "\"Llama4ForCausalLM\"")), SL_STATUS_E_FORMAT,
                 "config.json", "unsupported architecture at 'architectures[0]' (\"Llama4ForCausalLM\"; " SUPPORTED);
    expect_error(dir_with_config("{\"model_type\": \"deepseek_v3\"}"), SL_STATUS_E_FORMAT, "config.json",
                 "unsupported architecture at 'model_type' (\"deepseek_v3\"; " SUPPORTED);
}

/* The window a config gives, as transformers reads it: MistralConfig's 4096 when the key is
 * missing and none when it is null; Llama has none. */
static int32_t window_of(const char *architecture, const char *window_line)
{
    char arch[64];
    snprintf(arch, sizeof arch, "\"%s\"", architecture);
    const char *config = config_with("\"LlamaForCausalLM\"", arch);
    char edited[8192];
    const char *at = strstr(config, "\"vocab_size\"");
    cr_assert_not_null(at);
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - config), config, window_line, at);
    sl_error err;
    sl_model *m = sl_model_load(dir_with_config(edited), &err);
    cr_assert_not_null(m, "%s", err.msg);
    int32_t w = sl_model_get_config(m)->sliding_window;
    sl_model_free(m);
    return w;
}

Test(load_config, sliding_window_defaults)
{
    cr_expect_eq(window_of("MistralForCausalLM", ""), 4096);
    cr_expect_eq(window_of("MistralForCausalLM", "\"sliding_window\": null, "), 0);
    cr_expect_eq(window_of("MistralForCausalLM", "\"sliding_window\": 8, "), 8);
    cr_expect_eq(window_of("LlamaForCausalLM", "\"sliding_window\": 8, "), 0);
}

/* A supported family with a value outside what is implemented names the key and the value. */
Test(load_errors, unimplemented_config_value)
{
    expect_error(dir_with_config(config_with("\"hidden_act\"", "\"hidden_act\": \"relu\",")), SL_STATUS_E_FORMAT,
                 "config.json", "unsupported 'hidden_act' (\"relu\"; implemented: \"silu\")");
    expect_error(dir_with_config(config_with("\"hidden_act\"", "\"hidden_act\": 3,")), SL_STATUS_E_FORMAT,
                 "config.json", "'hidden_act' must be a string (got 3)");
    const char *gemma2 = "tests/data/arch/gemma2";
    expect_error(dir_with_config(config_of_with(gemma2, "\"hidden_activation\"", "\"hidden_activation\": \"gelu\",")),
                 SL_STATUS_E_FORMAT, "config.json",
                 "unsupported 'hidden_activation' (\"gelu\"; implemented: \"gelu_pytorch_tanh\")");
    expect_error(dir_with_config(config_of_with(gemma2, "\"final_logit_softcapping\"",
                                                "\"final_logit_softcapping\": -1,")),
                 SL_STATUS_E_FORMAT, "config.json", "'final_logit_softcapping' must be a number > 0");
    const char *phi3 = "tests/data/arch/phi3", *qwen2moe = "tests/data/arch/qwen2moe";
    expect_error(dir_with_config(config_of_with(phi3, "\"type\": \"longrope\"", "\"type\": \"dynamic\"")),
                 SL_STATUS_E_FORMAT, "config.json",
                 "unsupported 'rope_scaling.type' (\"dynamic\"; implemented for Phi-3: \"longrope\")");
    expect_error(dir_with_config(config_of_with(phi3, "\"embd_pdrop\"", "\"partial_rotary_factor\": 0.01,")),
                 SL_STATUS_E_FORMAT, "config.json", "unsupported 'partial_rotary_factor' (0.01");
    expect_error(dir_with_config(config_of_with(qwen2moe, "\"num_experts_per_tok\"", "\"num_experts_per_tok\": 5,")),
                 SL_STATUS_E_FORMAT, "config.json", "'num_experts_per_tok' 5 exceeds 'num_experts' 4");
    /* Gemma-3's per-layer list: its length and each entry */
    const char *gemma3 = "tests/data/arch/gemma3";
    expect_error(dir_with_config(config_of_with(gemma3, "\"sliding_window_pattern\"",
                                                "\"layer_types\": [\"sliding_attention\", \"full_attention\"],")),
                 SL_STATUS_E_FORMAT, "config.json", "'layer_types' has 2 entries but 'num_hidden_layers' is 8");
    expect_error(dir_with_config(config_of_with(gemma3, "\"sliding_window_pattern\"",
                                                "\"layer_types\": [\"sliding_attention\", \"sliding_attention\", "
                                                "\"full_attention\", \"sliding_attention\", \"sliding_attention\", "
                                                "\"global\", \"sliding_attention\", \"sliding_attention\"],")),
                 SL_STATUS_E_FORMAT, "config.json",
                 "'layer_types[5]' must be \"sliding_attention\" or \"full_attention\" (got \"global\")");
    expect_error(dir_with_config(config_of_with(gemma3, "\"sliding_window_pattern\"", "\"layer_types\": 6,")),
                 SL_STATUS_E_FORMAT, "config.json", "'layer_types' must be a list of");
}

/* A sharded checkpoint (index + two files) loads and computes what the single file does. */
Test(load_errors, sharded_checkpoint_matches_single_file)
{
    tu_st_copy w = tu_st_read(tu_src(TINY "/model.safetensors"));
    const char *dir = tu_tmpdir();
    tu_copy_config(tu_src(TINY), dir);
    int32_t half = w.n / 2;
    char path[4096], index[65536];
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
    tu_st_write(path, w.tensors, half);
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    tu_st_write(path, w.tensors + half, w.n - half);
    size_t len = (size_t)snprintf(index, sizeof index, "{\"metadata\": {}, \"weight_map\": {");
    for (int32_t i = 0; i < w.n; i++)
        len += (size_t)snprintf(index + len, sizeof index - len, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"",
                                i ? ", " : "", w.tensors[i].name, i < half ? 1 : 2);
    len += (size_t)snprintf(index + len, sizeof index - len, "}}");
    tu_write_file(dir, "model.safetensors.index.json", index, len);
    sl_model *sharded = tu_load_model(dir), *single = tu_load_model(tu_src(TINY));
    sl_error err;
    sl_session *a = sl_session_init(sharded, NULL, &err), *b = sl_session_init(single, NULL, &err);
    sl_token ids[] = {1, 5, 9, 200};
    cr_assert_eq(sl_session_eval(a, ids, 4, 0, &err), SL_STATUS_OK, "%s", err.msg);
    cr_assert_eq(sl_session_eval(b, ids, 4, 0, &err), SL_STATUS_OK, "%s", err.msg);
    cr_assert_eq(tu_max_abs_diff(sl_session_logits(a), sl_session_logits(b), 512), 0.0);
    sl_session_free(a);
    sl_session_free(b);
    sl_model_free(sharded);
    sl_model_free(single);

    /* An index naming a shard that does not exist. */
    snprintf(index, sizeof index, "{\"weight_map\": {\"model.norm.weight\": \"model-9.safetensors\"}}");
    tu_write_file(dir, "model.safetensors.index.json", index, strlen(index));
    expect_error(dir, SL_STATUS_E_IO, "model-9.safetensors", "cannot open");
    snprintf(index, sizeof index, "{\"weight_map\": {\"model.norm.weight\": \"../../etc/passwd\"}}");
    tu_write_file(dir, "model.safetensors.index.json", index, strlen(index));
    expect_error(dir, SL_STATUS_E_FORMAT, "model.safetensors.index.json", "weight_map.model.norm.weight is not a file name");
    tu_st_release(&w);
}
