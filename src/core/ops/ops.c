/* Vector primitives over logits, DoLa's divergence and relative-top filter, the seeded RNG and
 * sampling. Everything here is O(n) (top-k: O(n log k)), since it runs once per decoding step
 * over vocabularies of up to ~152k entries, and single-threaded and allocation-free except the
 * DoLa divergences (one scratch buffer, candidates spread over the threads). AVX2 versions of
 * the hottest loops are in ops_x86.c. */
#include <math.h>
#include <stdlib.h>
#include <stdbool.h>

#include "kernels/kernels.h"
#include "kernels/kernels_simd.h"
#include "ops_simd.h"
#include "ops_internal.h"
#include "slua/sl_ops.h"

/* ------------------------------------------------------------------ shared helpers */

double sl_ops_max(const float *x, int32_t n)
{
#ifdef SL_X86
    if (sl_kernel_isa() >= SL_ISA_AVX2)
        return sl_max_avx2(x, n);
#endif
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        max = x[i] > max ? x[i] : max; /* NaN loses */
    return max;
}

/* Whether the AVX2 paths of ops_x86.c apply: the CPU has AVX2 and the maximum is finite. */
static bool simd_softmax(float max)
{
#ifdef SL_X86
    return isfinite(max) && sl_kernel_isa() >= SL_ISA_AVX2;
#else
    (void)max;
    return false;
#endif
}

uint32_t sl_select_ascending(const float *x, int32_t n, int32_t rank, int32_t *n_below)
{
    uint32_t prefix = 0, fixed_mask = 0;
    int32_t below = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        int32_t counts[256] = {0};
        for (int32_t i = 0; i < n; i++) {
            uint32_t key = sl_order_key(x[i]);
            if ((key & fixed_mask) == prefix)
                counts[(key >> shift) & 0xffu]++;
        }
        uint32_t bucket = 0;
        while (rank >= counts[bucket]) {
            rank -= counts[bucket];
            below += counts[bucket];
            bucket++;
        }
        prefix |= bucket << shift;
        fixed_mask |= 0xffu << shift;
    }
    if (n_below)
        *n_below = below;
    return prefix;
}

float sl_kth_largest(const float *x, int32_t n, int32_t k)
{
    if (k == 1) /* the common min_keep = 1: one pass instead of four */
        return (float)sl_ops_max(x, n);
    return sl_order_key_value(sl_select_ascending(x, n, n - k, NULL));
}

/* Softmax normaliser of x: the largest entry and sum(exp(x - max)) in double. */
typedef struct softmax_stats {
    float max;
    double sum;
    float log_sum; /* (float)log(sum), as PyTorch's float32 log_softmax subtracts it */
} softmax_stats;

static softmax_stats softmax_stats_of(const float *x, int32_t n)
{
    softmax_stats st = {(float)sl_ops_max(x, n), 0.0, 0.0f};
    if (st.max == -INFINITY)
        return st;
#ifdef SL_X86
    if (simd_softmax(st.max)) {
        st.sum = sl_exp_sum_avx2(x, n, st.max, NULL);
        st.log_sum = (float)log(st.sum);
        return st;
    }
#endif
    for (int32_t i = 0; i < n; i++)
        st.sum += sl_softmax_weight(x[i], st.max);
    st.log_sum = (float)log(st.sum);
    return st;
}

/* Callers handle st->max == -inf (every entry masked) before these two. */
static inline float softmax_at(float x, const softmax_stats *st)
{
    return (float)(sl_softmax_weight(x, st->max) / st->sum);
}

static inline float log_softmax_at(float x, const softmax_stats *st)
{
    if (isnan(x))
        return -INFINITY;
    if (st->max == INFINITY)
        return x == INFINITY ? -st->log_sum : -INFINITY;
    return (x - st->max) - st->log_sum; /* float32 arithmetic, like PyTorch's CPU kernel */
}

/* Log-softmax in double, for the double-precision divergences. */
typedef struct log_norm {
    double max, log_sum;
} log_norm;

static log_norm log_norm_of(const float *x, int32_t n)
{
    log_norm ln = {sl_ops_max(x, n), -INFINITY};
    if (ln.max == -INFINITY)
        return ln;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        sum += sl_softmax_weight(x[i], ln.max);
    ln.log_sum = log(sum);
    return ln;
}

static inline double log_prob_at(float x, const log_norm *ln)
{
    double w = sl_softmax_weight(x, ln->max);
    if (w == 0.0)
        return -INFINITY;
    if (ln->max == INFINITY)
        return -ln->log_sum;
    return ((double)x - ln->max) - ln->log_sum;
}

/* ------------------------------------------------------------------ reductions */

sl_token sl_ops_argmax(const float *x, int32_t n)
{
    sl_token best = -1;
    for (int32_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            continue;
        if (best < 0 || x[i] > x[best]) /* strict: the lowest id keeps a tie */
            best = i;
    }
    return best;
}

double sl_ops_logsumexp(const float *x, int32_t n)
{
    double max = sl_ops_max(x, n);
    if (max == -INFINITY || max == INFINITY)
        return max;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)x[i] - max); /* a NaN entry makes the result NaN */
    return max + log(sum);
}

void sl_ops_softmax(float *out, const float *x, int32_t n)
{
    softmax_stats st = softmax_stats_of(x, n);
    if (st.max == -INFINITY) {
        /* Nothing to normalise: every entry masked gives all zeros (no NaN). */
        for (int32_t i = 0; i < n; i++)
            out[i] = 0.0f;
        return;
    }
    for (int32_t i = 0; i < n; i++)
        out[i] = softmax_at(x[i], &st);
}

void sl_ops_log_softmax(float *out, const float *x, int32_t n)
{
    softmax_stats st = softmax_stats_of(x, n);
    if (isfinite(st.max)) { /* the common case, in a loop that vectorises */
        for (int32_t i = 0; i < n; i++)
            out[i] = x[i] == x[i] ? (x[i] - st.max) - st.log_sum : -INFINITY;
        return;
    }
    for (int32_t i = 0; i < n; i++)
        out[i] = st.max == -INFINITY ? -INFINITY : log_softmax_at(x[i], &st);
}

double sl_ops_entropy(const float *logits, int32_t n)
{
    log_norm ln = log_norm_of(logits, n);
    if (ln.max == -INFINITY)
        return 0.0;
    double h = 0.0;
    for (int32_t i = 0; i < n; i++) {
        double lp = log_prob_at(logits[i], &ln);
        if (lp != -INFINITY)
            h -= exp(lp) * lp;
    }
    return h;
}

double sl_ops_kl(const float *p_logits, const float *q_logits, int32_t n)
{
    log_norm lp = log_norm_of(p_logits, n), lq = log_norm_of(q_logits, n);
    if (lp.max == -INFINITY)
        return 0.0;
    double kl = 0.0;
    for (int32_t i = 0; i < n; i++) {
        double log_p = log_prob_at(p_logits[i], &lp);
        if (log_p == -INFINITY)
            continue;
        double p = exp(log_p);
        if (p == 0.0)
            continue;
        double log_q = log_prob_at(q_logits[i], &lq);
        if (log_q == -INFINITY)
            return INFINITY;
        kl += p * (log_p - log_q);
    }
    return kl;
}

double sl_ops_js(const float *p_logits, const float *q_logits, int32_t n)
{
    log_norm lp = log_norm_of(p_logits, n), lq = log_norm_of(q_logits, n);
    if (lp.max == -INFINITY || lq.max == -INFINITY)
        return 0.0;
    double js = 0.0;
    for (int32_t i = 0; i < n; i++) {
        double p = exp(log_prob_at(p_logits[i], &lp)), q = exp(log_prob_at(q_logits[i], &lq));
        double m = 0.5 * (p + q);
        if (p > 0.0)
            js += 0.5 * p * log(p / m);
        if (q > 0.0)
            js += 0.5 * q * log(q / m);
    }
    return js;
}

/* Rank order of sl_ops_top_k: a ranks below b if its value is smaller, or equal with a larger
 * id. NaN ranks below every number. */
static inline bool ranks_below(const float *x, sl_token a, sl_token b)
{
    float va = x[a], vb = x[b];
    bool nan_a = isnan(va), nan_b = isnan(vb);
    if (nan_a != nan_b)
        return nan_a;
    if (!nan_a && va != vb)
        return va < vb;
    return a > b;
}

/* Min-heap on rank: ids[0] is the lowest-ranked of the kept ids. */
static void sift_down(const float *x, sl_token *ids, int32_t size, int32_t at)
{
    for (;;) {
        int32_t lowest = at, left = 2 * at + 1, right = left + 1;
        if (left < size && ranks_below(x, ids[left], ids[lowest]))
            lowest = left;
        if (right < size && ranks_below(x, ids[right], ids[lowest]))
            lowest = right;
        if (lowest == at)
            return;
        sl_token t = ids[at];
        ids[at] = ids[lowest];
        ids[lowest] = t;
        at = lowest;
    }
}

int32_t sl_ops_top_k(const float *x, int32_t n, int32_t k, sl_token *ids, float *vals)
{
    int32_t count = k < n ? k : n;
    if (count <= 0)
        return 0;
    /* A bounded heap held in the caller's ids array: O(n log k), no allocation. */
    for (int32_t i = 0; i < count; i++)
        ids[i] = i;
    for (int32_t i = count / 2 - 1; i >= 0; i--)
        sift_down(x, ids, count, i);
    for (int32_t i = count; i < n; i++) {
        if (ranks_below(x, ids[0], i)) {
            ids[0] = i;
            sift_down(x, ids, count, 0);
        }
    }
    /* Heap sort: moving the lowest-ranked to the back leaves the best first. */
    for (int32_t size = count; size > 1; size--) {
        sl_token t = ids[0];
        ids[0] = ids[size - 1];
        ids[size - 1] = t;
        sift_down(x, ids, size - 1, 0);
    }
    if (vals)
        for (int32_t i = 0; i < count; i++)
            vals[i] = x[ids[i]];
    return count;
}

/* ------------------------------------------------------------------ DoLa */

/* HF's DoLa divergence for several premature layers against one final distribution. The final
 * layer's probabilities and log-probabilities are computed once; each candidate then costs one
 * exp and one log per entry (float32 like HF's tensors, sums in double; eight at a time in
 * ops_x86.c when the CPU has AVX2), and candidates run in parallel. kl_div(input = log q, target = m) = m (log m - log q), 0 where m = 0 (xlogy). */
static double divergence_against(const float *p, const float *logp, const float *z, int32_t n, float *e)
{
    float max = (float)sl_ops_max(z, n);
    if (max == -INFINITY)
        return NAN; /* softmax of an all-masked row is undefined (NaN in PyTorch too) */
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        e[i] = expf(z[i] - max);
        sum += e[i];
    }
    float log_sum = (float)log(sum), inv_sum = (float)(1.0 / sum);
    double kl_final = 0.0, kl_premature = 0.0;
    for (int32_t i = 0; i < n; i++) {
        float m = 0.5f * (p[i] + e[i] * inv_sum);
        if (m == 0.0f)
            continue;
        float lm = logf(m), lq = (z[i] - max) - log_sum;
        kl_final += (double)m * (double)(lm - logp[i]);
        kl_premature += (double)m * (double)(lm - lq);
    }
    /* HF: kl_div(...).mean(-1) for each, then 0.5 * (kl1 + kl2). */
    return 0.5 * (kl_final / n + kl_premature / n);
}

void sl_ops_dola_divergences(const float *final_logits, const float *const *premature, int32_t n_layers,
                             int32_t n, double *out)
{
    float max = n > 0 ? (float)sl_ops_max(final_logits, n) : -INFINITY;
    size_t floats = (2 + (size_t)(n_layers > 0 ? n_layers : 0)) * (size_t)n;
    float *p = n > 0 && max != -INFINITY ? malloc(floats * sizeof *p) : NULL;
    if (!p) {
        for (int32_t j = 0; j < n_layers; j++)
            out[j] = n <= 0 ? 0.0 : NAN;
        return;
    }
    float *logp = p + n, *scratch = p + 2 * (size_t)n;
    bool simd = simd_softmax(max);
    if (simd) {
#ifdef SL_X86
        sl_dola_final_avx2(final_logits, n, max, p, logp);
#endif
    } else {
        softmax_stats sp = softmax_stats_of(final_logits, n);
        for (int32_t i = 0; i < n; i++) {
            p[i] = softmax_at(final_logits[i], &sp);
            logp[i] = log_softmax_at(final_logits[i], &sp);
        }
    }
    int nt = sl_threads();
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (nt > 1 && n_layers > 1)
    for (int32_t j = 0; j < n_layers; j++) {
        float *e = scratch + (size_t)j * n;
        float zmax = (float)sl_ops_max(premature[j], n);
#ifdef SL_X86
        if (simd && simd_softmax(zmax)) {
            out[j] = sl_dola_divergence_avx2(p, logp, premature[j], n, zmax, e);
            continue;
        }
#endif
        out[j] = divergence_against(p, logp, premature[j], n, e);
    }
    free(p);
}

double sl_ops_dola_divergence(const float *final_logits, const float *premature_logits, int32_t n)
{
    double d;
    sl_ops_dola_divergences(final_logits, &premature_logits, 1, n, &d);
    return d;
}

void sl_ops_masked_fill(float *x, int32_t n, const uint8_t *keep, bool where, float value)
{
    for (int32_t i = 0; i < n; i++) /* branch-free: masks are irregular */
        x[i] = (keep[i] != 0) == where ? value : x[i];
}

int32_t sl_ops_relative_top_mask(const float *logprobs, int32_t n, float alpha, int32_t min_keep, uint8_t *keep)
{
    if (n <= 0)
        return 0;
    if (min_keep < 1)
        min_keep = 1;
    if (min_keep > n)
        min_keep = n;
    /* float32 throughout, as HF adds np.log(relative_top) to a float32 tensor. */
    float thr = (float)sl_ops_max(logprobs, n) + (float)log((double)alpha);
    float min_keep_value = sl_kth_largest(logprobs, n, min_keep);
    if (min_keep_value < thr)
        thr = min_keep_value;
    int32_t kept = 0;
    for (int32_t i = 0; i < n; i++) {
        keep[i] = !(logprobs[i] < thr);
        kept += keep[i];
    }
    return kept;
}

/* ------------------------------------------------------------------ RNG (Blackman & Vigna) */

static uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void sl_rng_seed(sl_rng *rng, uint64_t seed)
{
    /* splitmix64 never yields four zero outputs in a row, so the state is never all-zero. */
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64_next(&sm);
}

uint64_t sl_rng_next(sl_rng *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

double sl_rng_uniform(sl_rng *rng) { return (double)(sl_rng_next(rng) >> 11) * 0x1.0p-53; }

/* ------------------------------------------------------------------ sampling */

sl_token sl_sample(const float *scores, int32_t n, sl_rng *rng)
{
    /* Exactly one draw per call, whatever the scores, so that a masked step does not shift the
     * random stream of later steps. */
    double u = sl_rng_uniform(rng);
    double max = sl_ops_max(scores, n);
    if (max == -INFINITY)
        return -1;
    double total = 0.0;
    for (int32_t i = 0; i < n; i++)
        total += sl_softmax_weight(scores[i], max);
    double target = u * total, cumulative = 0.0;
    sl_token last = -1;
    for (int32_t i = 0; i < n; i++) {
        double w = sl_softmax_weight(scores[i], max);
        if (w == 0.0)
            continue;
        cumulative += w;
        last = i;
        if (cumulative > target)
            return i;
    }
    /* Rounding can leave the running sum at or just below u * total when u is close to 1. */
    return last;
}
