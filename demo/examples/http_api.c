/*
 * http_api.c - a small HTTP API beside a WebSocket endpoint. POST /api/echo
 * answers with the request body as JSON text; an upgrade to /ws needs a
 * token (?token=... or a cookie from an earlier visit): without one it gets
 * 401, with one a 101 that sets the cookie and speaks the subprotocol the
 * client asked for with ?proto= (if it offered it), then echoes messages.
 * Usage: http_api [PORT]   (default 9001). Ctrl-C stops it.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ws/ws.h"

static struct ws_server *srv;

static void on_signal(int sig)
{
    (void)sig;
    ws_server_stop(srv);
}

/* POST /api/echo: {"bytes":N,"body":"..."} (the body is trusted to be
   plain text here; a real API would escape it). */
static void on_http(struct ws_conn *c, const struct ws_request *req,
                    struct ws_response *res, void *user_data)
{
    size_t len;
    const char *body = ws_request_body(req, &len); /* NUL-terminated */
    char json[256];
    int n;

    (void)c;
    (void)user_data;
    if (strcmp(ws_request_path(req), "/api/echo") != 0 ||
        strcmp(ws_request_method(req), "POST") != 0) {
        ws_response_status(res, 404);
        return;
    }
    n = snprintf(json, sizeof(json), "{\"bytes\":%zu,\"body\":\"%.200s\"}\n",
                 len, body);
    ws_response_header(res, "Content-Type", "application/json");
    ws_response_body(res, json, (size_t)n);
}

/* Accept with a token, refuse with 401 and a challenge without one. */
static int on_upgrade(struct ws_conn *c, const struct ws_request *req,
                      struct ws_response *res, void *user_data)
{
    const char *cookie = ws_request_header(req, "Cookie");
    char token[64], proto[64], set[96];

    (void)c;
    (void)user_data;
    if (ws_request_param(req, "token", token, sizeof(token)) < 0 &&
        (cookie == NULL || strstr(cookie, "token=") == NULL)) {
        ws_response_header(res, "WWW-Authenticate", "Bearer realm=\"ws\"");
        ws_response_body(res, "a token is needed\n", 18);
        return 401;
    }
    if (cookie == NULL) {
        snprintf(set, sizeof(set), "token=%s; HttpOnly", token);
        ws_response_header(res, "Set-Cookie", set); /* goes into the 101 */
    }
    /* WS_EINVAL unless the client offered it: then the server's
       preference (none is configured here) stands. */
    if (ws_request_param(req, "proto", proto, sizeof(proto)) >= 0)
        ws_response_protocol(res, proto);
    return 0;
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *user_data)
{
    (void)user_data;
    ws_conn_send(c, type, data, len);
}

int main(int argc, char **argv)
{
    const char *const paths[] = {"/ws", NULL};
    struct ws_config cfg = {.port = argc > 1 ? argv[1] : "9001",
                            .paths = paths,
                            .max_body_bytes = 64 * 1024};
    struct ws_callbacks cb = {
        .on_upgrade = on_upgrade, .on_message = on_message, .on_http = on_http};
    int rc = ws_server_create(&srv, &cfg, &cb, NULL);

    if (rc == 0 && (rc = ws_server_listen(srv)) == 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        fprintf(stderr, "http_api: listening on port %d\n",
                ws_server_port(srv));
        rc = ws_server_run(srv);
    }
    if (rc < 0)
        fprintf(stderr, "http_api: %s\n", ws_strerror(rc));
    ws_server_destroy(srv);
    return rc < 0;
}
