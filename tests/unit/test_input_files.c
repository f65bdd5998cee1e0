/* Inputs that are valid but unusual, or not files at all: safetensors data at any alignment,
 * FIFOs and directories in place of config.json / model.safetensors / tokenizer.json, ids in a
 * config that the vocabulary does not have. None may crash, hang or read misaligned memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "model/internal.h"
#include "st_writer.h"
#include "test_util.h"

#define TINY "tests/data/hf-tiny/tiny-llama"
#define STORIES "models/stories260K"

static const sl_token prompt[] = {1, 40, 7, 300, 12, 99};
#define N_PROMPT ((int32_t)(sizeof prompt / sizeof prompt[0]))

/* The final logits of every prompt position, malloc'd. */
static float *all_logits(sl_model *m)
{
    sl_error err;
    sl_session *s = sl_session_init(m, NULL, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_eq(sl_session_eval(s, prompt, N_PROMPT, SL_EVAL_ALL_LOGITS, &err), SL_STATUS_OK, "%s", err.msg);
    int32_t rows;
    const float *l = sl_session_logits_all(s, &rows);
    cr_assert_eq(rows, N_PROMPT);
    size_t n = (size_t)rows * (size_t)sl_model_n_vocab(m);
    float *copy = malloc(n * sizeof *copy);
    memcpy(copy, l, n * sizeof *copy);
    sl_session_free(s);
    return copy;
}

/* tiny-llama's tensors (optionally as BF16) written with the data section at offset mod 8. */
static const char *dir_at_offset(int32_t offset_mod8, bool bf16)
{
    tu_st_copy w = tu_st_read(tu_src(TINY "/model.safetensors"));
    uint16_t **halves = calloc((size_t)w.n, sizeof *halves);
    if (bf16) {
        for (int32_t i = 0; i < w.n; i++) {
            size_t n = w.tensors[i].nbytes / 4;
            const float *src = w.tensors[i].data;
            halves[i] = malloc(n * sizeof **halves);
            for (size_t k = 0; k < n; k++) {
                uint32_t bits;
                memcpy(&bits, &src[k], 4);
                halves[i][k] = (uint16_t)(bits >> 16); /* truncation: any BF16 values will do */
            }
            w.tensors[i].dtype = "BF16";
            w.tensors[i].data = halves[i];
            w.tensors[i].nbytes = n * 2;
        }
    }
    static char dir[256];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    tu_copy_config(tu_src(TINY), dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tu_st_write_offset(path, w.tensors, w.n, offset_mod8);
    for (int32_t i = 0; i < w.n; i++)
        free(halves[i]);
    free(halves);
    tu_st_release(&w);
    return dir;
}

static void expect_same_logits_at_every_offset(bool bf16)
{
    sl_model *ref = tu_load_model(dir_at_offset(0, bf16));
    float *want = all_logits(ref);
    size_t n = (size_t)N_PROMPT * (size_t)sl_model_n_vocab(ref);
    uint32_t esize = bf16 ? 2 : 4;
    for (int32_t off = 1; off < 8; off++) {
        sl_model *m = tu_load_model(dir_at_offset(off, bf16));
        /* every weight the kernels read is aligned to its element size */
        cr_assert_eq((uintptr_t)m->embed.data % esize, 0, "offset %d: embedding left misaligned", off);
        cr_assert_eq((uintptr_t)m->blocks[0].wq.data % esize, 0, "offset %d: q_proj left misaligned", off);
        float *got = all_logits(m);
        cr_assert_eq(memcmp(got, want, n * sizeof *got), 0, "offset %d: logits differ (max |d| %g)", off,
                     tu_max_abs_diff(got, want, n));
        free(got);
        sl_model_free(m);
    }
    free(want);
    sl_model_free(ref);
}

Test(input_files, safetensors_data_at_any_offset_f32) { expect_same_logits_at_every_offset(false); }

Test(input_files, safetensors_data_at_any_offset_bf16) { expect_same_logits_at_every_offset(true); }

/* Weights read into memory (the default) and mapped (mmap) are the same bytes: logits are
 * bit-identical, misaligned data sections included. */
Test(input_files, read_and_mapped_checkpoints_give_identical_logits)
{
    for (int32_t off = 0; off < 8; off += 3) {
        const char *dir = dir_at_offset(off, true);
        sl_error err;
        sl_load_params mapped = {.mmap = true}, read = {.mmap = false};
        sl_model *a = sl_model_load_params(dir, &mapped, &err), *b = sl_model_load_params(dir, &read, &err);
        cr_assert(a && b, "%s", err.msg);
        float *x = all_logits(a), *y = all_logits(b);
        size_t n = (size_t)N_PROMPT * (size_t)sl_model_n_vocab(a);
        cr_assert_eq(memcmp(x, y, n * sizeof *x), 0, "offset %d: logits differ (max |d| %g)", off,
                     tu_max_abs_diff(x, y, n));
        free(x);
        free(y);
        sl_model_free(a);
        sl_model_free(b);
    }
}

/* A model directory whose file `name` is a FIFO (no writer ever opens it) and the rest copied from
 * stories260K. */
static const char *dir_with_fifo(const char *name)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    const char *files[] = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json"};
    char path[4096];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (strcmp(files[i], name) == 0) {
            cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo %s", path);
            continue;
        }
        char src[4096];
        snprintf(src, sizeof src, "%s/%s/%s", SL_SOURCE_DIR, STORIES, files[i]);
        cr_assert_eq(symlink(src, path), 0, "symlink %s", path);
    }
    return dir;
}

/* .timeout: before the check, opening a FIFO blocked forever. */
Test(input_files, fifos_are_refused_not_waited_on, .timeout = 20)
{
    const char *model_files[] = {"config.json", "generation_config.json", "model.safetensors"};
    for (size_t i = 0; i < sizeof model_files / sizeof model_files[0]; i++) {
        const char *dir = dir_with_fifo(model_files[i]);
        sl_error err;
        sl_model *m = sl_model_load(dir, &err);
        cr_assert_null(m, "loaded although %s is a FIFO", model_files[i]);
        cr_expect_eq(err.code, SL_STATUS_E_IO, "%s", err.msg);
        cr_expect(strstr(err.msg, model_files[i]) != NULL, "message names the file: %s", err.msg);
        cr_expect(strstr(err.msg, "not a regular file (a FIFO)") != NULL, "message: %s", err.msg);
    }
    const char *tok_files[] = {"tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < 2; i++) {
        const char *dir = dir_with_fifo(tok_files[i]);
        char path[4096];
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        sl_error err;
        sl_tokenizer *tok = sl_tokenizer_load(path, &err);
        cr_assert_null(tok, "loaded although %s is a FIFO", tok_files[i]);
        cr_expect(strstr(err.msg, tok_files[i]) != NULL, "message names the file: %s", err.msg);
        cr_expect(strstr(err.msg, "not a regular file (a FIFO)") != NULL, "message: %s", err.msg);
    }
}

Test(input_files, directories_are_refused_and_symlinks_followed)
{
    /* dir_with_fifo links every other file: a directory of symlinks loads like the original */
    const char *dir = dir_with_fifo("none");
    sl_model *m = tu_load_model(dir);
    sl_model_free(m);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkdir(path, 0700), 0);
    sl_error err;
    cr_assert_null(sl_model_load(dir, &err));
    cr_expect(strstr(err.msg, "config.json: not a regular file (a directory)") != NULL, "message: %s", err.msg);
    rmdir(path);
}

/* The stories260K config with one key's value replaced. */
static const char *stories_with(const char *key, const char *value)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s", dir_with_fifo("none"));
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    json_object *cfg = tu_load_json(tu_src(STORIES "/config.json"));
    json_object_object_add(cfg, key, json_tokener_parse(value));
    const char *text = json_object_to_json_string(cfg);
    tu_write_file(dir, "config.json", text, strlen(text));
    json_object_put(cfg);
    return dir;
}

Test(input_files, special_ids_beyond_the_vocabulary_are_refused)
{
    struct {
        const char *key, *value, *want;
    } cases[] = {
        {"eos_token_id", "512", "config.json: 'eos_token_id' 512 is out of range (vocab_size 512)"},
        {"eos_token_id", "[2, 100000]", "config.json: 'eos_token_id' 100000 is out of range (vocab_size 512)"},
        {"bos_token_id", "4096", "config.json: 'bos_token_id' 4096 is out of range (vocab_size 512)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_error err;
        sl_model *m = sl_model_load(stories_with(cases[i].key, cases[i].value), &err);
        cr_assert_null(m, "loaded with %s = %s", cases[i].key, cases[i].value);
        cr_expect_eq(err.code, SL_STATUS_E_FORMAT);
        cr_expect(strstr(err.msg, cases[i].want) != NULL, "message: %s", err.msg);
    }
    sl_model *ok = tu_load_model(stories_with("eos_token_id", "511"));
    cr_expect(sl_model_is_eos(ok, 511));
    sl_model_free(ok);
}

Test(input_files, tokenizer_ids_must_fit_the_model)
{
    sl_error err;
    char path[4096];
    snprintf(path, sizeof path, "%s/" STORIES "/tokenizer.json", SL_SOURCE_DIR);
    sl_tokenizer *tok = sl_tokenizer_load(path, &err);
    cr_assert_not_null(tok, "%s", err.msg);
    cr_expect_eq(sl_tokenizer_check_vocab(tok, 512, "config.json", &err), SL_STATUS_OK, "%s", err.msg);
    cr_expect_eq(sl_tokenizer_check_vocab(tok, 600, "config.json", &err), SL_STATUS_OK, "%s", err.msg);
    cr_assert_eq(sl_tokenizer_check_vocab(tok, 500, "m/config.json", &err), SL_STATUS_E_FORMAT);
    cr_expect(strstr(err.msg, "tokenizer.json: token id out of range for the model (ids up to 511; "
                              "m/config.json has vocab_size 500)") != NULL,
              "message: %s", err.msg);
    sl_tokenizer_free(tok);
}

Test(input_files, float_keys_must_fit_float32)
{
    const char *cases[][2] = {{"rms_norm_eps", "1e-50"}, {"rope_theta", "1e300"}};
    for (size_t i = 0; i < 2; i++) {
        sl_error err;
        sl_model *m = sl_model_load(stories_with(cases[i][0], cases[i][1]), &err);
        cr_assert_null(m, "loaded with %s = %s", cases[i][0], cases[i][1]);
        cr_expect(strstr(err.msg, "within float32 range") != NULL, "message: %s", err.msg);
    }
}

/* A skipped special token between byte-fallback tokens: the decode sees one run of bytes, so the
 * stream must not emit the first byte alone (found by fuzz_stream). */
Test(input_files, stream_byte_run_across_a_skipped_special)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" STORIES "/tokenizer.json", SL_SOURCE_DIR);
    sl_error err;
    sl_tokenizer *tok = sl_tokenizer_load(path, &err);
    cr_assert_not_null(tok, "%s", err.msg);
    const sl_token ids[] = {508, 21, 0, 252, 257, 427, 409}; /* "[", <0x12>, <unk>, <0xF9>, <0xFE>, "p", "▁k" */
    size_t n = sizeof ids / sizeof ids[0];
    sl_tokenizer_stream *s = sl_tokenizer_stream_new(tok, SL_DECODE_SKIP_SPECIAL, &err);
    char streamed[256] = "";
    size_t total = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *text;
        size_t len;
        sl_status st = i < n ? sl_tokenizer_stream_put(s, ids[i], &text, &len, &err)
                             : sl_tokenizer_stream_finish(s, &text, &len, &err);
        cr_assert_eq(st, SL_STATUS_OK, "%s", err.msg);
        memcpy(streamed + total, text, len);
        total += len;
    }
    char *whole;
    size_t whole_len;
    cr_assert_eq(sl_tokenizer_decode(tok, ids, n, SL_DECODE_SKIP_SPECIAL, &whole, &whole_len, &err), SL_STATUS_OK);
    cr_expect_eq(total, whole_len);
    cr_expect(memcmp(streamed, whole, whole_len) == 0, "streamed '%.*s', decoded '%s'", (int)total, streamed, whole);
    free(whole);
    sl_tokenizer_stream_free(s);
    sl_tokenizer_free(tok);
}
