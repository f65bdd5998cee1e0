/* Methods for the decoder catalogue, added to slua.Session and slua.Logits:
 *   session:clone() -> Session           session:copy(src) -> positions copied
 *   session:keep_hidden(bool)            session:degeneration_penalty() -> max cosine
 *   session:eval_branches({ids}) -> {logits = {...}, penalties = {...}}
 *   scores:keep_typical(mass [, min_keep])   scores:keep_epsilon(eps [, min_keep])
 *   scores:keep_eta(eps [, min_keep])      p:sample_residual(q, rng) -> id
 *   scores:keep_top_n_sigma(n)   scores:xtc(threshold, probability, u [, min_keep])
 *   scores:mirostat_v2(mu)       scores:surprise(id)   scores:dry(history, {...}) */
#include <math.h>
#include <string.h>

#include "l_util.h"

/* session:clone() -> a new Session in the same state */
static int l_session_clone(lua_State *L)
{
    l_session_box *src = l_checksession(L, 1);
    l_session_box *b = lua_newuserdatauv(L, sizeof *b, 2);
    b->s = NULL;
    b->generation = 0;
    luaL_setmetatable(L, L_SESSION);
    lua_getiuservalue(L, 1, 1);
    lua_setiuservalue(L, -2, 1); /* keep the model reachable */
    sl_error err;
    b->s = sl_session_clone(src->s, &err);
    if (!b->s)
        return l_raise(L, &err);
    return 1;
}

/* session:copy(src) -> number of positions whose keys and values were copied */
static int l_session_copy(lua_State *L)
{
    l_session_box *dst = l_checksession(L, 1);
    l_session_box *src = l_checksession(L, 2);
    int32_t copied;
    sl_error err;
    if (sl_session_copy(dst->s, src->s, &copied, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    dst->generation++;
    lua_pushinteger(L, copied);
    return 1;
}

static int l_session_keep_hidden(lua_State *L)
{
    l_session_box *b = l_checksession(L, 1);
    luaL_checkany(L, 2);
    sl_error err;
    if (sl_session_keep_hidden(b->s, lua_toboolean(L, 2), &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    return 0;
}

/* session:degeneration_penalty() -> max cosine of the last final hidden state to the earlier ones */
static int l_session_degeneration_penalty(lua_State *L)
{
    l_session_box *b = l_checksession(L, 1);
    double pen = sl_session_degeneration_penalty(b->s);
    if (isnan(pen))
        return luaL_error(L, "degeneration_penalty: needs keep_hidden and at least two positions");
    lua_pushnumber(L, pen);
    return 1;
}

/* session:eval_branches({ids}) -> { logits = {Logits per id}, penalties = {...} }: every id
 * evaluated as the next token in one pass, the session unchanged; penalties (with keep_hidden)
 * are each branch's degeneration penalty against the positions so far. */
static int l_session_eval_branches(lua_State *L)
{
    l_session_box *b = l_checksession(L, 1);
    int32_t n;
    int32_t *ids = l_checkintarray(L, 2, &n, "ids");
    luaL_argcheck(L, n > 0, 2, "no tokens");
    sl_error err;
    if (sl_session_eval_branches(b->s, ids, n, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    b->generation++;
    sl_model *m = sl_session_model(b->s);
    int32_t V = sl_model_n_vocab(m), D = sl_model_n_embd(m), rows, pos = sl_session_pos(b->s);
    const float *all = sl_session_logits_all(b->s, &rows);
    const float *hist = sl_session_hidden_rows(b->s, NULL);
    lua_createtable(L, 0, 2);
    lua_createtable(L, rows, 0);
    for (int32_t i = 0; i < rows; i++) {
        l_logits *x = l_newlogits(L, V);
        memcpy(x->v, all + (size_t)i * V, (size_t)V * sizeof(float));
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "logits");
    if (sl_session_branch_hidden(b->s, 0) && pos > 0) {
        lua_createtable(L, rows, 0);
        for (int32_t i = 0; i < rows; i++) {
            lua_pushnumber(L, sl_ops_max_cosine(hist, pos, D, sl_session_branch_hidden(b->s, i)));
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "penalties");
    }
    return 1;
}

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

/* p:sample_residual(q, rng) -> id drawn from norm(max(0, softmax(p) - softmax(q))) */
static int l_logits_sample_residual(lua_State *L)
{
    l_logits *p = l_checklogits(L, 1);
    l_logits *q = l_checklogits(L, 2);
    sl_rng *r = luaL_checkudata(L, 3, L_RNG);
    luaL_argcheck(L, q->n == p->n, 2, "sizes differ");
    sl_token id = sl_sample_residual(p->v, q->v, p->n, r);
    if (id < 0)
        return luaL_error(L, "sample_residual: every token is masked");
    lua_pushinteger(L, id);
    return 1;
}

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

/* Adds the methods to the __index tables of classes registered before. */
static void add_methods(lua_State *L, const char *tname, const luaL_Reg *methods)
{
    luaL_getmetatable(L, tname);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}

void sl_lua_open_decode(lua_State *L)
{
    static const luaL_Reg session[] = {{"clone", l_session_clone},
                                       {"copy", l_session_copy},
                                       {"keep_hidden", l_session_keep_hidden},
                                       {"degeneration_penalty", l_session_degeneration_penalty},
                                       {"eval_branches", l_session_eval_branches},
                                       {NULL, NULL}};
    static const luaL_Reg logits[] = {{"keep_typical", l_logits_keep_typical},
                                      {"keep_epsilon", l_logits_keep_epsilon},
                                      {"keep_eta", l_logits_keep_eta},
                                      {"sample_residual", l_logits_sample_residual},
                                      {"keep_top_n_sigma", l_logits_keep_top_n_sigma},
                                      {"xtc", l_logits_xtc},
                                      {"mirostat_v2", l_logits_mirostat_v2},
                                      {"surprise", l_logits_surprise},
                                      {"dry", l_logits_dry},
                                      {NULL, NULL}};
    add_methods(L, L_SESSION, session);
    add_methods(L, L_LOGITS, logits);
}
