/* tokenizer.json loading on arbitrary bytes. A tokenizer that loads must encode and decode a few
 * texts with ids inside its vocabulary. */
#include <string.h>

#include "fuzz_util.h"
#include "tokenizer/tokenizer_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const texts[] = {"Hello world", " the  final--countdown\n", "abc", "\xe2\x96\x81x <s>\xff",
                                    ""};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_error err;
    sl_tokenizer *tok = sl_tok_load_text("tokenizer.json", (const char *)data, size, &err);
    if (!tok) {
        fuzz_check_message(&err, "tokenizer.json");
        return 0;
    }
    size_t n_vocab = sl_tokenizer_vocab_size(tok);
    FUZZ_CHECK(n_vocab > 0 && n_vocab <= 2 * size + SL_TOK_ID_SLACK, "vocabulary of %zu ids from %zu bytes",
               n_vocab, size);
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        for (unsigned flags = 0; flags < 4; flags++) {
            sl_token *ids = NULL;
            size_t n = 0;
            if (sl_tokenizer_encode(tok, texts[t], strlen(texts[t]), flags, &ids, &n, &err) != SL_STATUS_OK) {
                fuzz_check_message(&err, "tokenizer.json");
                continue;
            }
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(ids[i] >= 0 && (size_t)ids[i] < n_vocab, "id %d of %zu", ids[i], n_vocab);
            char *text = NULL;
            size_t len;
            if (sl_tokenizer_decode(tok, ids, n, flags & 1, &text, &len, &err) != SL_STATUS_OK)
                fuzz_check_message(&err, "tokenizer.json");
            free(text);
            free(ids);
        }
    }
    sl_tokenizer_free(tok);
    return 0;
}
