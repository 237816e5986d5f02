/*
 * upload_to_file.c - store uploads of any size without holding them in
 * memory. In streaming mode each piece of a message goes to on_fragment as
 * it arrives and is appended to DIR/upload-<connection id>.bin; each
 * message replaces the connection's file, and the client is told its size.
 * Usage: upload_to_file DIR [PORT]   (default 9001). Ctrl-C stops it.
 */
#include <signal.h>
#include <stdio.h>

#include "ws/ws.h"

#define MAX_UPLOAD (1ULL << 30) /* our own limit on a streamed message */

static struct ws_server *srv;
static const char *dir;

static void on_signal(int sig)
{
    (void)sig;
    ws_server_stop(srv);
}

static void on_open(struct ws_conn *c, void *user_data)
{
    (void)user_data;
    ws_conn_set_streaming(c, 1); /* on_fragment instead of on_message */
}

/* A piece of a message; first, last, or both, and possibly empty. */
static void on_fragment(struct ws_conn *c, enum ws_msg_type type,
                        const void *data, size_t len, int first, int last,
                        void *user_data)
{
    FILE *f = ws_conn_get_user_data(c); /* open while a message arrives */
    unsigned long long id = ws_conn_id(c);
    char text[4096];

    (void)type, (void)user_data;
    if (first) {
        snprintf(text, sizeof(text), "%s/upload-%llu.bin", dir, id);
        ws_conn_set_user_data(c, f = fopen(text, "wb"));
    }
    /* max_message_bytes does not limit streamed messages: we do. */
    if (f != NULL && (unsigned long long)ftell(f) + len > MAX_UPLOAD) {
        ws_conn_close(c, WS_CLOSE_TOO_BIG, NULL); /* RFC 6455 §7.4.1 */
        return;
    }
    if (f == NULL || fwrite(data, 1, len, f) != len) {
        ws_conn_close(c, WS_CLOSE_INTERNAL_ERROR, "cannot store it");
        return; /* later pieces fail the same way; on_close cleans up */
    }
    if (last) {
        long size = ftell(f);

        ws_conn_set_user_data(c, NULL);
        if (fclose(f) != 0)
            snprintf(text, sizeof(text), "cannot store upload-%llu.bin", id);
        else
            snprintf(text, sizeof(text), "stored %ld bytes in upload-%llu.bin",
                     size, id);
        ws_conn_send_text(c, text);
    }
}

/* A message cut off by the close leaves a partial file behind. */
static void on_close(struct ws_conn *c, int code, const char *reason,
                     size_t reason_len, void *user_data)
{
    FILE *f = ws_conn_get_user_data(c);

    (void)code, (void)reason, (void)reason_len, (void)user_data;
    if (f != NULL)
        fclose(f);
}

int main(int argc, char **argv)
{
    /* Whole messages would be capped at 1 MiB; streamed ones are not. */
    struct ws_config cfg = {.port = argc > 2 ? argv[2] : "9001",
                            .max_message_bytes = 1 << 20};
    struct ws_callbacks cb = {
        .on_open = on_open, .on_fragment = on_fragment, .on_close = on_close};
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: upload_to_file DIR [PORT]\n");
        return 2;
    }
    dir = argv[1];
    rc = ws_server_create(&srv, &cfg, &cb, NULL);
    if (rc == 0 && (rc = ws_server_listen(srv)) == 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        fprintf(stderr, "upload_to_file: listening on port %d\n",
                ws_server_port(srv));
        rc = ws_server_run(srv);
    }
    if (rc < 0)
        fprintf(stderr, "upload_to_file: %s\n", ws_strerror(rc));
    ws_server_destroy(srv);
    return rc < 0;
}
