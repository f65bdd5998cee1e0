/* Methods for the decoder catalogue, added to slua.Session and slua.Logits:
 *   session:clone() -> Session           session:copy(src) -> positions copied
 *   session:keep_hidden(bool)            session:degeneration_penalty() -> max cosine
 *   scores:keep_typical(mass [, min_keep])   scores:keep_epsilon(eps [, min_keep])
 *   scores:keep_eta(eps [, min_keep])      p:sample_residual(q, rng) -> id */
#include <math.h>

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
                                       {NULL, NULL}};
    static const luaL_Reg logits[] = {{"keep_typical", l_logits_keep_typical},
                                      {"keep_epsilon", l_logits_keep_epsilon},
                                      {"keep_eta", l_logits_keep_eta},
                                      {"sample_residual", l_logits_sample_residual},
                                      {NULL, NULL}};
    add_methods(L, L_SESSION, session);
    add_methods(L, L_LOGITS, logits);
}
