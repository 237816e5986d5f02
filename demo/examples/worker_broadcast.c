/*
 * worker_broadcast.c - another thread feeds the server: every 100 ms a
 * worker broadcasts "tick N" to every client, and it welcomes the newest
 * client privately, naming it by id. The loop runs in main; the
 * ws_server_post*() calls are the only ones another thread may make.
 * Usage: worker_broadcast [PORT]   (default 9001). Ctrl-C stops it.
 */
#define _POSIX_C_SOURCE 200809L /* POSIX calls under -std=c11 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "ws/ws.h"

static struct ws_server *srv;
static atomic_bool running = true; /* main clears it to end the worker */
/* The newest client's id (0: none). An id, unlike a struct ws_conn
   pointer, may be kept on another thread: it is never reused. */
static _Atomic uint64_t newest;

static void on_signal(int sig)
{
    (void)sig;
    ws_server_stop(srv); /* async-signal-safe, on any thread */
}

/* On the loop thread, like every callback. */
static void on_open(struct ws_conn *c, void *user_data)
{
    (void)user_data;
    atomic_store(&newest, ws_conn_id(c));
}

/* The worker holds no ws_conn pointers; the posts copy msg. */
static void *worker(void *arg)
{
    const struct timespec period = {.tv_nsec = 100 * 1000 * 1000};
    uint64_t id, welcomed = 0;
    char msg[64];
    int len;

    (void)arg;
    for (unsigned long n = 1; atomic_load(&running); n++) {
        nanosleep(&period, NULL);
        len = snprintf(msg, sizeof(msg), "tick %lu", n);
        /* An error (WS_EFULL: the loop is far behind) only loses a tick. */
        ws_server_post_broadcast(srv, WS_TEXT, msg, (size_t)len);

        id = atomic_load(&newest);
        if (id != 0 && id != welcomed) {
            len = snprintf(msg, sizeof(msg), "welcome, client %llu",
                           (unsigned long long)id);
            /* WS_ECLOSED if that client has already left: nothing lost. */
            ws_server_post_send(srv, id, WS_TEXT, msg, (size_t)len);
            welcomed = id;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct ws_config cfg = {.port = argc > 1 ? argv[1] : "9001"};
    struct ws_callbacks cb = {.on_open = on_open};
    pthread_t thread;
    int rc = ws_server_create(&srv, &cfg, &cb, NULL);

    if (rc == 0 && (rc = ws_server_listen(srv)) == 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        fprintf(stderr, "worker_broadcast: listening on port %d\n",
                ws_server_port(srv));
        if (pthread_create(&thread, NULL, worker, NULL) != 0)
            rc = WS_ESYS;
    }
    if (rc == 0) {
        rc = ws_server_run(srv);
        /* No post may follow ws_server_destroy(): end the worker first. */
        atomic_store(&running, false);
        pthread_join(thread, NULL);
    }
    if (rc < 0)
        fprintf(stderr, "worker_broadcast: %s\n", ws_strerror(rc));
    ws_server_destroy(srv); /* also frees what was posted but not sent */
    return rc < 0;
}
