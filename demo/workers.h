/*
 * workers.h - run a server in several processes on one port (each with
 * cfg.reuse_port, so the kernel spreads the connections), restart one
 * that dies, and stop them all on SIGTERM or SIGINT. For ws_echo and
 * ws_chat; uses nothing of the library.
 */
#ifndef WS_DEMO_WORKERS_H
#define WS_DEMO_WORKERS_H

/* Run serve(arg) in n child processes (n >= 2) and supervise them: one
   that exits on its own or dies is started again after a second. Returns
   0 once SIGTERM or SIGINT has stopped them all, 1 if fork fails at the
   start. Call before making any server or thread. */
int ws_workers_run(int n, int (*serve)(void *arg), void *arg, const char *name);

#endif
