/* sl_tokenize TOKENIZER_JSON INPUT.json [--add-special-tokens] [--split-special]
 * Reads a JSON array of strings and prints a JSON array of id arrays, one per string, as the
 * tokenizer encodes them (conformance checks against HF `tokenizers`). */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slua/sl.h"

static int fail(const char *msg)
{
    fprintf(stderr, "slua: %s\n", msg);
    return 1;
}

int main(int argc, char **argv)
{
    const char *tok_path = NULL, *in_path = NULL;
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--add-special-tokens"))
            flags |= SL_ENCODE_ADD_SPECIAL;
        else if (!strcmp(argv[i], "--split-special"))
            flags |= SL_ENCODE_SPLIT_SPECIAL;
        else if (argv[i][0] == '-' && argv[i][1])
            return fail("unknown option (usage: sl_tokenize TOKENIZER_JSON INPUT.json "
                        "[--add-special-tokens] [--split-special])");
        else if (!tok_path)
            tok_path = argv[i];
        else if (!in_path)
            in_path = argv[i];
        else
            return fail("too many arguments");
    }
    if (!tok_path || !in_path)
        return fail("usage: sl_tokenize TOKENIZER_JSON INPUT.json [--add-special-tokens] [--split-special]");
    sl_error err;
    sl_tokenizer *tok = sl_tokenizer_load(tok_path, &err);
    if (!tok)
        return fail(err.msg);
    json_object *in = json_object_from_file(in_path);
    if (!in || !json_object_is_type(in, json_type_array)) {
        char msg[1100];
        snprintf(msg, sizeof msg, "%s: expected a JSON array of strings", in_path);
        json_object_put(in);
        sl_tokenizer_free(tok);
        return fail(msg);
    }
    int rc = 0;
    fputc('[', stdout);
    for (size_t i = 0; i < json_object_array_length(in); i++) {
        json_object *s = json_object_array_get_idx(in, i);
        if (!json_object_is_type(s, json_type_string)) {
            char msg[1100];
            snprintf(msg, sizeof msg, "%s: expected a string at [%zu]", in_path, i);
            rc = fail(msg);
            break;
        }
        sl_token *ids;
        size_t n;
        if (sl_tokenizer_encode(tok, json_object_get_string(s), (size_t)json_object_get_string_len(s), flags,
                                &ids, &n, &err)) {
            rc = fail(err.msg);
            break;
        }
        printf("%s[", i ? "," : "");
        for (size_t k = 0; k < n; k++)
            printf("%s%d", k ? "," : "", (int)ids[k]);
        fputc(']', stdout);
        free(ids);
    }
    if (!rc)
        fputs("]\n", stdout);
    json_object_put(in);
    sl_tokenizer_free(tok);
    return rc;
}
