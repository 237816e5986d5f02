/*
 * neterr.h - the one-line error texts of the socket layer: "connect
 * 127.0.0.1:1: Connection refused", "resolve nosuch.invalid:80: host not
 * found", "connect [::1]:80: timed out after 2000 ms". Pure formatting: no
 * syscalls, no state.
 */
#ifndef WS_NET_NETERR_H
#define WS_NET_NETERR_H

#include <stddef.h>

/*
 * The cause for a negated errno value (a positive one is accepted too):
 * a fixed English text for the causes users meet most (connection
 * refused, timed out, address already in use, permission denied, network
 * or host unreachable, ...), otherwise strerror_r() written into buf.
 * Never NULL; the result is static or buf.
 */
const char *ws_net_strerror(int err, char *buf, size_t cap);

/*
 * The cause for a getaddrinfo() result gai_rc: "host not found" for a name
 * that does not resolve (EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY) or whose
 * look-up failed for now (EAI_AGAIN, with that said in parentheses),
 * strerror of sys_errno for EAI_SYSTEM, gai_strerror() otherwise.
 */
const char *ws_net_gai_strerror(int gai_rc, int sys_errno, char *buf,
                                size_t cap);

/* Write "op addr: cause" for a negated errno into out[0..cap); out may be
   NULL or cap 0, and then nothing is written. addr may be NULL. */
void ws_net_errfmt(char *out, size_t cap, const char *op, const char *addr,
                   int err);

/* Write "op addr: timed out after ms ms" into out[0..cap). */
void ws_net_errfmt_timeout(char *out, size_t cap, const char *op,
                           const char *addr, int ms);

/* Write "op addr: cause" for a getaddrinfo() result into out[0..cap). */
void ws_net_errfmt_gai(char *out, size_t cap, const char *op, const char *addr,
                       int gai_rc, int sys_errno);

#endif
