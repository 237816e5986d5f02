/*
 * workers.c - a small process supervisor: fork the workers, wait for any
 * to end, start a replacement after a pause (so a worker that cannot
 * start does not spin), and on SIGTERM/SIGINT pass the signal on and
 * reap every worker before returning. A worker shuts down gracefully on
 * the first signal and stops at once on a second, so each signal that
 * comes while they finish is passed on too.
 */
#define _POSIX_C_SOURCE 200809L
#include "demo/workers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define RESTART_PAUSE_MS 1000

/* The stop signals received; both are blocked while the handler runs
   (sa_mask), so the count is never torn. */
static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = stopping + 1;
}

/* Start a worker; its pid, or -1. */
static pid_t spawn(int (*serve)(void *), void *arg)
{
    pid_t pid = fork();

    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        exit(serve(arg));
    }
    return pid;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (!stopping && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Describe how a worker ended, for the log. */
static void report(const char *name, int slot, pid_t pid, int status)
{
    if (WIFSIGNALED(status))
        fprintf(stderr,
                "%s: worker %d (pid %d) died of signal %d; "
                "starting another\n",
                name, slot, (int)pid, WTERMSIG(status));
    else
        fprintf(stderr,
                "%s: worker %d (pid %d) exited with %d; "
                "starting another\n",
                name, slot, (int)pid, WEXITSTATUS(status));
}

/* Send SIGTERM to every worker still there. */
static void signal_all(const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
}

/* Reap the workers that have ended; how many are left. */
static int reap(pid_t *pids, int n)
{
    int left = 0;

    for (int i = 0; i < n; i++) {
        pid_t r = pids[i] > 0 ? waitpid(pids[i], NULL, WNOHANG) : 0;

        if (r == pids[i] || (r < 0 && errno != EINTR))
            pids[i] = 0; /* ended, or not ours any more */
        if (pids[i] > 0)
            left++;
    }
    return left;
}

/*
 * Pass the stop on and reap everyone, passing on each stop signal that
 * comes meanwhile too (a second one stops a worker at once). The signals
 * are blocked and taken with sigwaitinfo(), so that none can slip in
 * between a check and the wait; a blocked SIGCHLD stays pending on Linux
 * although it is ignored by default.
 */
static void stop_all(pid_t *pids, int n)
{
    sigset_t set, old;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &old);
    signal_all(pids, n);
    if (stopping > 1) /* another came before the block */
        signal_all(pids, n);
    while (reap(pids, n) > 0) {
        int sig = sigwaitinfo(&set, NULL);

        if (sig == SIGTERM || sig == SIGINT)
            signal_all(pids, n);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
}

int ws_workers_run(int n, int (*serve)(void *arg), void *arg, const char *name)
{
    struct sigaction sa;
    pid_t pids[MAX_WORKERS] = {0};

    if (n > MAX_WORKERS)
        n = MAX_WORKERS;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop; /* no SA_RESTART: waitpid returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    for (int i = 0; i < n; i++) {
        pids[i] = spawn(serve, arg);
        if (pids[i] < 0) {
            perror("fork");
            stop_all(pids, i);
            return 1;
        }
    }
    while (!stopping) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);

        if (pid < 0)
            continue; /* EINTR: a stop, seen by the loop */
        for (int i = 0; i < n; i++) {
            if (pids[i] != pid)
                continue;
            pids[i] = 0;
            if (stopping)
                break;
            report(name, i, pid, status);
            pause_ms(RESTART_PAUSE_MS);
            if (!stopping)
                pids[i] = spawn(serve, arg);
        }
    }
    stop_all(pids, n);
    return 0;
}
