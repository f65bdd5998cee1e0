/* Encoding arbitrary bytes with each bundled vocabulary. Input: byte 0 picks the vocabulary, byte 1
 * the flags, the rest is the text. Every id must be in the vocabulary and decode again. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    sl_tokenizer *tok = vocabs[data[0] % FUZZ_N_VOCABS];
    unsigned flags = data[1] & (SL_ENCODE_ADD_SPECIAL | SL_ENCODE_SPLIT_SPECIAL);
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    sl_token *ids = NULL;
    size_t n = 0;
    sl_error err;
    sl_status st = sl_tokenizer_encode(tok, text, len, flags, &ids, &n, &err);
    FUZZ_CHECK(st == SL_STATUS_OK, "%s", err.msg);
    size_t n_vocab = sl_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && (size_t)ids[i] < n_vocab, "id %d of %zu", ids[i], n_vocab);
    char *out = NULL;
    size_t out_len;
    st = sl_tokenizer_decode(tok, ids, n, 0, &out, &out_len, &err);
    FUZZ_CHECK(st == SL_STATUS_OK, "%s", err.msg);
    FUZZ_CHECK(strlen(out) <= out_len, "decoded length");
    free(out);
    free(ids);
    return 0;
}
