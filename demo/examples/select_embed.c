/*
 * select_embed.c - the application owns the select() loop and the server
 * is one more thing it watches, next to its own: text typed on stdin goes
 * to every client, and a timer of its own prints "timer N" every 500 ms.
 * Clients get their messages echoed. Usage: select_embed [PORT]   (default
 * 9001). End of input, Ctrl-C or SIGTERM stops it.
 */
#define _POSIX_C_SOURCE 200809L /* POSIX calls under -std=c11 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "ws/ws.h"

#define PERIOD_MS 500

static volatile sig_atomic_t stop;

/* A signal also interrupts select() (EINTR), so the loop sees it at once
   unless it lands just before select(); then the next timeout catches it
   (pselect() closes that gap, at the cost of signal masks). */
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *user_data)
{
    (void)user_data;
    ws_conn_send(c, type, data, len);
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Stdin is readable: broadcast what came (as text, so it must be UTF-8). */
static void read_stdin(struct ws_server *srv)
{
    char buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

    if (n <= 0 && !(n < 0 && errno == EINTR))
        stop = 1; /* end of input, or an error */
    else if (n > 0 && ws_server_broadcast(srv, WS_TEXT, buf, (size_t)n) < 0)
        fprintf(stderr, "select_embed: not sent: not UTF-8\n");
}

int main(int argc, char **argv)
{
    struct ws_config cfg = {.port = argc > 1 ? argv[1] : "9001"};
    struct ws_callbacks cb = {.on_message = on_message};
    struct ws_server *srv;
    long next_tick = now_ms() + PERIOD_MS, ms;
    unsigned long ticks = 0;
    int rc = ws_server_create(&srv, &cfg, &cb, NULL);

    if (rc == 0 && (rc = ws_server_listen(srv)) == 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        fprintf(stderr, "select_embed: listening on port %d\n",
                ws_server_port(srv));
    }
    while (rc >= 0 && !stop) {
        fd_set rd, wr;
        int max_fd = STDIN_FILENO;
        struct timeval tv;

        /* 1. Our descriptors, then the server's (it only adds bits). */
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_SET(STDIN_FILENO, &rd);
        ws_server_fdset(srv, &rd, &wr, &max_fd);
        /* 2. Sleep until our timer or the server's, whichever is first;
           -1 from the server means it has none pending. */
        ws_server_timeout(srv, &ms);
        if (ms < 0 || ms > next_tick - now_ms())
            ms = next_tick - now_ms();
        ms = ms < 0 ? 0 : ms;
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        /* 3. Wait, then let each side handle what is ready. */
        rc = select(max_fd + 1, &rd, &wr, NULL, &tv);
        if (rc < 0) {
            rc = errno == EINTR ? 0 : WS_ESYS; /* the sets are undefined */
            continue;
        }
        if (FD_ISSET(STDIN_FILENO, &rd))
            read_stdin(srv);
        rc = ws_server_process(srv, &rd, &wr);
        if (now_ms() >= next_tick) {
            printf("timer %lu\n", ++ticks);
            fflush(stdout);
            next_tick += PERIOD_MS;
        }
    }
    if (rc < 0)
        fprintf(stderr, "select_embed: %s\n", ws_strerror(rc));
    ws_server_destroy(srv);
    return rc < 0;
}
