/*
 * listener.c - listening sockets on a loop: accept within a budget and
 * back off when out of descriptors. Knows nothing of what the accepted
 * connections carry; never reads or writes them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net/listener.h"
#include "net/error.h"
#include "net/sockopt.h"

#define DEFAULT_BUDGET 64
#define DEFAULT_PAUSE_MS 1000

static void on_readable(struct ws_loop *loop, int fd, int events, void *arg);

/* Watch every listener for reading, or none. */
static void watch_all(struct ws_net_listener *l, int events)
{
    for (int i = 0; i < l->n; i++)
        ws_loop_set_events(l->loop, l->fds[i], events);
}

static void on_resume(struct ws_loop *loop, struct ws_timer *t)
{
    (void)loop;
    watch_all(WS_TIMER_OWNER(t, struct ws_net_listener, resume), WS_IO_READ);
}

/*
 * Out of descriptors: the pending connection stays queued and the listener
 * stays readable, so a level-triggered loop would spin. Stop watching for
 * a while, as tmux and OpenBSD httpd do.
 */
static void pause_accept(struct ws_net_listener *l)
{
    watch_all(l, 0);
    ws_loop_timer_start(l->loop, &l->resume, (uint64_t)l->cfg.pause_ms, 0,
                        on_resume);
}

/* Whether fd is still one of l's listeners. */
static bool listening_on(const struct ws_net_listener *l, int fd)
{
    for (int i = 0; i < l->n; i++)
        if (l->fds[i] == fd)
            return true;
    return false;
}

/* A listener is readable: accept what is pending, up to the budget. */
static void on_readable(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct ws_net_listener *l = arg;

    (void)loop;
    (void)events;
    for (int i = 0; i < l->cfg.budget; i++) {
        struct ws_net_addr peer;
        int cfd = ws_net_accept(fd, &peer);

        if (cfd >= 0) {
            l->cfg.on_accept(l->cfg.arg, cfd, &peer);
            /* The callback may have closed the listeners (through
               ws_net_listener_close()): accept nothing from a closed fd. */
            if (!listening_on(l, fd))
                return;
            continue;
        }
        /* Transient: nothing pending, or a peer that gave up. */
        if (cfd == -EAGAIN || cfd == -EWOULDBLOCK || cfd == -ECONNABORTED ||
            cfd == -EINTR)
            return;
        if (cfd == -EMFILE || cfd == -ENFILE)
            pause_accept(l);
        if (l->cfg.on_error)
            l->cfg.on_error(l->cfg.arg, -cfd,
                            cfd == -EMFILE || cfd == -ENFILE ? l->cfg.pause_ms
                                                             : 0);
        return;
    }
}

/* Listen with SO_REUSEPORT, so that other sockets with it (other
   processes or threads) bind the same port and the kernel spreads the
   connections among them. */
static int listen_shared(const struct ws_net_listener_config *cfg, int *fds,
                         char *err, size_t errlen)
{
    struct ws_net_sockopts opts;
    struct ws_net_bind_req req = {.host = cfg->host,
                                  .port = cfg->port,
                                  .socktype = SOCK_STREAM,
                                  .backlog = cfg->backlog,
                                  .opts = &opts};

    memset(&opts, 0, sizeof(opts));
    opts.reuseaddr = WS_NET_ON;
    opts.reuseport = WS_NET_ON;
    return ws_net_bind(&req, fds, WS_NET_MAX_LISTENERS, err, errlen);
}

int ws_net_listener_open(struct ws_net_listener *l, struct ws_loop *loop,
                         const struct ws_net_listener_config *cfg, char *err,
                         size_t errlen)
{
    int rc;

    memset(l, 0, sizeof(*l));
    l->loop = loop;
    l->cfg = *cfg;
    if (l->cfg.budget <= 0)
        l->cfg.budget = DEFAULT_BUDGET;
    if (l->cfg.pause_ms <= 0)
        l->cfg.pause_ms = DEFAULT_PAUSE_MS;
    rc = cfg->reuse_port
             ? listen_shared(cfg, l->fds, err, errlen)
             : ws_net_tcp_listen(cfg->host, cfg->port, cfg->backlog, l->fds,
                                 WS_NET_MAX_LISTENERS, err, errlen);
    if (rc < 0)
        return rc;
    l->n = rc;
    for (int i = 0; i < l->n; i++) {
        rc = cfg->nodelay ? ws_net_set_nodelay(l->fds[i], 1) : 0;
        if (rc == 0)
            rc = ws_loop_watch(loop, l->fds[i], WS_IO_READ, on_readable, l);
        if (rc < 0) {
            if (err != NULL && errlen > 0) {
                char addr[WS_NET_ADDRSTRLEN];

                ws_net_listener_addr(l, i, addr, sizeof(addr));
                snprintf(err, errlen, "listen %s: %s", addr, ws_strerror(rc));
            }
            ws_net_listener_close(l);
            return rc;
        }
    }
    return 0;
}

void ws_net_listener_close(struct ws_net_listener *l)
{
    for (int i = 0; i < l->n; i++) {
        ws_loop_unwatch(l->loop, l->fds[i]);
        ws_net_close(l->fds[i]);
    }
    l->n = 0;
    if (l->loop != NULL)
        ws_loop_timer_stop(l->loop, &l->resume);
}

void ws_net_listener_addr(const struct ws_net_listener *l, int i, char *out,
                          size_t cap)
{
    struct ws_net_addr a = {.len = sizeof(a.ss)};

    if (getsockname(l->fds[i], (struct sockaddr *)&a.ss, &a.len) < 0) {
        snprintf(out, cap, "?");
        return;
    }
    ws_net_addr_format((const struct sockaddr *)&a.ss, a.len, out, cap);
}
