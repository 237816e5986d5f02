/*
 * workers.c - a small process supervisor: fork the workers, wait for any
 * to end, start a replacement after a pause (so a worker that cannot
 * start does not spin), and on SIGTERM/SIGINT pass the signal on and
 * reap every worker before returning.
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

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
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

/* Pass the stop on and reap everyone. */
static void stop_all(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
                ;
}

int ws_workers_run(int n, int (*serve)(void *arg), void *arg, const char *name)
{
    struct sigaction sa;
    pid_t pids[MAX_WORKERS] = {0};

    if (n > MAX_WORKERS)
        n = MAX_WORKERS;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop; /* no SA_RESTART: waitpid returns EINTR */
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
