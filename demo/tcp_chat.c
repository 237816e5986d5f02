/*
 * tcp_chat.c - a multi-client line-based chat over raw TCP, on the
 * library's select() loop; any line-based client works (nc HOST PORT).
 * Every line a client sends goes to all the others as "[name] line", with
 * "* name joined" and "* name left" notices. Commands: /nick NAME, /who,
 * /quit. A client that does not read its output is dropped, so that one
 * slow reader cannot hold up the room or grow memory without bound.
 *   tcp_chat [--host H] [--port P] [--quiet]         (127.0.0.1:7001)
 * SIGINT/SIGTERM stop it: exit 0, every socket closed, everything freed.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/buf.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/neterr.h"
#include "net/sock.h"
#include "ws/ws.h"

#define LINE_MAX_BYTES 4096  /* longer lines are split */
#define OUT_MAX (256 * 1024) /* unsent output before a drop */
#define NAME_MAX_BYTES 24
#define TEXT_MAX (LINE_MAX_BYTES + 128)

struct chat;

/* One client in the room. */
struct member {
    struct chat *chat;
    int fd;            /* owned */
    bool dead;         /* leaving: chat_reap() removes it */
    char why[160];     /* the reason given in the leave notice */
    struct ws_buf in;  /* owned: a line not complete yet */
    struct ws_buf out; /* owned: queued, not yet written */
    char name[WS_NET_ADDRSTRLEN];
    struct member *prev, *next;
};

struct chat {
    struct ws_loop *loop;            /* owned */
    struct ws_net_listener listener; /* owned listening sockets */
    struct member *members;          /* owned list */
    size_t count;
    bool quiet;
};

/* The loop the signal handler stops; set once before handlers exist. */
static struct ws_loop *stop_loop;

static void on_signal(int sig)
{
    (void)sig;
    ws_loop_stop(stop_loop); /* async-signal-safe */
}

/* Mark m as leaving; the first reason given is kept. */
static void member_kill(struct member *m, const char *why)
{
    if (m->dead)
        return;
    m->dead = true;
    snprintf(m->why, sizeof(m->why), "%s", why);
}

/* Write queued output until the socket is full, then watch for
   writability only while something is left. */
static void member_flush(struct member *m)
{
    char why[160];

    while (!m->dead && ws_buf_size(&m->out) > 0) {
        ssize_t n =
            ws_net_write(m->fd, ws_buf_head(&m->out), ws_buf_size(&m->out));
        if (n == -EAGAIN)
            break;
        if (n < 0) {
            ws_net_errfmt(why, sizeof(why), "send", NULL, (int)n);
            member_kill(m, why);
            return;
        }
        ws_buf_consume(&m->out, (size_t)n);
    }
    if (!m->dead)
        ws_loop_set_events(m->chat->loop, m->fd,
                           WS_IO_READ |
                               (ws_buf_size(&m->out) ? WS_IO_WRITE : 0));
}

/* Queue text for m and write what the socket takes. */
static void member_send(struct member *m, const char *text)
{
    if (m->dead)
        return;
    if (ws_buf_append(&m->out, text, strlen(text), OUT_MAX) < 0) {
        member_kill(m, "too slow, output queue full");
        return;
    }
    member_flush(m);
}

/* Send text to every member but skip (which may be NULL). */
static void chat_broadcast(struct chat *ch, const struct member *skip,
                           const char *text)
{
    for (struct member *m = ch->members; m != NULL; m = m->next)
        if (m != skip)
            member_send(m, text);
}

/* Unlink, close and free m. */
static void member_free(struct member *m)
{
    struct chat *ch = m->chat;

    ws_loop_unwatch(ch->loop, m->fd);
    ws_net_close(m->fd);
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        ch->members = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    ch->count--;
    ws_buf_free(&m->in);
    ws_buf_free(&m->out);
    free(m);
}

/* Remove every dead member and tell the others; a notice can kill a slow
   member in turn, so look again until none is left. */
static void chat_reap(struct chat *ch)
{
    char text[TEXT_MAX];
    struct member *m = ch->members;

    while (m != NULL) {
        if (!m->dead) {
            m = m->next;
            continue;
        }
        snprintf(text, sizeof(text), "* %s left (%s), %zu online\n", m->name,
                 m->why, ch->count - 1);
        if (!ch->quiet)
            printf("%s", text);
        member_free(m);
        chat_broadcast(ch, NULL, text);
        m = ch->members;
    }
}

/* True if name is 1..NAME_MAX_BYTES of [A-Za-z0-9_.-] and not taken. */
static bool name_ok(const struct chat *ch, const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > NAME_MAX_BYTES)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
            return false;
    for (const struct member *m = ch->members; m != NULL; m = m->next)
        if (strcmp(m->name, name) == 0)
            return false;
    return true;
}

/* /nick NAME: rename m and tell everyone. */
static void cmd_nick(struct member *m, const char *name)
{
    char text[TEXT_MAX];

    if (!name_ok(m->chat, name)) {
        member_send(m, "* names are 1-24 letters, digits, '_', '.' or '-', "
                       "and not taken\n");
        return;
    }
    snprintf(text, sizeof(text), "* %s is now %s\n", m->name, name);
    snprintf(m->name, sizeof(m->name), "%.*s", NAME_MAX_BYTES, name);
    chat_broadcast(m->chat, NULL, text);
}

/* /who: list the members to m. */
static void cmd_who(struct member *m)
{
    char text[TEXT_MAX];

    snprintf(text, sizeof(text), "* %zu online:\n", m->chat->count);
    member_send(m, text);
    for (const struct member *o = m->chat->members; o != NULL; o = o->next) {
        snprintf(text, sizeof(text), "*   %s%s\n", o->name,
                 o == m ? " (you)" : "");
        member_send(m, text);
    }
}

/* Handle one line from m (no newline, CR stripped): a command, or text
   for everyone else. */
static void member_line(struct member *m, char *line)
{
    char text[TEXT_MAX];

    if (strncmp(line, "/nick ", 6) == 0) {
        cmd_nick(m, line + 6);
    } else if (strcmp(line, "/who") == 0) {
        cmd_who(m);
    } else if (strcmp(line, "/quit") == 0) {
        member_kill(m, "quit");
    } else {
        snprintf(text, sizeof(text), "[%s] %s\n", m->name, line);
        chat_broadcast(m->chat, m, text);
    }
}

/* Take every complete line out of m's input; at end of stream (eof) the
   rest counts as a line too, and so does a line grown past the limit. */
static void member_lines(struct member *m, bool eof)
{
    char line[LINE_MAX_BYTES + 1];

    while (!m->dead && ws_buf_size(&m->in) > 0) {
        const char *p = (const char *)ws_buf_head(&m->in);
        size_t size = ws_buf_size(&m->in);
        const char *nl = memchr(p, '\n', size);
        size_t len = nl ? (size_t)(nl - p) : size;

        if (len > LINE_MAX_BYTES)
            len = LINE_MAX_BYTES;
        else if (nl == NULL && !eof && size < LINE_MAX_BYTES)
            return; /* wait for the rest of the line */
        memcpy(line, p, len);
        line[len] = '\0';
        ws_buf_consume(&m->in, len + (nl != NULL && len == (size_t)(nl - p)));
        if (len > 0 && line[len - 1] == '\r')
            line[len - 1] = '\0';
        member_line(m, line);
    }
}

/* Read once into m's input and handle the complete lines. */
static void member_read(struct member *m)
{
    char why[160];
    ssize_t n;

    if (ws_buf_reserve(&m->in, LINE_MAX_BYTES, 2 * LINE_MAX_BYTES) < 0) {
        member_kill(m, "out of memory");
        return;
    }
    n = ws_net_read(m->fd, ws_buf_tail(&m->in), LINE_MAX_BYTES);
    if (n == -EAGAIN)
        return;
    if (n < 0) {
        ws_net_errfmt(why, sizeof(why), "recv", NULL, (int)n);
        member_kill(m, why);
        return;
    }
    ws_buf_commit(&m->in, (size_t)n);
    member_lines(m, n == 0);
    if (n == 0)
        member_kill(m, "disconnected");
}

/* A member's socket is ready. */
static void on_member(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct member *m = arg;
    struct chat *ch = m->chat;

    (void)loop;
    (void)fd;
    if (events & WS_IO_WRITE)
        member_flush(m);
    if ((events & WS_IO_READ) && !m->dead)
        member_read(m);
    chat_reap(ch);
}

/* Welcome a new member and announce it to the others. */
static void member_join(struct chat *ch, struct member *m)
{
    char text[TEXT_MAX];

    snprintf(text, sizeof(text),
             "* welcome %s, %zu online; /nick NAME, /who, /quit\n", m->name,
             ch->count);
    member_send(m, text);
    snprintf(text, sizeof(text), "* %s joined, %zu online\n", m->name,
             ch->count);
    if (!ch->quiet)
        printf("%s", text);
    chat_broadcast(ch, m, text);
}

/* Take ownership of a freshly accepted fd. */
static void member_add(struct chat *ch, int fd, const struct ws_net_addr *pa)
{
    struct member *m = calloc(1, sizeof(*m));
    int rc;

    if (m == NULL) {
        ws_net_close(fd);
        return;
    }
    m->chat = ch;
    m->fd = fd;
    ws_net_addr_format((const struct sockaddr *)&pa->ss, pa->len, m->name,
                       sizeof(m->name));
    rc = ws_loop_watch(ch->loop, fd, WS_IO_READ, on_member, m);
    if (rc < 0) {
        /* WS_EFDSET: select() cannot watch this fd; refuse the client. */
        fprintf(stderr, "tcp_chat: refusing %s: %s\n", m->name,
                ws_strerror(rc));
        ws_net_close(fd);
        free(m);
        return;
    }
    m->next = ch->members;
    if (ch->members != NULL)
        ch->members->prev = m;
    ch->members = m;
    ch->count++;
    member_join(ch, m);
}

/* The listener accepted a connection. */
static void on_accept(void *arg, int fd, const struct ws_net_addr *peer)
{
    struct chat *ch = arg;

    member_add(ch, fd, peer);
    chat_reap(ch);
}

/* accept() failed; out of descriptors, the listener already pauses. */
static void on_accept_error(void *arg, int err, int pause_ms)
{
    char line[160];

    (void)arg;
    ws_net_errfmt(line, sizeof(line), "accept", NULL, -err);
    if (pause_ms > 0)
        fprintf(stderr, "tcp_chat: %s; pausing %d ms\n", line, pause_ms);
    else
        fprintf(stderr, "tcp_chat: %s\n", line);
}

/* Close every member and listener and free the loop. */
static void chat_free(struct chat *ch)
{
    while (ch->members != NULL)
        member_free(ch->members);
    if (ch->loop != NULL) {
        ws_net_listener_close(&ch->listener);
        ws_loop_destroy(ch->loop);
    }
}

/* Create the loop, listen on host:port and watch the listeners. Returns
   0, or -1 after printing the one-line reason. */
static int chat_open(struct chat *ch, const char *host, const char *port)
{
    struct ws_net_listener_config lc = {.host = host,
                                        .port = port,
                                        .backlog = SOMAXCONN,
                                        .on_accept = on_accept,
                                        .on_error = on_accept_error,
                                        .arg = ch};
    char err[256], addr[WS_NET_ADDRSTRLEN];
    int rc = ws_loop_create(&ch->loop);

    if (rc < 0) {
        fprintf(stderr, "tcp_chat: loop: %s\n", ws_strerror(rc));
        return -1;
    }
    if (ws_net_listener_open(&ch->listener, ch->loop, &lc, err, sizeof(err)) <
        0) {
        fprintf(stderr, "tcp_chat: %s\n", err);
        return -1;
    }
    for (int i = 0; i < ch->listener.n; i++) {
        ws_net_listener_addr(&ch->listener, i, addr, sizeof(addr));
        printf("tcp_chat: listening on %s\n", addr);
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: tcp_chat [--host HOST] [--port PORT] [--quiet]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct chat ch = {0};
    const char *host = "127.0.0.1", *port = "7001";
    struct sigaction sa;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = argv[++i];
        else if (strcmp(argv[i], "--quiet") == 0)
            ch.quiet = true;
        else
            usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (chat_open(&ch, host, port) < 0) {
        chat_free(&ch);
        return 1;
    }
    stop_loop = ch.loop;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = ws_loop_run(ch.loop);
    if (rc < 0)
        fprintf(stderr, "tcp_chat: loop: %s\n", ws_strerror(rc));
    chat_free(&ch);
    printf("tcp_chat: stopped\n");
    return rc < 0 ? 1 : 0;
}
