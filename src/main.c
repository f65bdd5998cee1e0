/* slua — the host: runs a Lua 5.4 recipe with `require "slua"` available.
 *
 *   slua SCRIPT [--flag value ...]   run a script (a path, or a recipe name such as `greedy`);
 *                                    a script that returns a recipe value runs it
 *   slua --list                      the bundled recipes with their one-line descriptions
 *   slua --help | --version
 *
 * Modelled on lua.c: the script runs under lua_pcall with a message handler; errors print
 * `slua: <message>` (plus a traceback for programming errors) and exit 1; Ctrl-C stops the
 * script at the next Lua instruction and exits 130. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "slua/sl.h"
#include "slua/sl_lua.h"

static lua_State *global_L; /* only for the signal handler, as in lua.c */

static void on_sigint(int sig);

/* Raises "interrupted" in the script; a script that catches it (slua chat stops a reply and
 * goes on) gets Ctrl-C back. */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    signal(SIGINT, on_sigint);
    lua_pushliteral(L, "interrupted"); /* no position: recipes and the handler below match it exactly */
    lua_error(L);
}

static void on_sigint(int sig)
{
    signal(sig, SIG_DFL); /* a second Ctrl-C before the script sees the first kills the process */
    lua_sethook(global_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* The exit status of a clean failure: its `code` field (2 for usage errors), else 1. */
static int fail_code = 1;

/* Clean failures (sl.fail: tables with a `message`) print as they are; anything else gets a
 * traceback. */
static int msghandler(lua_State *L)
{
    if (lua_istable(L, 1) && lua_getfield(L, 1, "message") == LUA_TSTRING) {
        lua_getfield(L, 1, "code");
        if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0 && lua_tointeger(L, -1) < 126)
            fail_code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        return 1;
    }
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (!strcmp(msg, "interrupted"))
        return 1;
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Where lua/ and recipes/ live: $SLUA_PATH; the source tree for the binary of the build tree it
 * was compiled in; <prefix>/share/slua (SL_BIN_TO_DATA from the binary's folder) for an installed
 * binary, which never reads the source tree. */
static void find_root(char *root, size_t size)
{
    const char *env = getenv("SLUA_PATH");
    if (env && *env) {
        snprintf(root, size, "%s", env);
        return;
    }
    char exe[PATH_MAX], build[PATH_MAX];
    if (!realpath("/proc/self/exe", exe)) {
        snprintf(root, size, "%s", SL_SOURCE_ROOT);
        return;
    }
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    if (realpath(SL_BUILD_BIN_DIR, build) && strcmp(exe, build) == 0) {
        snprintf(root, size, "%s", SL_SOURCE_ROOT);
        return;
    }
    size_t n = strlen(exe);
    snprintf(exe + n, sizeof exe - n, "/%s", SL_BIN_TO_DATA);
    if (!realpath(exe, root))
        snprintf(root, size, "%.*s", (int)(size - 1), exe);
}

static void set_paths(lua_State *L, const char *root)
{
    lua_getglobal(L, "package");
    /* root/?.lua last: `require "recipes.dola"` gives a recipe's value */
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua;", root, root, root);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    luaL_getsubtable(L, -1, "preload");
    lua_pushcfunction(L, luaopen_slua_core);
    lua_setfield(L, -2, "slua.core");
    lua_pop(L, 2);
    lua_pushstring(L, root);
    lua_setglobal(L, "SLUA_ROOT");
}

/* The first paragraph of a recipe's header comment ("-- " lines up to a bare "--"), joined
 * into one line. */
static void recipe_summary(const char *path, char *desc, size_t size)
{
    desc[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    size_t used = 0;
    while (fgets(line, sizeof line, f) && strncmp(line, "-- ", 3) == 0) {
        line[strcspn(line, "\r\n")] = '\0';
        const char *text = line + 3;
        if (!*text)
            break;
        int n = snprintf(desc + used, size - used, "%s%s", used ? " " : "", text);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    fclose(f);
}

static void list_recipes(const char *root)
{
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/recipes", root);
    struct dirent **entries;
    int n = scandir(dir, &entries, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "slua: %s: cannot list recipes\n", dir);
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *name = entries[i]->d_name;
        size_t len = strlen(name);
        if (len > 4 && strcmp(name + len - 4, ".lua") == 0) {
            char path[PATH_MAX * 2], desc[1024];
            snprintf(path, sizeof path, "%s/%s", dir, name);
            recipe_summary(path, desc, sizeof desc);
            printf("  %-24.*s %s\n", (int)(len - 4), name, desc);
        }
        free(entries[i]);
    }
    free(entries);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: slua SCRIPT [--flag value ...]\n"
                 "       slua --list        list the bundled recipes\n"
                 "       slua --version\n\n"
                 "SCRIPT is a Lua file, a command, or the name of a bundled recipe\n"
                 "(slua greedy --prompt \"Hi\").\n"
                 "Every generation recipe takes --model DIR, --prompt TEXT | --prompt-ids 1,2,3,\n"
                 "--max-new-tokens N, --seed N, --threads N (at most %d), --format text|json, and\n"
                 "--config FILE.json (options as a JSON object); see `slua RECIPE --help`.\n"
                 "Usage errors exit with status 2, other failures with 1, Ctrl-C with 130.\n",
            SL_MAX_THREADS);
}

/* A path to an existing file, a command (lua/slua/cmd/<name>.lua: `slua eval`, `slua sweep`),
 * or recipes/<name>.lua under root. */
static const char *resolve_script(const char *arg, const char *root, char *buf, size_t size)
{
    if (access(arg, R_OK) == 0)
        return arg;
    if (strchr(arg, '/'))
        return arg;
    const char *ext = strstr(arg, ".lua") ? "" : ".lua";
    snprintf(buf, size, "%s/lua/slua/cmd/%s%s", root, arg, ext);
    if (access(buf, R_OK) == 0)
        return buf;
    snprintf(buf, size, "%s/recipes/%s%s", root, arg, ext);
    if (access(buf, R_OK) == 0)
        return buf;
    return arg;
}

/* libgomp reads its wait policy once, when it loads (before main). Its default lets idle workers
 * spin 300000 times after each parallel region; on a machine whose other cores are busy they
 * take the CPU from the thread that has the work (the default thread count ran 17x slower than
 * one thread beside another job). Workers that sleep at once pay a wake-up at every one of a
 * decode step's ~150 regions (SmolLM2-135M: 64-74 tok/s against 100-107). A bound of
 * SL_SPIN_COUNT spins (tens of microseconds) bridges the gaps inside a step and costs nothing
 * measurable beside a busy machine's other jobs (bench/busy_threads.sh). Unless the user chose
 * a policy, run again, once, with that bound; if the exec fails, go on as loaded. */
#define SL_SPIN_COUNT "1000"
static void prefer_bounded_spin(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    if (setenv("GOMP_SPINCOUNT", SL_SPIN_COUNT, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    prefer_bounded_spin(argv);
    char root[PATH_MAX];
    find_root(root, sizeof root);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("slua %s (%s)\n", sl_version(), LUA_RELEASE);
        return 0;
    }
    if (!strcmp(argv[1], "--list")) {
        list_recipes(root);
        return 0;
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "slua: unknown option '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    char script_buf[PATH_MAX * 2];
    const char *script = resolve_script(argv[1], root, script_buf, sizeof script_buf);

    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "slua: cannot create the Lua state (out of memory)\n");
        return 1;
    }
    luaL_openlibs(L);
    set_paths(L, root);
    lua_createtable(L, argc - 2, 1); /* arg, as lua.c builds it */
    lua_pushstring(L, script);
    lua_rawseti(L, -2, 0);
    for (int i = 2; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");

    int status;
    lua_pushcfunction(L, msghandler);
    int base = lua_gettop(L);
    status = luaL_loadfile(L, script);
    if (status == LUA_OK) {
        global_L = L;
        signal(SIGINT, on_sigint);
        status = lua_pcall(L, 0, 1, base);
        /* A recipe file returns its value (sl.recipe{...}): slua.recipe runs it as the command
         * line; a plain script returns nothing and has already run. */
        if (status == LUA_OK && !lua_isnil(L, -1)) {
            status = luaL_loadstring(L, "local value = ... return require('slua.recipe').host(value, arg)");
            if (status == LUA_OK) {
                lua_insert(L, -2);
                status = lua_pcall(L, 1, 0, base);
            }
        }
        signal(SIGINT, SIG_DFL);
    }
    int code = 0;
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fflush(stdout);
        if (msg && !strcmp(msg, "interrupted")) {
            fprintf(stderr, "\nslua: interrupted\n");
            code = 130;
        } else {
            fprintf(stderr, "slua: %s\n", msg ? msg : "(error object is not a string)");
            code = fail_code;
        }
    }
    lua_close(L);
    return code;
}
