/* Logits processors and warpers, methods of slua.Logits that edit the scores in place and
 * return self (so they chain: scores:temperature(0.7):keep_top_k(50)):
 *   HF:        temperature(t)   keep_top_k(k [, min_keep])   keep_top_p(p [, min_keep])
 *              keep_min_p(p [, min_keep])   keep_typical(mass [, min_keep])
 *              keep_epsilon(eps [, min_keep])   keep_eta(eps [, min_keep])
 *              repetition_penalty(penalty, history [, opts])   no_repeat_ngram(size, history)
 *              exp_decay_length(eos_ids, cur_len, regulation_start, factor)   bias({[id] = delta})
 *   llama.cpp: keep_top_n_sigma(n)   xtc(threshold, probability, u [, min_keep]) -> self, masked
 *              mirostat_v2(mu) -> self, kept   surprise(id) -> bits   dry(history, opts)
 * A history is a Session (its evaluated tokens) or an array of ids. */
#include <math.h>
#include <stdbool.h>

#include "l_util.h"

/* ------------------------------------------------------------------ HF processors */

static int l_logits_temperature(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Number t = luaL_checknumber(L, 2);
    luaL_argcheck(L, t > 0, 2, "temperature must be > 0");
    sl_proc_temperature(x->v, x->n, (float)t);
    lua_settop(L, 1);
    return 1;
}

static int l_logits_keep_top_k(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2), min_keep = luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, k >= 0, 2, "k must be >= 0");
    luaL_argcheck(L, min_keep >= 1, 3, "min_keep must be >= 1");
    if (k > 0)
        sl_proc_top_k(x->v, x->n, k > x->n ? x->n : (int32_t)k, min_keep > x->n ? x->n : (int32_t)min_keep);
    lua_settop(L, 1);
    return 1;
}

/* keep_top_p / keep_min_p (p [, min_keep]), p in [0, 1]. */
static int probability_warper(lua_State *L, bool top_p)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Number p = luaL_checknumber(L, 2);
    lua_Integer min_keep = luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, p >= 0 && p <= 1, 2, top_p ? "top_p must be in [0, 1]" : "min_p must be in [0, 1]");
    luaL_argcheck(L, min_keep >= 1, 3, "min_keep must be >= 1");
    int32_t keep = min_keep > x->n ? x->n : (int32_t)min_keep;
    if (!top_p)
        sl_proc_min_p(x->v, x->n, (float)p, keep);
    else if (p < 1.0) /* HF builds no top-p warper at 1 */
        sl_proc_top_p(x->v, x->n, (float)p, keep);
    lua_settop(L, 1);
    return 1;
}

static int l_logits_keep_top_p(lua_State *L) { return probability_warper(L, true); }
static int l_logits_keep_min_p(lua_State *L) { return probability_warper(L, false); }

/* Token history for history-based processors: a Session (its evaluated tokens) or an array.
 * Leaves a userdata holding the ids on the stack when it has to copy. */
static const sl_token *l_history(lua_State *L, int idx, int32_t *n)
{
    l_session_box *b = luaL_testudata(L, idx, L_SESSION);
    if (b) {
        if (!b->s)
            luaL_error(L, "attempt to use a closed %s", L_SESSION);
        return sl_session_tokens(b->s, n);
    }
    if (!lua_istable(L, idx))
        luaL_typeerror(L, idx, "slua.Session or array of token ids");
    return l_checkintarray(L, idx, n, "ids");
}

/* x:repetition_penalty(penalty, history [, {window=n, skip=k, exempt={ids}}])
 * history: a Session or an array of ids. skip drops the first k ids (e.g. the prompt), window
 * keeps only the last n. */
static int l_logits_repetition_penalty(lua_State *L)
{
    lua_settop(L, 4); /* options sit at fixed indices below anything pushed later */
    l_logits *x = l_checklogits(L, 1);
    lua_Number penalty = luaL_checknumber(L, 2);
    luaL_argcheck(L, penalty > 0, 2, "penalty must be > 0");
    int32_t n_ids;
    const sl_token *ids = l_history(L, 3, &n_ids);
    lua_Integer window = l_optfield_integer(L, 4, "window", 0), skip = l_optfield_integer(L, 4, "skip", 0);
    luaL_argcheck(L, window >= 0 && skip >= 0, 4, "window and skip must be >= 0");
    int32_t n_exempt = 0;
    const int32_t *exempt = NULL;
    if (!lua_isnoneornil(L, 4) && lua_getfield(L, 4, "exempt") != LUA_TNIL)
        exempt = l_checkintarray(L, lua_gettop(L), &n_exempt, "exempt");
    int32_t from = skip > n_ids ? n_ids : (int32_t)skip;
    if (window > 0 && n_ids - from > window)
        from = n_ids - (int32_t)window;
    if (penalty != 1.0)
        sl_proc_repetition_penalty(x->v, x->n, ids + from, n_ids - from, (float)penalty, exempt, n_exempt);
    lua_settop(L, 1);
    return 1;
}

/* x:no_repeat_ngram(size, history) */
static int l_logits_no_repeat_ngram(lua_State *L)
{
    lua_settop(L, 3);
    l_logits *x = l_checklogits(L, 1);
    lua_Integer size = luaL_checkinteger(L, 2);
    luaL_argcheck(L, size >= 1, 2, "n-gram size must be >= 1");
    int32_t n_ids;
    const sl_token *ids = l_history(L, 3, &n_ids);
    sl_proc_no_repeat_ngram(x->v, x->n, ids, n_ids, (int32_t)size);
    lua_settop(L, 1);
    return 1;
}

/* x:exp_decay_length(eos_ids, cur_len, regulation_start, factor): HF ExponentialDecayLengthPenalty */
static int l_logits_exp_decay_length(lua_State *L)
{
    lua_settop(L, 5);
    l_logits *x = l_checklogits(L, 1);
    int32_t n_eos;
    const int32_t *eos = l_checkintarray(L, 2, &n_eos, "eos");
    lua_Integer cur = luaL_checkinteger(L, 3), start = luaL_checkinteger(L, 4);
    lua_Number factor = luaL_checknumber(L, 5);
    sl_proc_exp_decay_length(x->v, x->n, eos, n_eos, (int32_t)cur, (int32_t)start, (float)factor);
    lua_settop(L, 1);
    return 1;
}

/* x:bias({[id] = delta, ...}) adds each delta */
static int l_logits_bias(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        int ok;
        lua_Integer id = lua_tointegerx(L, -2, &ok);
        if (!ok || id < 0 || id >= x->n)
            return luaL_argerror(L, 2, "keys must be token ids in range");
        x->v[id] += (float)luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    lua_settop(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ HF entropy warpers */

static int32_t opt_min_keep(lua_State *L, int idx, const l_logits *x)
{
    lua_Integer k = luaL_optinteger(L, idx, 1);
    luaL_argcheck(L, k >= 1, idx, "min_keep must be >= 1");
    return k > x->n ? x->n : (int32_t)k;
}

static int l_logits_keep_typical(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Number mass = luaL_checknumber(L, 2);
    luaL_argcheck(L, mass > 0 && mass < 1, 2, "typical_p must be in (0, 1)");
    int32_t min_keep = opt_min_keep(L, 3, x);
    sl_error err;
    if (sl_proc_typical(x->v, x->n, (float)mass, min_keep, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int cutoff_warper(lua_State *L, bool eta)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Number eps = luaL_checknumber(L, 2);
    luaL_argcheck(L, eps > 0 && eps < 1, 2, eta ? "eta_cutoff must be in (0, 1)" : "epsilon_cutoff must be in (0, 1)");
    int32_t min_keep = opt_min_keep(L, 3, x);
    if (eta)
        sl_proc_eta(x->v, x->n, (float)eps, min_keep);
    else
        sl_proc_epsilon(x->v, x->n, (float)eps, min_keep);
    lua_settop(L, 1);
    return 1;
}

static int l_logits_keep_epsilon(lua_State *L) { return cutoff_warper(L, false); }
static int l_logits_keep_eta(lua_State *L) { return cutoff_warper(L, true); }

/* ------------------------------------------------------------------ llama.cpp samplers */

/* scores:keep_top_n_sigma(n) */
static int l_logits_keep_top_n_sigma(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Number n = luaL_checknumber(L, 2);
    luaL_argcheck(L, n >= 0, 2, "top_n_sigma must be >= 0");
    sl_proc_top_n_sigma(x->v, x->n, (float)n);
    lua_settop(L, 1);
    return 1;
}

/* scores:xtc(threshold, probability, u [, min_keep]) -> scores, number masked */
static int l_logits_xtc(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Number threshold = luaL_checknumber(L, 2), probability = luaL_checknumber(L, 3), u = luaL_checknumber(L, 4);
    luaL_argcheck(L, threshold >= 0 && threshold <= 1, 2, "xtc threshold must be in [0, 1]");
    luaL_argcheck(L, probability >= 0 && probability <= 1, 3, "xtc probability must be in [0, 1]");
    int32_t min_keep = opt_min_keep(L, 5, x);
    int32_t masked = sl_proc_xtc(x->v, x->n, (float)threshold, (float)probability, u, min_keep);
    if (masked < 0)
        return luaL_error(L, "xtc: out of memory");
    lua_settop(L, 1);
    lua_pushinteger(L, masked);
    return 2;
}

/* scores:mirostat_v2(mu) -> scores, number kept */
static int l_logits_mirostat_v2(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Number mu = luaL_checknumber(L, 2);
    int32_t kept = sl_proc_mirostat_v2(x->v, x->n, (float)mu);
    lua_settop(L, 1);
    lua_pushinteger(L, kept);
    return 2;
}

/* scores:surprise(id) -> -log2 softmax(scores)[id] */
static int l_logits_surprise(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    luaL_argcheck(L, id >= 0 && id < x->n, 2, "token id out of range");
    lua_pushnumber(L, sl_surprise(x->v, x->n, (sl_token)id));
    return 1;
}

/* scores:dry(history, {multiplier=, base=, allowed_length=, window=, breakers={ids}}) */
static int l_logits_dry(lua_State *L)
{
    lua_settop(L, 3);
    l_logits *x = l_checklogits(L, 1);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Number multiplier = l_optfield_number(L, 3, "multiplier", 0.8), base = l_optfield_number(L, 3, "base", 1.75);
    lua_Integer allowed = l_optfield_integer(L, 3, "allowed_length", 2), window = l_optfield_integer(L, 3, "window", 0);
    luaL_argcheck(L, base >= 1, 3, "dry base must be >= 1");
    luaL_argcheck(L, allowed >= 1, 3, "dry allowed_length must be >= 1");
    luaL_argcheck(L, window >= 0, 3, "dry window must be >= 0");
    int32_t n_ids, n_breakers = 0;
    const sl_token *ids = l_history(L, 2, &n_ids);
    const int32_t *breakers = NULL;
    if (lua_getfield(L, 3, "breakers") != LUA_TNIL)
        breakers = l_checkintarray(L, lua_gettop(L), &n_breakers, "breakers");
    if (window > 0 && window < n_ids) {
        ids += n_ids - window;
        n_ids = (int32_t)window;
    }
    sl_error err;
    if (sl_proc_dry(x->v, x->n, ids, n_ids, (float)multiplier, (float)base, (int32_t)allowed, breakers, n_breakers,
                    &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ registration */

void sl_lua_open_processors(lua_State *L)
{
    static const luaL_Reg methods[] = {{"temperature", l_logits_temperature},
                                       {"keep_top_k", l_logits_keep_top_k},
                                       {"keep_top_p", l_logits_keep_top_p},
                                       {"keep_min_p", l_logits_keep_min_p},
                                       {"keep_typical", l_logits_keep_typical},
                                       {"keep_epsilon", l_logits_keep_epsilon},
                                       {"keep_eta", l_logits_keep_eta},
                                       {"repetition_penalty", l_logits_repetition_penalty},
                                       {"no_repeat_ngram", l_logits_no_repeat_ngram},
                                       {"exp_decay_length", l_logits_exp_decay_length},
                                       {"bias", l_logits_bias},
                                       {"keep_top_n_sigma", l_logits_keep_top_n_sigma},
                                       {"xtc", l_logits_xtc},
                                       {"mirostat_v2", l_logits_mirostat_v2},
                                       {"surprise", l_logits_surprise},
                                       {"dry", l_logits_dry},
                                       {NULL, NULL}};
    l_addmethods(L, L_LOGITS, methods);
}
