/*
 * pubsub.c - publish/subscribe over WebSocket with the library's topics.
 * A client sends "sub NAME" or "unsub NAME" to join or leave a topic,
 * and "pub NAME TEXT" to send "NAME TEXT" to every other subscriber.
 * Usage: pubsub [PORT]   (default 9001; 0 lets the OS pick).
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

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *user_data)
{
    const char *text = data; /* text is NUL-terminated at text[len] */
    char topic[64];
    int n = 0;

    (void)user_data;
    if (type != WS_TEXT || len < 4)
        return;
    if (strncmp(text, "sub ", 4) == 0 && sscanf(text + 4, "%63s", topic) == 1)
        ws_conn_subscribe(c, topic);
    else if (strncmp(text, "unsub ", 6) == 0 &&
             sscanf(text + 6, "%63s", topic) == 1)
        ws_conn_unsubscribe(c, topic);
    else if (strncmp(text, "pub ", 4) == 0 &&
             sscanf(text + 4, "%63s %n", topic, &n) == 1 && n > 0)
        /* "NAME TEXT", framed once for every subscriber but the sender */
        ws_conn_publish(c, topic, WS_TEXT, text + 4, len - 4);
}

int main(int argc, char **argv)
{
    struct ws_config cfg = {.port = argc > 1 ? argv[1] : "9001"};
    struct ws_callbacks cb = {.on_message = on_message};
    int rc = ws_server_create(&srv, &cfg, &cb, NULL);

    if (rc == 0 && (rc = ws_server_listen(srv)) == 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        fprintf(stderr, "pubsub: listening on port %d\n", ws_server_port(srv));
        rc = ws_server_run(srv);
    }
    if (rc < 0)
        fprintf(stderr, "pubsub: %s\n", ws_strerror(rc));
    ws_server_destroy(srv);
    return rc < 0;
}
