/* Greedy continuation with the core C API only (no Lua): the smallest complete use of slua.
 *   example_greedy MODEL_DIR [N_NEW] [ID,ID,...]
 * Prints the generated token ids. Without ids the prompt is the model's BOS token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slua/sl.h"

static sl_token argmax(const float *x, int32_t n)
{
    sl_token best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [N_NEW] [ID,ID,...]\n", argv[0]);
        return 2;
    }
    int n_new = argc > 2 ? atoi(argv[2]) : 32;
    sl_error err;
    sl_model *model = sl_model_load(argv[1], &err);
    if (!model) {
        fprintf(stderr, "slua: %s\n", err.msg);
        return 1;
    }
    sl_token prompt[512];
    int32_t n_prompt = 0;
    if (argc > 3) {
        for (char *tok = strtok(argv[3], ","); tok && n_prompt < 512; tok = strtok(NULL, ","))
            prompt[n_prompt++] = (sl_token)atoi(tok);
    } else {
        prompt[n_prompt++] = sl_model_get_config(model)->bos;
    }
    sl_session *s = sl_session_init(model, NULL, &err);
    int rc = 0;
    if (!s || sl_session_eval(s, prompt, n_prompt, 0, &err) != SL_STATUS_OK) {
        fprintf(stderr, "slua: %s\n", err.msg);
        rc = 1;
    }
    for (int i = 0; rc == 0 && i < n_new; i++) {
        sl_token next = argmax(sl_session_logits(s), sl_model_n_vocab(model));
        printf("%s%d", i ? "," : "", next);
        if (sl_model_is_eos(model, next))
            break;
        if (sl_session_eval(s, &next, 1, 0, &err) != SL_STATUS_OK) {
            fprintf(stderr, "\nslua: %s\n", err.msg);
            rc = 1;
        }
    }
    printf("\n");
    sl_session_free(s);
    sl_model_free(model);
    return rc;
}
