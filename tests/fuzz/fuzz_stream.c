/* The streaming decoder on arbitrary id sequences with each bundled vocabulary. Input: byte 0
 * picks the vocabulary, byte 1 the flags, then 3 bytes per id (some outside the vocabulary, which
 * must be refused without disturbing the stream). The streamed text must equal the one-shot decode
 * of the accepted ids, as the API promises. */
#include <string.h>

#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sl_tokenizer *vocabs[FUZZ_N_VOCABS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_load_vocabs(vocabs);
    return 0;
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void append(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        FUZZ_CHECK(b->p != NULL, "out of memory");
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const sl_tokenizer *tok = vocabs[data[0] % FUZZ_N_VOCABS];
    unsigned flags = data[1] & SL_DECODE_SKIP_SPECIAL;
    int64_t n_vocab = (int64_t)sl_tokenizer_vocab_size(tok);
    size_t n_in = (size - 2) / 3;
    sl_token *ids = malloc((n_in ? n_in : 1) * sizeof *ids);
    size_t n = 0;
    sl_error err;
    sl_tokenizer_stream *s = sl_tokenizer_stream_new(tok, flags, &err);
    FUZZ_CHECK(s != NULL, "%s", err.msg);
    buf streamed = {0};
    for (size_t i = 0; i < n_in; i++) {
        const uint8_t *p = data + 2 + 3 * i;
        uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
        /* small values dominate (frequent ids), and a few land just outside the vocabulary */
        sl_token id = (sl_token)((int64_t)(v % (uint32_t)(n_vocab + 8)) - 4);
        const char *text;
        size_t len;
        sl_status st = sl_tokenizer_stream_put(s, id, &text, &len, &err);
        if (id < 0 || id >= n_vocab) {
            FUZZ_CHECK(st == SL_STATUS_E_RANGE, "id %d accepted (vocabulary %lld)", id, (long long)n_vocab);
            continue;
        }
        FUZZ_CHECK(st == SL_STATUS_OK, "%s", err.msg);
        append(&streamed, text, len);
        ids[n++] = id;
    }
    const char *tail;
    size_t tail_len;
    FUZZ_CHECK(sl_tokenizer_stream_finish(s, &tail, &tail_len, &err) == SL_STATUS_OK, "%s", err.msg);
    append(&streamed, tail, tail_len);
    char *whole = NULL;
    size_t whole_len;
    FUZZ_CHECK(sl_tokenizer_decode(tok, ids, n, flags, &whole, &whole_len, &err) == SL_STATUS_OK, "%s", err.msg);
    FUZZ_CHECK(whole_len == streamed.len && memcmp(whole, streamed.p, whole_len) == 0,
               "%s: streamed %zu bytes differ from the decode's %zu (%zu ids)",
               fuzz_vocab_names[data[0] % FUZZ_N_VOCABS], streamed.len, whole_len, n);
    free(whole);
    free(streamed.p);
    sl_tokenizer_stream_free(s);
    free(ids);
    return 0;
}
