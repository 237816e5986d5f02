/*
 * chat.c - the chat demo's server: serves the page in www/ over plain HTTP
 * and the chat over WebSocket at /chat, on one port; parses each client
 * message with jansson and hands it to chat_room.c. It is the example of
 * embedding the library, so it uses nothing of it but ws/ws.h (and
 * ws/redis.h, which chat_redis.c uses to share rooms between instances).
 *   ws_chat [--host H] [--port P] [--www DIR]   (default 127.0.0.1:8080, www)
 *           [--redis HOST:PORT] [--workers N]    (see --help)
 *
 * The protocol: one JSON object per WebSocket text message, "type" first.
 * Client to server:
 *   {"type":"join","nick":"ada","room":"lobby"}  first; "room" optional
 *   {"type":"say","text":"hello"}                 a message to the room
 *   {"type":"switch","room":"rust"}               move to another room
 * Server to client:
 *   {"type":"welcome","room","nick","ts","history":[message...],
 *    "online":[nick...],"online_count",             the first 200 nicks,
 *    "limits":{"nick_max","text_max","history",    and how many are on
 *    "rate","burst"}}                              answer to join or switch
 *   {"type":"message","room","nick","ts","text"}  everyone in the room,
 *                                                  the sender included
 *   {"type":"join","room","nick","ts"}            someone came in
 *   {"type":"leave","room","nick","ts"}           someone left
 *   {"type":"error","code","message"}             code is one of bad_json,
 *      bad_message, unknown_type, not_joined, already_joined, nick_invalid,
 *      nick_taken, room_invalid, room_limit, empty, too_long, rate_limited,
 *      server_error; the connection stays open, except after rate_limited,
 *      which is followed by a close with 1008.
 * ts is milliseconds since the Unix epoch, from the server's clock. Nicks
 * have 1-24 characters, no control or invisible ones, and are unique in
 * the server (with --redis, on every instance) ignoring ASCII case;
 * rooms are 1-32 of [a-z0-9_-] (case folded); texts have 1-1000 characters;
 * each client may send 5 messages a second, in bursts of 10.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "demo/chat.h"
#include "demo/workers.h"
#include "ws/redis.h"

/* The server, for the signal handler only. */
static struct ws_server *server;

/* The first signal begins a graceful shutdown (every client gets 1001
   and its leave is announced), a second one stops at once
   (ws_server_shutdown() counts them); async-signal-safe. */
static void on_signal(int sig)
{
    (void)sig;
    ws_server_shutdown(server);
}

/* Refuse a cross-site page: a browser's Origin must name this host
   (RFC 6455 §10.2). Clients that are not browsers send no Origin. */
static int on_upgrade(struct ws_conn *c, const struct ws_request *req,
                      struct ws_response *res, void *ud)
{
    const char *origin = ws_request_header(req, "Origin");
    const char *host = ws_request_header(req, "Host");
    const char *rest;

    (void)c;
    (void)res;
    (void)ud;
    if (origin == NULL)
        return 0;
    rest = strstr(origin, "://");
    if (rest == NULL || host == NULL || strcasecmp(rest + 3, host) != 0)
        return 403;
    return 0;
}

/* A new connection gets its client state, not joined yet. */
static void on_open(struct ws_conn *c, void *ud)
{
    struct chat_client *client = malloc(sizeof(*client));

    (void)ud;
    if (client == NULL) {
        ws_conn_close(c, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    chat_client_init(client, c);
    ws_conn_set_user_data(c, client);
}

/* The room named by msg's "room", lower-cased into out; the default when
   it is missing, null or "". Sends the error and returns false if bad. */
static bool pick_room(struct chat_client *c, const json_t *msg, char *out)
{
    const json_t *room = json_object_get(msg, "room");
    const char *name = json_string_value(room);

    if (room == NULL || json_is_null(room) || (name && name[0] == '\0')) {
        strcpy(out, CHAT_DEFAULT_ROOM);
        return true;
    }
    if (name == NULL || !chat_room_name(name, out)) {
        chat_send_error(c, "room_invalid",
                        "a room name has 1-32 letters, digits, - or _");
        return false;
    }
    return true;
}

/* {"type":"join"}: check the nick and the room, then enter. */
static void handle_join(struct chat *chat, struct chat_client *c,
                        const json_t *msg)
{
    const char *nick = json_string_value(json_object_get(msg, "nick"));
    char name[CHAT_ROOM_MAX + 1];
    struct chat_room *room;
    const char *why;

    if (c->room || c->pending) {
        chat_send_error(c, "already_joined", "you have already joined");
        return;
    }
    why = nick ? chat_nick_check(nick) : "\"nick\" must be a string";
    if (why) {
        chat_send_error(c, "nick_invalid", why);
        return;
    }
    if (!pick_room(c, msg, name))
        return;
    if (chat_nick_taken(chat, nick)) {
        chat_send_error(c, "nick_taken",
                        "that nick is already taken; choose another one");
        return;
    }
    room = chat_room_open(chat, c, name);
    if (room == NULL)
        return;
    snprintf(c->nick, sizeof(c->nick), "%s", nick);
    printf("join   %s #%s %s\n", c->nick, room->name, ws_conn_peer(c->conn));
    /* With Redis, the nick must be free on every instance too. */
    if (!chat_redis_enter(chat, c, room->name, CHAT_ENTER_JOIN))
        chat_room_enter(room, c, NULL);
}

/* Take c out of its room here and in Redis; its nick too if release. */
static void leave_room(struct chat *chat, struct chat_client *c, bool release)
{
    struct chat_room *room = c->room;

    if (room == NULL)
        return;
    chat_room_leave(c);
    chat_redis_left(chat, c, room, release);
}

/* {"type":"switch"}: leave the room for another one. */
static void handle_switch(struct chat *chat, struct chat_client *c,
                          const json_t *msg)
{
    char name[CHAT_ROOM_MAX + 1];
    struct chat_room *room;

    if (c->room == NULL) {
        chat_send_error(c, "not_joined", "join before switching rooms");
        return;
    }
    if (!pick_room(c, msg, name))
        return;
    if (strcmp(name, c->room->name) == 0) {
        struct chat_view v; /* already there: just confirm */

        if (!chat_redis_enter(chat, c, name, CHAT_ENTER_AGAIN)) {
            chat_view_local(c->room, &v);
            chat_send_welcome(c, &v);
        }
        return;
    }
    /* A busy room is never evicted, so c's own room survives this. */
    room = chat_room_open(chat, c, name);
    if (room == NULL)
        return;
    printf("switch %s #%s -> #%s\n", c->nick, c->room->name, room->name);
    leave_room(chat, c, false);
    if (!chat_redis_enter(chat, c, room->name, CHAT_ENTER_SWITCH))
        chat_room_enter(room, c, NULL);
}

/* True when text holds nothing but white space. */
static bool is_blank(const char *text)
{
    return text[strspn(text, " \t\r\n")] == '\0';
}

/* {"type":"say"}: check the text, then send it to the room. */
static void handle_say(struct chat *chat, struct chat_client *c,
                       const json_t *msg)
{
    const char *text = json_string_value(json_object_get(msg, "text"));
    json_t *said;

    if (c->room == NULL) {
        chat_send_error(c, "not_joined", "join a room before you speak");
        return;
    }
    if (text == NULL) {
        chat_send_error(c, "bad_message", "\"text\" must be a string");
        return;
    }
    if (is_blank(text)) {
        chat_send_error(c, "empty", "a message cannot be empty");
        return;
    }
    if (chat_utf8_count(text) > CHAT_TEXT_MAX) {
        chat_send_error(c, "too_long",
                        "a message has at most 1000 "
                        "characters");
        return;
    }
    said = chat_room_say(c, text);
    if (said == NULL) {
        chat_send_error(c, "server_error", "the server is out of memory");
        return;
    }
    chat_redis_said(chat, c->room, said);
    json_decref(said);
}

static const struct {
    const char *type;
    void (*handle)(struct chat *, struct chat_client *, const json_t *);
} handlers[] = {
    {"join", handle_join},
    {"say", handle_say},
    {"switch", handle_switch},
};

/* Hand a parsed message to the handler of its "type". */
static void dispatch(struct chat *chat, struct chat_client *c,
                     const json_t *msg)
{
    const char *type = json_string_value(json_object_get(msg, "type"));

    if (type == NULL) {
        chat_send_error(c, "bad_message", "\"type\" must be a string");
        return;
    }
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (strcmp(type, handlers[i].type) == 0) {
            handlers[i].handle(chat, c, msg);
            return;
        }
    chat_send_error(c, "unknown_type",
                    "unknown message type; use join, say or switch");
}

/* A flooding client is told why, then closed with 1008 (RFC 6455 §7.4.1:
   policy violation). */
static void flood(struct chat_client *c)
{
    chat_send_error(c, "rate_limited",
                    "too many messages: at most 5 a second (bursts of 10)");
    ws_conn_close(c->conn, WS_CLOSE_POLICY, "rate limit exceeded");
    c->closing = true;
    printf("flood  %s %s\n", c->nick[0] ? c->nick : "-", ws_conn_peer(c->conn));
}

/* One client message: rate limit, parse, dispatch. Never trusts it. */
static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *ud)
{
    struct chat_client *client = ws_conn_get_user_data(c);
    json_error_t err;
    json_t *msg;

    if (client == NULL || client->closing)
        return;
    if (!chat_rate_take(client)) {
        flood(client);
        return;
    }
    if (type != WS_TEXT || len > CHAT_IN_MAX) {
        chat_send_error(client, type != WS_TEXT ? "bad_json" : "too_long",
                        type != WS_TEXT ? "messages are JSON text"
                                        : "a message has at most 16384 bytes");
        return;
    }
    msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    if (msg == NULL || !json_is_object(msg))
        chat_send_error(client, "bad_json",
                        "a message must be one JSON object");
    else
        dispatch(ud, client, msg);
    json_decref(msg);
}

/* The connection is gone: leave the room and free the client. */
static void on_close(struct ws_conn *c, int code, const char *reason,
                     size_t len, void *ud)
{
    struct chat_client *client = ws_conn_get_user_data(c);

    (void)reason;
    (void)len;
    if (client == NULL)
        return;
    if (client->room)
        printf("leave  %s #%s (%d)\n", client->nick, client->room->name, code);
    chat_redis_forget(ud, client);
    leave_room(ud, client, true);
    ws_conn_set_user_data(c, NULL);
    free(client);
}

/* Log what the library reports; nothing here is fatal. */
static void on_error(struct ws_conn *c, int err, const char *detail, void *ud)
{
    (void)ud;
    fprintf(stderr, "ws_chat: %s%s%s (%s)\n", c ? ws_conn_peer(c) : "",
            c ? ": " : "", detail, ws_errname(err));
}

/* Plain HTTP: the page's files from www/, with headers that keep user
   text from ever running as code even if the page had a bug. */
static void on_http(struct ws_conn *c, const struct ws_request *req,
                    struct ws_response *res, void *ud)
{
    static const char endpoint[] = "this is the chat's WebSocket endpoint\n";
    struct chat *chat = ud;
    int rc;

    (void)c;
    if (strcmp(ws_request_path(req), "/chat") == 0) {
        ws_response_status(res, 426); /* RFC 7231 §6.5.15 */
        ws_response_header(res, "Upgrade", "websocket");
        ws_response_body(res, endpoint, strlen(endpoint));
        return;
    }
    rc = ws_response_file(res, req, chat->www);
    if (rc < 0)
        fprintf(stderr, "ws_chat: %s: %s\n", ws_request_path(req),
                ws_strerror(rc));
    ws_response_header(res, "Cache-Control", "no-cache");
    ws_response_header(res, "Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data:; "
                       "connect-src 'self' ws: wss:; frame-ancestors 'none'");
    ws_response_header(res, "Referrer-Policy", "no-referrer");
}

/* Options from the command line. */
struct options {
    const char *host;
    const char *port; /* NULL: 8080, or 8443 with TLS */
    const char *www;
    struct ws_tls_config tls;
    const char *redis; /* "HOST:PORT" of the broker, or NULL */
    int workers;       /* processes on the port (with reuse_port) */
    int presence_ttl;  /* seconds, with redis */
    bool reuse_port;   /* share the port with other instances */
};

/* Print how to use the program and exit with status. */
static void usage(int status)
{
    fprintf(status ? stderr : stdout,
            "usage: ws_chat [--host HOST] [--port PORT] [--www DIR]\n"
            "               [--tls-cert FILE --tls-key FILE]\n"
            "               [--redis HOST:PORT [--presence-ttl S]]\n"
            "               [--workers N] [--reuse-port]\n"
            "  serves DIR (default www) at http://HOST:PORT/ and the chat\n"
            "  at ws://HOST:PORT/chat (default 127.0.0.1:8080); with a\n"
            "  certificate, https:// and wss:// (default port 8443).\n"
            "  --redis shares the rooms (messages, presence, history,\n"
            "  nicks) with other instances through Redis; the users of an\n"
            "  instance that died leave the others' lists within\n"
            "  --presence-ttl S seconds and a third (default 10).\n"
            "  --workers N (N > 1 needs --redis) runs N processes on the\n"
            "  port; --reuse-port lets other instances listen on it too\n");
    exit(status);
}

/* Fill o from argv; exit on a bad flag or a missing document root. */
static void parse_options(int argc, char **argv, struct options *o)
{
    struct stat st;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            usage(0);
        else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            o->host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            o->port = argv[++i];
        else if (strcmp(argv[i], "--www") == 0 && i + 1 < argc)
            o->www = argv[++i];
        else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc)
            o->tls.cert_file = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc)
            o->tls.key_file = argv[++i];
        else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc)
            o->redis = argv[++i];
        else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            o->workers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--presence-ttl") == 0 && i + 1 < argc)
            o->presence_ttl = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reuse-port") == 0)
            o->reuse_port = true;
        else
            usage(2);
    }
    /* Workers without a broker would each hold a part of every room. */
    if (o->workers < 1 || (o->workers > 1 && o->redis == NULL))
        usage(2);
    if (o->presence_ttl < 1 || o->presence_ttl > 3600)
        usage(2);
    if ((o->tls.cert_file == NULL) != (o->tls.key_file == NULL))
        usage(2);
    if (o->port == NULL)
        o->port = o->tls.cert_file ? "8443" : "8080";
    if (stat(o->www, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "ws_chat: %s is not a directory (see --www)\n", o->www);
        exit(2);
    }
}

/* Create and bind the server; NULL after printing why not. */
static struct ws_server *start(const struct options *o, struct chat *chat)
{
    static const char *const paths[] = {"/chat", NULL};
    struct ws_config cfg = {.host = o->host, .port = o->port, .paths = paths};
    struct ws_callbacks cb = {.on_upgrade = on_upgrade,
                              .on_open = on_open,
                              .on_message = on_message,
                              .on_close = on_close,
                              .on_error = on_error,
                              .on_http = on_http};
    struct ws_server *s;
    int rc;

    /* Outgoing welcomes carry the history: up to 50 texts of 1000
       characters, each as long as 6 bytes escaped. */
    cfg.max_message_bytes = 512 * 1024;
    /* Chat text compresses well; browsers always offer it (RFC 7692). */
    cfg.permessage_deflate = 1;
    cfg.max_output_bytes = 4 * 1024 * 1024; /* also the largest file */
    /* A peer that vanished without a FIN (a laptop lid closed) would hold
       its nick forever: ping quiet peers, drop those silent for a minute. */
    cfg.ping_interval_ms = 25000;
    cfg.idle_timeout_ms = 60000;
    if (o->tls.cert_file)
        cfg.tls = &o->tls;
    cfg.reuse_port = o->workers > 1 || o->reuse_port;
    rc = ws_server_create(&s, &cfg, &cb, chat);
    if (rc < 0) {
        fprintf(stderr, "ws_chat: %s\n", ws_server_last_error(NULL));
        return NULL;
    }
    if (ws_server_listen(s) < 0) {
        fprintf(stderr, "ws_chat: %s\n", ws_server_last_error(s));
        ws_server_destroy(s);
        return NULL;
    }
    return s;
}

/* Tell the user where to point a browser. */
static void print_url(const char *host, int port, bool tls)
{
    const char *open = strchr(host, ':') ? "[" : "";
    const char *close = open[0] ? "]" : "";

    /* A wildcard address is reachable on the loopback address. */
    if (strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    printf("open http%s://%s%s%s:%d/ in a browser\n", tls ? "s" : "", open,
           host, close, port);
}

/* Log the broker's ups and downs; nothing there stops the chat. */
static void on_redis(struct ws_redis *r, enum ws_redis_event ev,
                     const char *detail, void *arg)
{
    (void)r;
    (void)ev;
    (void)arg;
    printf("%s\n", detail);
}

/* Attach the Redis bridge to "HOST:PORT"; NULL after saying why not. */
static struct ws_redis *attach_redis(struct ws_server *s, const char *at)
{
    char host[256];
    struct ws_redis_config rc = {.host = host, .on_event = on_redis};
    struct ws_redis *r = NULL;

    if (sscanf(at, "%255[^:]:%d", host, &rc.port) != 2) {
        fprintf(stderr, "ws_chat: --redis wants HOST:PORT, not %s\n", at);
        return NULL;
    }
    if (ws_redis_attach(&r, s, &rc) < 0)
        fprintf(stderr, "ws_chat: cannot attach to Redis\n");
    return r;
}

/* One chat server until SIGINT or SIGTERM; the exit status. */
static int serve(void *arg)
{
    const struct options *o = arg;
    struct chat chat = {0};
    struct ws_redis *redis = NULL;
    int rc;

    chat.www = o->www;
    server = start(o, &chat);
    if (server == NULL)
        return 1;
    chat.srv = server;
    chat.presence_ttl_ms = o->presence_ttl * 1000;
    if (o->redis && (redis = attach_redis(server, o->redis)) == NULL) {
        ws_server_destroy(server);
        return 1;
    }
    chat.redis = redis;
    if (redis && chat_redis_start(&chat) < 0) {
        fprintf(stderr, "ws_chat: out of memory\n");
        ws_redis_detach(redis);
        ws_server_destroy(server);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("ws_chat listening on %s port %d\n", o->host,
           ws_server_port(server));
    print_url(o->host, ws_server_port(server), o->tls.cert_file != NULL);
    rc = ws_server_run(server);
    /* A late signal (a second one, passed on by the --workers supervisor)
       must not reach the server while or after it is freed. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    /* The clients that leave from here on are left to the presence TTL
       on the other instances. */
    chat_redis_stop(&chat);
    ws_redis_detach(redis);
    /* Destroy runs on_close for every client, which frees them. */
    ws_server_destroy(server);
    chat_rooms_free(&chat);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct options o = {.host = "127.0.0.1",
                        .www = "www",
                        .workers = 1,
                        .presence_ttl = CHAT_PRESENCE_TTL};

    parse_options(argc, argv, &o);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.workers > 1)
        return ws_workers_run(o.workers, serve, &o, "ws_chat");
    return serve(&o);
}
