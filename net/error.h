/*
 * error.h - the one error convention of every layer (net, http, ws) and of
 * the public API, which re-exports this header through ws/ws.h. A function
 * returns 0 (or a non-negative count) for success and a negative code for
 * failure: one of the WS_E* codes below, or, from a system call of the
 * socket layer, the negated errno of that call (-ECONNREFUSED). The two
 * never collide: where a WS_E* code has a twin in errno it is that value
 * (WS_EAGAIN is -EAGAIN, WS_ENOMEM -ENOMEM), and the codes of our own lie
 * below -4000, past every errno. ws_strerror() and ws_errname() describe
 * both kinds.
 */
#ifndef WS_NET_ERROR_H
#define WS_NET_ERROR_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The codes. One list makes the enum, ws_strerror() and ws_errname(), so
 * the three cannot drift apart. X(name, value, description).
 */
#define WS_ERRNO_MAP(X)                                                        \
    X(OK, 0, "success")                                                        \
    X(EAGAIN, -EAGAIN, "operation would block or needs more input")            \
    X(ENOMEM, -ENOMEM, "out of memory")                                        \
    X(EINVAL, -EINVAL, "invalid argument")                                     \
    X(EBUSY, -EBUSY, "not allowed from inside a callback")                     \
    X(ENOSPC, -ENOSPC, "output buffer too small")                              \
    X(EPROTO, -EPROTO, "WebSocket protocol violation")                         \
    X(EADDRINUSE, -EADDRINUSE, "address already in use")                       \
    X(EACCES, -EACCES, "permission denied")                                    \
    X(ECLOSED, -4001, "connection is closing or closed")                       \
    X(ETOOBIG, -4002, "size exceeds a configured limit")                       \
    X(EUTF8, -4003, "invalid UTF-8 in text")                                   \
    X(EFULL, -4004, "connection output queue is full")                         \
    X(EFDSET, -4005, "descriptor does not fit in an fd_set")                   \
    X(ENOTFOUND, -4006, "host or service not found")                           \
    X(ESYS, -4007, "system call failed")                                       \
    X(EHTTP, -4008, "malformed HTTP request")                                  \
    X(ESTATE, -4009, "call not valid in the current state")                    \
    X(ETLS, -4010, "TLS failure")

enum ws_error {
#define WS_ERROR_ENUM_(name, value, text) WS_##name = (value),
    WS_ERRNO_MAP(WS_ERROR_ENUM_)
#undef WS_ERROR_ENUM_
};

/* A short English sentence for code (for a negated errno, the C library's
   text); never NULL, static storage. */
const char *ws_strerror(int code);

/* The symbolic name of code ("WS_EPROTO"; "WS_ESYS" for a negated errno
   that is not one of the codes); never NULL, static storage. */
const char *ws_errname(int code);

#ifdef __cplusplus
}
#endif

#endif
