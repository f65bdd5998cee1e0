/* config.json (and generation_config.json's eos ids) parsing on arbitrary bytes. An accepted
 * config must satisfy what the loader sizes its buffers by. */
#include <json-c/json.h>

#include "model/config.h"
#include "fuzz_util.h"
#include "util/json_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_error err;
    json_object *root = NULL;
    if (sl_json_parse("config.json", (const char *)data, size, &root, &err) != SL_STATUS_OK) {
        fuzz_check_message(&err, "config.json");
        return 0;
    }
    sl_model_config c;
    sl_arch arch;
    if (sl_config_parse("config.json", root, &c, &arch, &err) != SL_STATUS_OK) {
        fuzz_check_message(&err, "config.json");
    } else {
        FUZZ_CHECK(c.n_embd > 0 && c.n_ff > 0 && c.n_layer > 0 && c.n_vocab > 0 && c.max_position > 0, "sizes");
        FUZZ_CHECK(c.n_head > 0 && c.n_head_kv > 0 && c.n_head % c.n_head_kv == 0, "heads %d/%d", c.n_head,
                   c.n_head_kv);
        FUZZ_CHECK(c.head_dim >= 2 && c.head_dim % 2 == 0, "head_dim %d", c.head_dim);
        FUZZ_CHECK(c.n_eos >= 0 && c.n_eos <= SL_MAX_EOS, "n_eos %d", c.n_eos);
        for (int32_t i = 0; i < c.n_eos; i++)
            FUZZ_CHECK(c.eos[i] >= 0 && c.eos[i] < c.n_vocab, "eos %d of vocab %d", c.eos[i], c.n_vocab);
        FUZZ_CHECK(c.bos < c.n_vocab, "bos %d of vocab %d", c.bos, c.n_vocab);
        FUZZ_CHECK(c.rms_eps > 0 && c.rope_theta > 0 && arch.rope_scaling.factor > 0, "positive floats");
        /* the same document as generation_config.json adds its eos ids under the same rules */
        if (sl_config_add_generation_eos("generation_config.json", root, &c, &err) != SL_STATUS_OK)
            fuzz_check_message(&err, "generation_config.json");
        for (int32_t i = 0; i < c.n_eos; i++)
            FUZZ_CHECK(c.eos[i] >= 0 && c.eos[i] < c.n_vocab, "eos %d of vocab %d", c.eos[i], c.n_vocab);
    }
    json_object_put(root);
    return 0;
}
