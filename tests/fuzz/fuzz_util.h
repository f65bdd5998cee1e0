/* Shared by the libFuzzer targets: a failed invariant aborts with a message, which libFuzzer
 * reports as a crash and saves the input that caused it. */
#ifndef SLUA_FUZZ_UTIL_H
#define SLUA_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "slua/sl.h"

#define FUZZ_CHECK(cond, ...)                                                                                 \
    do {                                                                                                      \
        if (!(cond)) {                                                                                        \
            fprintf(stderr, "fuzz invariant failed: %s: ", #cond);                                            \
            fprintf(stderr, __VA_ARGS__);                                                                     \
            fputc('\n', stderr);                                                                              \
            abort();                                                                                          \
        }                                                                                                     \
    } while (0)

/* The vocabularies the project bundles: the reference tokenizers the tests use and the model's. */
#define FUZZ_N_VOCABS 5
extern const char *const fuzz_vocab_names[FUZZ_N_VOCABS];

/* Loads every bundled tokenizer once (aborts if one is missing). */
void fuzz_load_vocabs(sl_tokenizer **out);

/* Every failure message starts with the file it is about. */
void fuzz_check_message(const sl_error *err, const char *label);

#endif
