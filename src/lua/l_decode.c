/* Methods for the search decoders, added to slua.Session:
 *   session:clone() -> Session           session:copy(src) -> positions copied
 *   session:keep_hidden(bool)            session:degeneration_penalty() -> max cosine
 *   session:eval_branches({ids}) -> {logits = {...}, penalties = {...}} */
#include <math.h>
#include <string.h>

#include "l_util.h"

/* session:clone() -> a new Session in the same state */
static int l_session_clone(lua_State *L)
{
    l_session_box *src = l_checksession(L, 1);
    l_session_box *b = lua_newuserdatauv(L, sizeof *b, 3);
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

void sl_lua_open_decode(lua_State *L)
{
    static const luaL_Reg session[] = {{"clone", l_session_clone},
                                       {"copy", l_session_copy},
                                       {"keep_hidden", l_session_keep_hidden},
                                       {"degeneration_penalty", l_session_degeneration_penalty},
                                       {"eval_branches", l_session_eval_branches},
                                       {NULL, NULL}};
    l_addmethods(L, L_SESSION, session);
}
