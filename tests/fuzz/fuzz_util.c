#include "fuzz_util.h"

#include <string.h>

const char *const fuzz_vocab_names[FUZZ_N_VOCABS] = {"llama2", "llama3", "qwen3", "smollm2", "stories260K"};

void fuzz_load_vocabs(sl_tokenizer **out)
{
    for (int i = 0; i < FUZZ_N_VOCABS; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer.json", SL_DATA_DIR, fuzz_vocab_names[i]);
        sl_error err;
        out[i] = sl_tokenizer_load(path, &err);
        FUZZ_CHECK(out[i] != NULL, "%s", err.msg);
    }
}

void fuzz_check_message(const sl_error *err, const char *label)
{
    FUZZ_CHECK(err->code != SL_STATUS_OK, "failure without a status (%s)", err->msg);
    FUZZ_CHECK(strncmp(err->msg, label, strlen(label)) == 0, "message does not name %s: %s", label, err->msg);
}
