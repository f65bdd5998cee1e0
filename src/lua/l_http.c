/* core.http_server: the HTTP side of `slua serve`, on GNU libmicrohttpd (one thread per
 * connection). Connection threads parse HTTP, read bodies within the limits and queue each
 * complete request; the Lua thread takes them with srv:poll(), and answers each with
 * req:respond(status, headers, body) or a stream (req:start / req:send / req:finish). A
 * connection thread waits for its request's answer and watches its socket meanwhile, so a
 * client that goes away marks its request cancelled (req:cancelled()) within a fraction of a
 * second, whether it waits for a whole reply or reads a stream.
 *
 *   local srv = core.http_server{ host = "127.0.0.1", port = 0, max_body = 8 << 20,
 *                                 max_connections = 64, header_timeout = 10, idle_timeout = 60,
 *                                 body_timeout = 60 }
 *   srv:port()  srv:poll(seconds) -> {Request...}  srv:busy()  srv:quiesce()  srv:close()
 *   req:method() req:path() req:header(name) req:body() req:id()
 *   req:respond(status, {name = value}, body)  req:start(status, headers)  req:send(text)
 *   req:finish()  req:cancelled() */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "l_util.h"

#define L_HTTP "slua.HttpServer"
#define L_REQUEST "slua.HttpRequest"
#define MAX_TRACKED 1024

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct http_server http_server;

typedef struct http_req {
    atomic_int refs; /* the connection thread, the Lua userdata, a streaming response */
    http_server *srv;
    uint64_t id;
    int fd;
    double started;
    char method[16];
    char *path;
    char *headers; /* "name\0value\0" pairs, names lower-case */
    size_t headers_len;
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    /* the answer, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int status;
    bool head_ready, streaming, done, cancelled;
    char *reply_headers; /* "Name: value\n" lines */
    char *out;
    size_t out_len, out_cap, out_off;
    struct http_req *next;
} http_req;

/* A connection's clock for the header deadline: when it opened or last finished a request. */
typedef struct tracked {
    struct MHD_Connection *c;
    int fd;
    double since;
    bool in_request, served, shut;
} tracked;

struct http_server {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    http_req *head, *tail;
    size_t max_body;
    double header_timeout, body_timeout;
    uint64_t next_id;
    tracked conns[MAX_TRACKED];
    int n_conns;
    int port;
};

static void req_release(http_req *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->path);
    free(r->headers);
    free(r->body);
    free(r->reply_headers);
    free(r->out);
    free(r);
}

static bool append(char **buf, size_t *len, size_t *cap, const char *src, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1)
            c *= 2;
        char *g = realloc(*buf, c);
        if (!g)
            return false;
        *buf = g;
        *cap = c;
    }
    memcpy(*buf + *len, src, n);
    *len += n;
    (*buf)[*len] = '\0';
    return true;
}

typedef struct header_acc {
    char *buf;
    size_t len, cap;
    bool ok;
} header_acc;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    header_acc *h = cls;
    size_t kl = strlen(key), start = h->len;
    h->ok &= append(&h->buf, &h->len, &h->cap, key, kl + 1);
    for (size_t i = start; h->ok && i < start + kl; i++)
        h->buf[i] = (char)((h->buf[i] >= 'A' && h->buf[i] <= 'Z') ? h->buf[i] + 32 : h->buf[i]);
    h->ok &= append(&h->buf, &h->len, &h->cap, value ? value : "", (value ? strlen(value) : 0) + 1);
    return MHD_YES;
}

static tracked *find_conn(http_server *s, struct MHD_Connection *c)
{
    for (int i = 0; i < s->n_conns; i++)
        if (s->conns[i].c == c)
            return &s->conns[i];
    return NULL;
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    (void)socket_context;
    http_server *s = cls;
    pthread_mutex_lock(&s->mu);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED && s->n_conns < MAX_TRACKED) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        s->conns[s->n_conns++] = (tracked){c, info ? info->connect_fd : -1, now_s(), false, false, false};
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        tracked *t = find_conn(s, c);
        if (t)
            *t = s->conns[--s->n_conns];
    }
    pthread_mutex_unlock(&s->mu);
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    http_req *r = *con_cls;
    pthread_mutex_lock(&s->mu);
    tracked *t = find_conn(s, c);
    if (t)
        t->since = now_s(), t->in_request = false, t->served = true;
    pthread_mutex_unlock(&s->mu);
    if (!r)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        pthread_mutex_lock(&r->mu);
        r->cancelled = true;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    *con_cls = NULL;
    req_release(r);
}

/* Whether the peer has closed its side (or the socket failed). */
static bool peer_gone(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static enum MHD_Result reply_now(struct MHD_Connection *c, unsigned status, const char *body, bool close)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (close)
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result reply_too_large(struct MHD_Connection *c, const http_server *s)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "{\"error\":{\"message\":\"The request body exceeds %zu bytes.\",\"type\":\"invalid_request_error\","
             "\"param\":null,\"code\":\"request_too_large\"}}",
             s->max_body);
    return reply_now(c, 413, msg, true);
}

static void add_reply_headers(struct MHD_Response *resp, const char *lines)
{
    for (const char *p = lines; p && *p;) {
        const char *nl = strchr(p, '\n'), *colon = strchr(p, ':');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (colon && colon < p + len) {
            char name[128], value[1024];
            snprintf(name, sizeof name, "%.*s", (int)(colon - p), p);
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            snprintf(value, sizeof value, "%.*s", (int)(p + len - v), v);
            MHD_add_response_header(resp, name, value);
        }
        p += len + (nl ? 1 : 0);
    }
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_req *r = cls;
    pthread_mutex_lock(&r->mu);
    double waited = 0;
    while (r->out_off == r->out_len && !r->done && !r->cancelled) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        waited += 0.1;
        if (peer_gone(r->fd))
            r->cancelled = true;
        if (waited >= 15.0 && r->out_off == r->out_len && !r->done && !r->cancelled) {
            static const char ping[] = ": ping\n\n"; /* SSE comment: keeps proxies and clients patient */
            pthread_mutex_unlock(&r->mu);
            size_t n = sizeof ping - 1 < max ? sizeof ping - 1 : max;
            memcpy(buf, ping, n);
            return (ssize_t)n;
        }
    }
    if (r->cancelled) {
        pthread_mutex_unlock(&r->mu);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (r->out_off < r->out_len) {
        size_t n = r->out_len - r->out_off < max ? r->out_len - r->out_off : max;
        memcpy(buf, r->out + r->out_off, n);
        r->out_off += n;
        if (r->out_off == r->out_len)
            r->out_off = r->out_len = 0;
        pthread_mutex_unlock(&r->mu);
        return (ssize_t)n;
    }
    pthread_mutex_unlock(&r->mu);
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls) { req_release(cls); }

static http_req *req_new(http_server *s, struct MHD_Connection *c, const char *url, const char *method)
{
    http_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->srv = s;
    r->started = now_s();
    snprintf(r->method, sizeof r->method, "%s", method);
    r->path = strdup(url ? url : "/");
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = info ? info->connect_fd : -1;
    header_acc h = {NULL, 0, 0, true};
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &h);
    r->headers = h.buf;
    r->headers_len = h.len;
    if (!r->path || !h.ok) {
        req_release(r);
        return NULL;
    }
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    http_server *s = cls;
    http_req *r = *con_cls;
    if (!r) {
        pthread_mutex_lock(&s->mu);
        tracked *t = find_conn(s, c);
        if (t)
            t->in_request = true;
        pthread_mutex_unlock(&s->mu);
        r = req_new(s, c, url, method);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->max_body) { /* refused before a byte of it is read */
            r->too_large = true;
            return reply_too_large(c, s);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && r->body_len + *upload_size > s->max_body) {
            r->too_large = true;
            free(r->body);
            r->body = NULL, r->body_len = r->body_cap = 0;
        }
        if (!r->too_large && !append(&r->body, &r->body_len, &r->body_cap, upload, *upload_size))
            return MHD_NO;
        *upload_size = 0;
        return now_s() - r->started > s->body_timeout ? MHD_NO : MHD_YES;
    }
    if (r->too_large)
        return reply_too_large(c, s);
    /* to the Lua thread, then wait for the answer's head */
    atomic_fetch_add(&r->refs, 1);
    pthread_mutex_lock(&s->mu);
    r->id = ++s->next_id;
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&r->mu);
    while (!r->head_ready && !r->cancelled) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (!r->head_ready && peer_gone(r->fd))
            r->cancelled = true;
    }
    if (!r->head_ready) {
        pthread_mutex_unlock(&r->mu);
        return MHD_NO;
    }
    struct MHD_Response *resp;
    if (r->streaming) {
        atomic_fetch_add(&r->refs, 1);
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, r, stream_free);
        if (!resp)
            req_release(r);
    } else {
        resp = MHD_create_response_from_buffer(r->out_len, r->out ? r->out : (void *)"", MHD_RESPMEM_MUST_COPY);
    }
    int status = r->status;
    if (resp)
        add_reply_headers(resp, r->reply_headers);
    pthread_mutex_unlock(&r->mu);
    if (!resp)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ------------------------------------------------------------------ Lua */

typedef struct l_http {
    http_server *s;
} l_http;

typedef struct l_req {
    http_req *r;
} l_req;

static http_server *check_server(lua_State *L)
{
    l_http *h = luaL_checkudata(L, 1, L_HTTP);
    if (!h->s)
        luaL_error(L, "http server is closed");
    return h->s;
}

static http_req *check_req(lua_State *L) { return ((l_req *)luaL_checkudata(L, 1, L_REQUEST))->r; }

static double opt_seconds(lua_State *L, const char *key, double dflt)
{
    return (double)l_optfield_number(L, 1, key, dflt);
}

/* core.http_server{host, port, max_body, max_connections, header_timeout, idle_timeout,
 * body_timeout} -> server | nil, message */
static int l_http_server(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    const char *host = luaL_optstring(L, -1, "127.0.0.1");
    lua_Integer port = l_optfield_integer(L, 1, "port", 8080);
    lua_Integer max_body = l_optfield_integer(L, 1, "max_body", 8 << 20);
    lua_Integer max_conn = l_optfield_integer(L, 1, "max_connections", 64);
    double header_timeout = opt_seconds(L, "header_timeout", 10), idle = opt_seconds(L, "idle_timeout", 60);
    double body_timeout = opt_seconds(L, "body_timeout", 60);
    if (port < 0 || port > 65535)
        return luaL_argerror(L, 1, "port out of range [0, 65535]");
    if (max_body < 1 || max_conn < 1 || max_conn > MAX_TRACKED - 1 || !(header_timeout > 0) || !(idle > 0) ||
        !(body_timeout > 0))
        return luaL_argerror(L, 1, "limits must be positive (max_connections at most 1023)");
    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};
    struct sockaddr *addr;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (!strcmp(host, "localhost"))
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        addr = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        addr = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        lua_pushnil(L);
        lua_pushfstring(L, "--host: '%s' is not an IPv4 or IPv6 address", host);
        return 2;
    }
    l_http *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->s = NULL;
    luaL_setmetatable(L, L_HTTP);
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return luaL_error(L, "http server: out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->max_body = (size_t)max_body;
    s->header_timeout = header_timeout;
    s->body_timeout = body_timeout;
    s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_conn, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)ceil(idle), MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                            MHD_OPTION_NOTIFY_COMPLETED, request_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
                            notify_connection, s, MHD_OPTION_END);
    if (!s->d) {
        int e = errno;
        free(s);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot listen on %s:%d (%s)", host, (int)port, e ? strerror(e) : "libmicrohttpd failed");
        return 2;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (int)port;
    h->s = s;
    return 1;
}

static int l_http_port(lua_State *L)
{
    lua_pushinteger(L, check_server(L)->port);
    return 1;
}

/* New connections that have not begun a request within the header deadline (slow or silent
 * clients) are shut down; their threads then end. A kept-alive connection waits for its next
 * request up to the idle timeout (libmicrohttpd's own). */
static void reap_slow(http_server *s)
{
    double t = now_s();
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_conns; i++) {
        tracked *c = &s->conns[i];
        if (!c->in_request && !c->served && !c->shut && c->fd >= 0 && t - c->since > s->header_timeout) {
            shutdown(c->fd, SHUT_RDWR);
            c->shut = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* srv:poll(seconds) -> {Request...}: the requests that arrived, waiting up to seconds for one */
static int l_http_poll(lua_State *L)
{
    http_server *s = check_server(L);
    double wait = luaL_optnumber(L, 2, 0);
    reap_slow(s);
    pthread_mutex_lock(&s->mu);
    if (!s->head && wait > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double end = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + wait;
        ts.tv_sec = (time_t)end;
        ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
        while (!s->head && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT) {
        }
    }
    http_req *list = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    lua_newtable(L);
    int n = 0;
    while (list) {
        http_req *r = list;
        list = r->next;
        r->next = NULL;
        l_req *u = lua_newuserdatauv(L, sizeof *u, 0);
        u->r = r; /* takes the reference the queue held */
        luaL_setmetatable(L, L_REQUEST);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

/* srv:busy() -> connections with a request not yet answered in full */
static int l_http_busy(lua_State *L)
{
    http_server *s = check_server(L);
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_conns; i++)
        n += s->conns[i].in_request;
    pthread_mutex_unlock(&s->mu);
    lua_pushinteger(L, n);
    return 1;
}

/* srv:quiesce(): stop accepting connections (running ones go on) */
static int l_http_quiesce(lua_State *L)
{
    http_server *s = check_server(L);
    MHD_quiesce_daemon(s->d);
    return 0;
}

static int l_http_close(lua_State *L)
{
    l_http *h = luaL_checkudata(L, 1, L_HTTP);
    if (h->s) {
        MHD_stop_daemon(h->s->d);
        while (h->s->head) { /* requests queued but never taken */
            http_req *r = h->s->head;
            h->s->head = r->next;
            req_release(r);
        }
        pthread_mutex_destroy(&h->s->mu);
        pthread_cond_destroy(&h->s->cv);
        free(h->s);
        h->s = NULL;
    }
    return 0;
}

static int l_req_gc(lua_State *L)
{
    l_req *u = luaL_checkudata(L, 1, L_REQUEST);
    if (u->r) {
        pthread_mutex_lock(&u->r->mu);
        if (!u->r->head_ready || (u->r->streaming && !u->r->done)) { /* dropped unanswered: end it */
            u->r->cancelled = true;
            pthread_cond_broadcast(&u->r->cv);
        }
        pthread_mutex_unlock(&u->r->mu);
        req_release(u->r);
        u->r = NULL;
    }
    return 0;
}

static int l_req_method(lua_State *L)
{
    lua_pushstring(L, check_req(L)->method);
    return 1;
}
static int l_req_path(lua_State *L)
{
    lua_pushstring(L, check_req(L)->path);
    return 1;
}
static int l_req_id(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_req(L)->id);
    return 1;
}
static int l_req_body(lua_State *L)
{
    http_req *r = check_req(L);
    lua_pushlstring(L, r->body ? r->body : "", r->body_len);
    return 1;
}

/* req:header(name) -> value | nil (names case-insensitive) */
static int l_req_header(lua_State *L)
{
    http_req *r = check_req(L);
    const char *want = luaL_checkstring(L, 2);
    for (size_t off = 0; off < r->headers_len;) {
        const char *k = r->headers + off, *v = k + strlen(k) + 1;
        if (!strcasecmp(k, want)) {
            lua_pushstring(L, v);
            return 1;
        }
        off = (size_t)(v - r->headers) + strlen(v) + 1;
    }
    lua_pushnil(L);
    return 1;
}

static int l_req_cancelled(lua_State *L)
{
    http_req *r = check_req(L);
    pthread_mutex_lock(&r->mu);
    if (!r->cancelled && peer_gone(r->fd))
        r->cancelled = true;
    bool c = r->cancelled;
    pthread_mutex_unlock(&r->mu);
    lua_pushboolean(L, c);
    return 1;
}

/* "Name: value\n" lines of a header table, checked for line breaks, pushed as one string */
static void push_header_lines(lua_State *L, int idx)
{
    lua_newtable(L);
    int parts = lua_gettop(L), n = 0;
    if (!lua_isnoneornil(L, idx)) {
        luaL_checktype(L, idx, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
                luaL_error(L, "http: header names and values must be strings");
            const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
            if (strpbrk(k, "\r\n:") || strpbrk(v, "\r\n"))
                luaL_error(L, "http: invalid header '%s'", k);
            lua_pushfstring(L, "%s: %s\n", k, v);
            lua_rawseti(L, parts, ++n);
            lua_pop(L, 1);
        }
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "concat");
    lua_remove(L, -2);
    lua_pushvalue(L, parts);
    lua_call(L, 1, 1);
    lua_remove(L, parts);
}

static int set_head(lua_State *L, bool streaming)
{
    http_req *r = check_req(L);
    lua_Integer status = luaL_checkinteger(L, 2);
    if (status < 100 || status > 599)
        return luaL_argerror(L, 2, "status out of range");
    size_t blen = 0;
    const char *body = streaming ? NULL : luaL_optlstring(L, 4, "", &blen);
    push_header_lines(L, 3);
    char *lines = strdup(lua_tostring(L, -1));
    char *copy = body ? malloc(blen + 1) : NULL;
    if (!lines || (body && !copy)) {
        free(lines);
        free(copy);
        return luaL_error(L, "http: out of memory");
    }
    if (copy)
        memcpy(copy, body, blen), copy[blen] = '\0';
    pthread_mutex_lock(&r->mu);
    bool was = r->head_ready;
    if (!was) {
        r->status = (int)status;
        r->reply_headers = lines;
        r->streaming = streaming;
        if (copy) {
            r->out = copy;
            r->out_len = r->out_cap = blen;
            r->done = true;
        }
        r->head_ready = true;
        pthread_cond_broadcast(&r->cv);
    }
    bool cancelled = r->cancelled;
    pthread_mutex_unlock(&r->mu);
    if (was) {
        free(lines);
        free(copy);
        return luaL_error(L, "http: the request was answered already");
    }
    lua_pushboolean(L, !cancelled);
    return 1;
}

/* req:respond(status, headers, body) -> delivered (false when the client left) */
static int l_req_respond(lua_State *L) { return set_head(L, false); }
/* req:start(status, headers) -> delivered: a streamed answer; then req:send(text), req:finish() */
static int l_req_start(lua_State *L) { return set_head(L, true); }

static int l_req_send(lua_State *L)
{
    http_req *r = check_req(L);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    pthread_mutex_lock(&r->mu);
    bool ok = r->streaming && !r->done && !r->cancelled;
    if (ok && !append(&r->out, &r->out_len, &r->out_cap, text, n))
        ok = false;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    lua_pushboolean(L, ok);
    return 1;
}

static int l_req_finish(lua_State *L)
{
    http_req *r = check_req(L);
    pthread_mutex_lock(&r->mu);
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* core.const_eq(a, b): string equality in time independent of where they differ (API keys) */
static int l_const_eq(lua_State *L)
{
    size_t na, nb;
    const char *a = luaL_checklstring(L, 1, &na), *b = luaL_checklstring(L, 2, &nb);
    unsigned char d = (unsigned char)(na != nb);
    for (size_t i = 0; i < nb; i++)
        d |= (unsigned char)(a[i % (na ? na : 1)] ^ b[i]);
    lua_pushboolean(L, d == 0 && na == nb);
    return 1;
}

void sl_lua_open_http(lua_State *L)
{
    static const luaL_Reg server_methods[] = {{"port", l_http_port},       {"poll", l_http_poll},
                                              {"quiesce", l_http_quiesce}, {"busy", l_http_busy},
                                              {"close", l_http_close},
                                              {NULL, NULL}};
    static const luaL_Reg server_meta[] = {{"__gc", l_http_close}, {"__close", l_http_close}, {NULL, NULL}};
    l_newclass(L, L_HTTP, server_methods, server_meta);
    static const luaL_Reg req_methods[] = {{"method", l_req_method},   {"path", l_req_path},
                                           {"id", l_req_id},           {"body", l_req_body},
                                           {"header", l_req_header},   {"cancelled", l_req_cancelled},
                                           {"respond", l_req_respond}, {"start", l_req_start},
                                           {"send", l_req_send},       {"finish", l_req_finish},
                                           {NULL, NULL}};
    static const luaL_Reg req_meta[] = {{"__gc", l_req_gc}, {NULL, NULL}};
    l_newclass(L, L_REQUEST, req_methods, req_meta);
}

void sl_lua_register_http(lua_State *L)
{
    static const luaL_Reg fns[] = {{"http_server", l_http_server}, {"const_eq", l_const_eq}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
