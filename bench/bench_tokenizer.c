/* bench_tokenizer [DATA_DIR]: load time of each test vocabulary and encode throughput (MB/s,
 * median of 7 runs) on ~1 MB of English and of Chinese text built deterministically from a fixed
 * paragraph. DATA_DIR defaults to build/data (the unpacked tests/data/tokenizers*.tar.xz). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cli.h"
#include "slua/sl.h"

#define RUNS 7
#define TARGET_BYTES (1u << 20)

static const char ENGLISH[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine "
    "with her dog Max. One day, in 2024, they found 3 shiny stones near the river; Lily said: \"Let's "
    "keep them!\" The capital of France is Paris, and it's 1,000 km away. What does Darth Vader say "
    "to Luke in \"The Empire Strikes Back\"?\n";

static const char CHINESE[] =
    "珍妮的鸭子每天下16个蛋。她每天早上吃三个当早餐，每天用四个给朋友烤松饼。中国的首都是哪里？"
    "从前有一个小女孩名叫莉莉，她喜欢在阳光下和她的狗一起玩耍。有一天，他们在河边发现了三块闪亮的石头。\n";

/* Repeats a paragraph (with a counter so words vary a little) up to ~TARGET_BYTES. */
static char *make_text(const char *para, size_t *len)
{
    size_t pl = strlen(para), cap = TARGET_BYTES + pl + 64, n = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    for (unsigned i = 0; n + pl + 32 < cap && n < TARGET_BYTES; i++) {
        n += (size_t)snprintf(s + n, cap - n, "%u. ", i);
        memcpy(s + n, para, pl);
        n += pl;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* The first run starts with an empty word cache (cold); later runs reuse it. */
static double median_mbps(sl_tokenizer *tok, const char *text, size_t len, size_t *n_tokens, double *cold)
{
    double mbps[RUNS];
    for (int r = 0; r < RUNS; r++) {
        sl_token *ids;
        sl_error err;
        double t0 = bench_now_s();
        if (sl_tokenizer_encode(tok, text, len, 0, &ids, n_tokens, &err)) {
            fprintf(stderr, "slua: %s\n", err.msg);
            return -1.0;
        }
        mbps[r] = (double)len / 1e6 / (bench_now_s() - t0);
        free(ids);
    }
    *cold = mbps[0];
    return bench_median(mbps, RUNS);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "build/data";
    const char *names[] = {"llama2", "llama3", "qwen3", "smollm2", "stories260K", "gemma3", "deepseek_v3"};
    size_t el, cl;
    char *en = make_text(ENGLISH, &el), *zh = make_text(CHINESE, &cl);
    if (!en || !zh) {
        fprintf(stderr, "slua: out of memory\n");
        return 1;
    }
    printf("%-12s %7s %8s %9s %9s %9s %9s %9s %9s\n", "vocabulary", "vocab", "load_ms", "en_MB/s",
           "en_cold", "en_toks", "zh_MB/s", "zh_cold", "zh_toks");
    int rc = 0;
    for (size_t v = 0; v < sizeof names / sizeof *names; v++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer.json", dir, names[v]);
        double loads[RUNS];
        sl_tokenizer *tok = NULL;
        for (int r = 0; r < RUNS; r++) {
            sl_error err;
            sl_tokenizer_free(tok);
            double t0 = bench_now_s();
            tok = sl_tokenizer_load(path, &err);
            loads[r] = (bench_now_s() - t0) * 1e3;
            if (!tok) {
                fprintf(stderr, "slua: %s\n", err.msg);
                rc = 1;
                break;
            }
        }
        if (!tok)
            continue;
        double load_ms = bench_median(loads, RUNS);
        size_t ne = 0, nz = 0;
        double ce, cz;
        double me = median_mbps(tok, en, el, &ne, &ce), mz = median_mbps(tok, zh, cl, &nz, &cz);
        printf("%-12s %7zu %8.1f %9.2f %9.2f %9zu %9.2f %9.2f %9zu\n", names[v],
               sl_tokenizer_vocab_size(tok), load_ms, me, ce, ne, mz, cz, nz);
        sl_tokenizer_free(tok);
    }
    printf("(text: %.2f MB English, %.2f MB Chinese; medians of %d runs)\n", (double)el / 1e6,
           (double)cl / 1e6, RUNS);
    free(en);
    free(zh);
    return rc;
}
