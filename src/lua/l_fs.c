/* core.fs: the few file-system and process calls plain Lua lacks, for long-running drivers
 * (sweeps) that must survive being killed:
 *
 *   fs.append(path, text [, sync]) -> true | nil, message   one write(2) per call, O_APPEND;
 *                                                           sync = fsync before closing
 *   fs.truncate(path, size)        -> true | nil, message   drop a torn tail
 *   fs.mkdir(path)                 -> true | nil, message   one level; an existing dir is fine
 *   fs.isatty(fd)                  -> bool
 *   fs.exe()                       -> path of the running executable (or nil)
 *   fs.pid()                       -> process id
 *   fs.trap_interrupt(on [, term]) Ctrl-C (and SIGTERM with term) sets a flag instead of
 *                                  stopping Lua (a second one kills the process); off
 *                                  restores the previous handlers
 *   fs.interrupted()               -> bool: a Ctrl-C arrived since trap_interrupt(true)
 *   fs.read(path)                  -> text | nil, message   a whole regular file; a FIFO or a
 *                                                           device is refused before it can block
 *   fs.lock(path)                  -> Lock, stale | nil, holder, "held" | nil, message
 *                                  an exclusive lock on the file `path` (created), holding
 *                                  "pid=P host=H"; the kernel drops it when the process ends,
 *                                  so a file left by a killed run is stale: it is taken over
 *                                  and its old text returned as `stale`. lock:release() (also
 *                                  on collection) removes the file. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "l_util.h"
#include "util/file_io.h"

static int push_errno(lua_State *L, const char *what, const char *path)
{
    int e = errno;
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s (%s)", path, what, strerror(e));
    return 2;
}

static int push_message(lua_State *L, const sl_error *err)
{
    luaL_pushfail(L);
    lua_pushstring(L, err->msg);
    return 2;
}

static int l_fs_append(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    int sync = lua_toboolean(L, 3);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return push_errno(L, "cannot open for appending", path);
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return push_errno(L, "cannot write", path);
        }
        done += (size_t)n;
    }
    if (sync && fsync(fd) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return push_errno(L, "cannot fsync", path);
    }
    if (close(fd) != 0)
        return push_errno(L, "cannot close", path);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_fs_truncate(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer size = luaL_checkinteger(L, 2);
    luaL_argcheck(L, size >= 0, 2, "size must be >= 0");
    if (truncate(path, (off_t)size) != 0)
        return push_errno(L, "cannot truncate", path);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_fs_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (mkdir(path, 0755) != 0) {
        if (errno == EEXIST && sl_file_kind_of(path) == SL_FILE_DIRECTORY) {
            lua_pushboolean(L, 1);
            return 1;
        }
        return push_errno(L, "cannot create directory", path);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_fs_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int l_fs_exe(lua_State *L)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        luaL_pushfail(L);
        return 1;
    }
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static int l_fs_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

static volatile sig_atomic_t interrupted;
static struct sigaction saved_sigint;
static int trapped;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C stops the process at once */
}

static struct sigaction saved_sigterm;
static int trapped_term;

static void on_terminate(int sig)
{
    (void)sig;
    interrupted = 1;
    signal(SIGTERM, SIG_DFL); /* a second SIGTERM stops the process at once */
}

/* fs.trap_interrupt(on [, also_sigterm]) */
static int l_fs_trap_interrupt(lua_State *L)
{
    int on = lua_toboolean(L, 1), term = lua_toboolean(L, 2);
    if (on && !trapped) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_interrupt;
        sigemptyset(&sa.sa_mask);
        interrupted = 0;
        sigaction(SIGINT, &sa, &saved_sigint);
        trapped = 1;
        if (term) {
            sa.sa_handler = on_terminate;
            sigaction(SIGTERM, &sa, &saved_sigterm);
            trapped_term = 1;
        }
    } else if (!on && trapped) {
        sigaction(SIGINT, &saved_sigint, NULL);
        if (trapped_term)
            sigaction(SIGTERM, &saved_sigterm, NULL);
        trapped = trapped_term = 0;
    }
    return 0;
}

static int l_fs_interrupted(lua_State *L)
{
    lua_pushboolean(L, interrupted != 0);
    return 1;
}

#define LOCK_TNAME "slua.Lock"

typedef struct fs_lock {
    int fd;
    char path[];
} fs_lock;

/* The text of an open lock file (at most size - 1 bytes), trailing newline dropped. */
static void lock_text(int fd, char *buf, size_t size)
{
    ssize_t n = pread(fd, buf, size - 1, 0);
    n = n < 0 ? 0 : n;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
        n--;
    buf[n] = '\0';
}

static int whole_file_lock(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    return fcntl(fd, F_SETLK, &fl);
}

static int l_fs_lock(lua_State *L)
{
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    fs_lock *lk = lua_newuserdatauv(L, sizeof *lk + len + 1, 0);
    lk->fd = -1;
    memcpy(lk->path, path, len + 1);
    luaL_setmetatable(L, LOCK_TNAME);
    char host[256] = "?", owner[320], old[512];
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    int n_owner = snprintf(owner, sizeof owner, "pid=%ld host=%s\n", (long)getpid(), host);
    /* A holder that releases between our open and our lock has removed the file: retry on
     * the new one, so two runs never hold locks on two different files of one path. */
    for (int attempt = 0; attempt < 16; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return push_errno(L, "cannot create the lock file", path);
        if (whole_file_lock(fd) != 0) {
            int e = errno;
            if (e == EACCES || e == EAGAIN) {
                lock_text(fd, old, sizeof old);
                close(fd);
                luaL_pushfail(L);
                lua_pushstring(L, old[0] ? old : "a process that has not written its name yet");
                lua_pushliteral(L, "held");
                return 3;
            }
            close(fd);
            errno = e;
            return push_errno(L, "cannot lock", path);
        }
        struct stat held, now;
        if (fstat(fd, &held) != 0 || stat(path, &now) != 0 || held.st_ino != now.st_ino ||
            held.st_dev != now.st_dev) {
            close(fd);
            continue;
        }
        lock_text(fd, old, sizeof old);
        if (ftruncate(fd, 0) != 0 || pwrite(fd, owner, (size_t)n_owner, 0) != (ssize_t)n_owner) {
            int e = errno;
            close(fd);
            unlink(path);
            errno = e;
            return push_errno(L, "cannot write the lock file", path);
        }
        lk->fd = fd;
        if (old[0])
            lua_pushstring(L, old);
        else
            lua_pushnil(L);
        return 2;
    }
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: cannot lock (the file keeps being replaced)", path);
    return 2;
}

static int l_lock_release(lua_State *L)
{
    fs_lock *lk = luaL_checkudata(L, 1, LOCK_TNAME);
    if (lk->fd >= 0) {
        unlink(lk->path); /* while still held: a waiting run then sees the file gone and retries */
        close(lk->fd);
        lk->fd = -1;
    }
    return 0;
}

static int l_lock_held(lua_State *L)
{
    fs_lock *lk = luaL_checkudata(L, 1, LOCK_TNAME);
    lua_pushboolean(L, lk->fd >= 0);
    return 1;
}

/* The buffer is Lua's (a userdata made before the file is opened), so an allocation failure
 * cannot leak the descriptor. */
static int l_fs_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    sl_error err;
    if (stat(path, &st) != 0)
        return push_errno(L, "cannot open", path);
    if (sl_file_check_regular(path, st.st_mode, &err) != SL_STATUS_OK)
        return push_message(L, &err);
    size_t cap = (size_t)st.st_size;
    char *buf = lua_newuserdatauv(L, cap ? cap : 1, 0);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return push_errno(L, "cannot open", path);
    if (fstat(fd, &st) != 0)
        st.st_mode = 0; /* named "not a plain file" below */
    if (sl_file_check_regular(path, st.st_mode, &err) != SL_STATUS_OK) { /* replaced since the stat */
        close(fd);
        return push_message(L, &err);
    }
    size_t len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return push_errno(L, "cannot read", path);
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    lua_pushlstring(L, buf, len);
    return 1;
}

void sl_lua_register_fs(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"append", l_fs_append},
                                     {"truncate", l_fs_truncate},
                                     {"mkdir", l_fs_mkdir},
                                     {"isatty", l_fs_isatty},
                                     {"exe", l_fs_exe},
                                     {"pid", l_fs_pid},
                                     {"trap_interrupt", l_fs_trap_interrupt},
                                     {"interrupted", l_fs_interrupted},
                                     {"read", l_fs_read},
                                     {"lock", l_fs_lock},
                                     {NULL, NULL}};
    static const luaL_Reg lock_methods[] = {{"release", l_lock_release}, {"held", l_lock_held}, {NULL, NULL}};
    static const luaL_Reg lock_meta[] = {{"__gc", l_lock_release}, {"__close", l_lock_release}, {NULL, NULL}};
    l_newclass(L, LOCK_TNAME, lock_methods, lock_meta);
    luaL_newlib(L, funcs);
    lua_setfield(L, -2, "fs");
}
