/* slua/core.so as a stock Lua 5.4 loads it: a loader with no OpenMP of its own, which picks
 * libgomp's wait policy and then opens the module proper (core_impl.so, next to it).
 *
 * libgomp reads its wait policy once, when it is loaded. Its default lets idle workers spin
 * 300000 times after each parallel region, taking the CPU from the thread with the work whenever
 * the machine's other cores are busy; the bound set here (the slua host's, src/main.c, which
 * says why) bridges the gaps inside a decode step only. A module
 * cannot re-execute its interpreter, but libgomp is loaded with core_impl.so, after the policy
 * is set here. A policy the user set is kept, and a libgomp already in the process keeps its own. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

int luaopen_slua_core(lua_State *L);

static const char self_anchor = 0; /* an object of this file, for dladdr to find the file */

int luaopen_slua_core(lua_State *L)
{
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT"))
        setenv("GOMP_SPINCOUNT", "1000", 1);
    Dl_info self;
    if (!dladdr(&self_anchor, &self) || !self.dli_fname)
        return luaL_error(L, "slua.core: cannot find the module's own file");
    char path[PATH_MAX];
    const char *slash = strrchr(self.dli_fname, '/');
    int dir_len = slash ? (int)(slash - self.dli_fname) : 1;
    const char *dir = slash ? self.dli_fname : ".";
    if (snprintf(path, sizeof path, "%.*s/core_impl.so", dir_len, dir) >= (int)sizeof path)
        return luaL_error(L, "slua.core: path too long (%s)", self.dli_fname);
    /* never unloaded: libgomp's worker threads outlive lua_close and run its code */
    void *impl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!impl)
        return luaL_error(L, "slua.core: %s", dlerror());
    void *sym = dlsym(impl, "luaopen_slua_core_impl");
    lua_CFunction open = NULL;
    memcpy(&open, &sym, sizeof open); /* POSIX: a dlsym result converts to a function pointer */
    if (!sym)
        return luaL_error(L, "slua.core: %s: no luaopen_slua_core_impl", path);
    return open(L);
}
