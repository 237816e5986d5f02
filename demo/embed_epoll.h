/*
 * embed_epoll.h - run a server inside an epoll loop of the program's own,
 * through the per-descriptor embedding (ws_server_socket_callback()):
 * ws_echo --embed epoll. Written only against ws/ws.h.
 */
#ifndef WS_DEMO_EMBED_EPOLL_H
#define WS_DEMO_EMBED_EPOLL_H

#include <signal.h>

#include "ws/ws.h"

struct ws_embed_epoll;

/* Make an epoll instance and hand s's descriptors to it; call before
   ws_server_listen(). Returns 0 and sets *out, or a WS_E* code. */
int ws_embed_epoll_attach(struct ws_server *s, struct ws_embed_epoll **out);

/* Wait and dispatch until the graceful shutdown is over
   (ws_server_done()) or *signals reaches 2 (a second SIGINT/SIGTERM).
   Returns 0, or a negative WS_E* code (epoll failed). */
int ws_embed_epoll_run(struct ws_embed_epoll *e,
                       volatile sig_atomic_t *signals);

/* Close the epoll instance; after ws_server_destroy(), which still tells
   it of the descriptors it removes. */
void ws_embed_epoll_free(struct ws_embed_epoll *e);

#endif
