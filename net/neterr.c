/*
 * neterr.c - turns errno and getaddrinfo() results into the one-line
 * messages of the socket layer ("op addr: cause"). Texts for the common
 * causes are fixed here, so messages do not depend on the C library's
 * wording. It must never make a syscall, allocate, or keep state.
 */
#include "net/neterr.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* One errno value and its fixed text. */
struct neterr_row {
    int err;
    const char *text;
};

/* The causes the issue names first, then the ones a socket program meets
   next most often; the texts match glibc's in the C locale. */
static const struct neterr_row neterr_rows[] = {
    {ECONNREFUSED, "Connection refused"},
    {ETIMEDOUT, "Connection timed out"},
    {EADDRINUSE, "Address already in use"},
    {EACCES, "Permission denied"},
    {EPERM, "Operation not permitted"},
    {ENETUNREACH, "Network is unreachable"},
    {EHOSTUNREACH, "No route to host"},
    {EADDRNOTAVAIL, "Cannot assign requested address"},
    {EAFNOSUPPORT, "Address family not supported by protocol"},
    {ECONNRESET, "Connection reset by peer"},
    {ECONNABORTED, "Software caused connection abort"},
    {EPIPE, "Broken pipe"},
    {EMFILE, "Too many open files"},
    {ENFILE, "Too many open files in system"},
    {EINVAL, "Invalid argument"},
    {EBADF, "Bad file descriptor"},
    {EMSGSIZE, "Message too long"},
};

/* The fixed text for err (> 0), or NULL. */
static const char *neterr_lookup(int err)
{
    for (size_t i = 0; i < sizeof(neterr_rows) / sizeof(neterr_rows[0]); i++)
        if (neterr_rows[i].err == err)
            return neterr_rows[i].text;
    return NULL;
}

/* A fixed text, or the C library's description written into buf. */
const char *ws_net_strerror(int err, char *buf, size_t cap)
{
    const char *text;

    if (err < 0)
        err = -err;
    text = neterr_lookup(err);
    if (text != NULL)
        return text;
    if (buf == NULL || cap == 0)
        return "unknown error";
    /* GNU strerror_r (we build with _GNU_SOURCE) returns either a static
       string or buf, and never leaves a bare number behind. */
    return strerror_r(err, buf, cap);
}

/* "host not found" for every getaddrinfo() answer that means it. */
const char *ws_net_gai_strerror(int gai_rc, int sys_errno, char *buf,
                                size_t cap)
{
    switch (gai_rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return "host not found";
    case EAI_AGAIN:
        return "host not found (temporary failure in name resolution)";
    case EAI_SYSTEM:
        return ws_net_strerror(sys_errno, buf, cap);
    default:
        return gai_strerror(gai_rc);
    }
}

/* Write "op addr: cause", leaving out addr when there is none. */
static void neterr_put(char *out, size_t cap, const char *op, const char *addr,
                       const char *cause)
{
    if (out == NULL || cap == 0)
        return;
    if (addr != NULL && addr[0] != '\0')
        snprintf(out, cap, "%s %s: %s", op, addr, cause);
    else
        snprintf(out, cap, "%s: %s", op, cause);
}

/* "op addr: cause" for a negated errno. */
void ws_net_errfmt(char *out, size_t cap, const char *op, const char *addr,
                   int err)
{
    char tmp[128];

    neterr_put(out, cap, op, addr, ws_net_strerror(err, tmp, sizeof(tmp)));
}

/* "op addr: timed out after N ms". */
void ws_net_errfmt_timeout(char *out, size_t cap, const char *op,
                           const char *addr, int ms)
{
    char cause[64];

    snprintf(cause, sizeof(cause), "timed out after %d ms", ms);
    neterr_put(out, cap, op, addr, cause);
}

/* "op addr: cause" for a getaddrinfo() result. */
void ws_net_errfmt_gai(char *out, size_t cap, const char *op, const char *addr,
                       int gai_rc, int sys_errno)
{
    char tmp[128];

    neterr_put(out, cap, op, addr,
               ws_net_gai_strerror(gai_rc, sys_errno, tmp, sizeof(tmp)));
}
