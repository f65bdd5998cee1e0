/* HF transformers' LogitsProcessor / LogitsWarper classes on one row of scores, with the exact
 * HF semantics (generation/logits_process.py). The selections are radix selections over order
 * keys (O(n), no allocation) in place of HF's full sorts; they pick the same entries. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "ops_internal.h"
#include "slua/sl_ops.h"

/* ------------------------------------------------------------------ repetition penalty */

static bool id_listed(sl_token id, const sl_token *list, int32_t n_list)
{
    for (int32_t i = 0; i < n_list; i++)
        if (list[i] == id)
            return true;
    return false;
}

static inline float penalized(float x, float penalty) { return x < 0 ? x * penalty : x / penalty; }

void sl_proc_repetition_penalty(float *scores, int32_t n, const sl_token *ids, int32_t n_ids, float penalty,
                                const sl_token *exempt, int32_t n_exempt)
{
    if (n <= 0 || n_ids <= 0)
        return;
    if (!exempt)
        n_exempt = 0;
    /* HF gathers every id's original score, penalizes, and scatters back, so an id that occurs
     * many times is penalized once. A bitmap of handled ids gives the same in O(n_ids). */
    uint8_t *done = calloc((size_t)n / 8 + 1, 1);
    if (done) {
        for (int32_t i = 0; i < n_exempt; i++)
            if (exempt[i] >= 0 && exempt[i] < n)
                done[exempt[i] >> 3] |= (uint8_t)(1u << (exempt[i] & 7));
        for (int32_t i = 0; i < n_ids; i++) {
            sl_token id = ids[i];
            if (id < 0 || id >= n || (done[id >> 3] >> (id & 7)) & 1u)
                continue;
            done[id >> 3] |= (uint8_t)(1u << (id & 7));
            scores[id] = penalized(scores[id], penalty);
        }
        free(done);
        return;
    }
    /* Without memory for the bitmap: the same rule by scanning the ids seen before. */
    for (int32_t i = 0; i < n_ids; i++) {
        sl_token id = ids[i];
        if (id < 0 || id >= n || id_listed(id, ids, i) || id_listed(id, exempt, n_exempt))
            continue;
        scores[id] = penalized(scores[id], penalty);
    }
}

/* ------------------------------------------------------------------ no-repeat n-gram */

void sl_proc_no_repeat_ngram(float *scores, int32_t n, const sl_token *ids, int32_t n_ids, int32_t ngram)
{
    /* HF _calc_banned_ngram_tokens: nothing before n_ids + 1 >= ngram. The prefix is the last
     * ngram - 1 ids; every n-gram of ids (start 0 .. n_ids - ngram, the last one included) whose
     * first ngram - 1 ids equal it bans its last id. With ngram == n_ids + 1 there is no n-gram. */
    if (n <= 0 || ngram <= 0 || n_ids + 1 < ngram)
        return;
    const sl_token *prefix = ids + (n_ids - (ngram - 1));
    for (int32_t start = 0; start + ngram <= n_ids; start++) {
        bool match = true;
        for (int32_t j = 0; j < ngram - 1 && match; j++)
            match = ids[start + j] == prefix[j];
        sl_token banned = ids[start + ngram - 1];
        if (match && banned >= 0 && banned < n)
            scores[banned] = -INFINITY;
    }
}

/* ------------------------------------------------------------------ EOS length reward */

void sl_proc_exp_decay_length(float *scores, int32_t n, const sl_token *eos, int32_t n_eos, int32_t cur_len,
                              int32_t regulation_start, float factor)
{
    if (cur_len <= regulation_start)
        return;
    /* HF computes pow(factor, idx) - 1 on Python floats and multiplies the float32 |scores| by
     * it, so the factor is formed in double and rounded once. */
    float growth = (float)(pow((double)factor, (double)(cur_len - regulation_start)) - 1.0);
    for (int32_t i = 0; i < n_eos; i++) {
        sl_token id = eos[i];
        /* HF assigns the penalty per id from the original scores: a repeated EOS id counts once. */
        if (id < 0 || id >= n || id_listed(id, eos, i))
            continue;
        scores[id] += fabsf(scores[id]) * growth;
    }
}

/* ------------------------------------------------------------------ warpers */

void sl_proc_temperature(float *scores, int32_t n, float t)
{
    for (int32_t i = 0; i < n; i++)
        scores[i] /= t;
}

void sl_proc_top_k(float *scores, int32_t n, int32_t k, int32_t min_keep)
{
    int32_t keep = k > min_keep ? k : min_keep;
    if (keep > n)
        keep = n;
    if (keep <= 0 || keep == n)
        return;
    float threshold = sl_kth_largest(scores, n, keep);
    for (int32_t i = 0; i < n; i++)
        if (scores[i] < threshold)
            scores[i] = -INFINITY;
}

/* Mask the first `count` entries of the stable ascending order (by value, ties by id). */
static void mask_ascending_prefix(float *scores, int32_t n, int32_t count)
{
    if (count <= 0)
        return;
    int32_t n_below;
    uint32_t last_key = sl_select_ascending(scores, n, count - 1, &n_below);
    int32_t ties_left = count - n_below; /* entries of the last key's group to mask, lowest ids first */
    for (int32_t i = 0; i < n; i++) {
        uint32_t key = sl_order_key(scores[i]);
        if (key < last_key) {
            scores[i] = -INFINITY;
        } else if (key == last_key && ties_left > 0) {
            scores[i] = -INFINITY;
            ties_left--;
        }
    }
}

/* Number of leading positions of the stable ascending order whose cumulative probability is
 * <= limit (HF's `cumsum <= 1 - top_p`). Radix passes accumulate each bucket's mass; inside the
 * final group of equal values the running sum goes entry by entry, as the sorted cumsum does. */
static int32_t top_p_removable(const float *scores, int32_t n, double max, double total, double limit)
{
    uint32_t prefix = 0, fixed_mask = 0;
    double mass_below = 0.0;
    int32_t count_below = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        double mass[256] = {0};
        int32_t counts[256] = {0};
        for (int32_t i = 0; i < n; i++) {
            uint32_t key = sl_order_key(scores[i]);
            if ((key & fixed_mask) != prefix)
                continue;
            uint32_t b = (key >> shift) & 0xffu;
            counts[b]++;
            mass[b] += sl_softmax_weight(scores[i], max) / total;
        }
        uint32_t bucket = 0;
        for (; bucket < 256; bucket++) {
            if (counts[bucket] == 0)
                continue;
            if (mass_below + mass[bucket] > limit)
                break; /* the crossing lies in this bucket */
            mass_below += mass[bucket];
            count_below += counts[bucket];
        }
        if (bucket == 256)
            return count_below; /* the whole region is removable */
        prefix |= bucket << shift;
        fixed_mask |= 0xffu << shift;
    }
    /* All entries with key `prefix` share one value and one probability. */
    double p = sl_softmax_weight(sl_order_key_value(prefix), max) / total, cumulative = mass_below;
    int32_t removable = count_below;
    for (int32_t i = 0; i < n; i++) {
        if (sl_order_key(scores[i]) != prefix)
            continue;
        cumulative += p;
        if (cumulative > limit)
            break;
        removable++;
    }
    return removable;
}

void sl_proc_top_p(float *scores, int32_t n, float p, int32_t min_keep)
{
    /* HF builds no TopPLogitsWarper for top_p >= 1.0, so nothing is masked. */
    if (n <= 0 || p >= 1.0f)
        return;
    double max = sl_ops_max(scores, n);
    if (max == -INFINITY)
        return;
    double total = 0.0;
    for (int32_t i = 0; i < n; i++)
        total += sl_softmax_weight(scores[i], max);
    if (min_keep < 1)
        min_keep = 1;
    int32_t removed = top_p_removable(scores, n, max, total, 1.0 - (double)p);
    if (removed > n - min_keep)
        removed = n - min_keep; /* HF: sorted_indices_to_remove[..., -min_tokens_to_keep:] = 0 */
    mask_ascending_prefix(scores, n, removed);
}

void sl_proc_min_p(float *scores, int32_t n, float min_p, int32_t min_keep)
{
    double max = sl_ops_max(scores, n);
    if (n <= 0 || max == -INFINITY)
        return;
    if (min_keep < 1)
        min_keep = 1;
    if (min_keep > n)
        min_keep = n;
    /* P < min_p * max P  <=>  exp(x - max) < min_p, the softmax normaliser cancelling. */
    float guaranteed = sl_kth_largest(scores, n, min_keep);
    int32_t above = 0;
    for (int32_t i = 0; i < n; i++)
        above += scores[i] > guaranteed;
    int32_t ties_left = min_keep - above; /* the top min_keep by score, equal scores by lowest id */
    for (int32_t i = 0; i < n; i++) {
        float x = scores[i];
        bool kept_by_rank = x > guaranteed || (x == guaranteed && ties_left > 0);
        if (x == guaranteed && ties_left > 0)
            ties_left--;
        if (!kept_by_rank && sl_softmax_weight(x, max) < (double)min_p)
            scores[i] = -INFINITY;
    }
}
