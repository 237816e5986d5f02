/*
 * addr.h - the one place where host and port strings become socket
 * addresses: getaddrinfo() for IPv4 and IPv6 alike ("127.0.0.1", "::1",
 * "[::1]", "localhost", "*"), plus the "host:port" text used in messages.
 */
#ifndef WS_NET_ADDR_H
#define WS_NET_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "net/sock.h"

/* The most addresses one look-up returns (more are ignored). */
#define WS_NET_MAXADDRS 16

/* What to resolve. Zero-filled means TCP, any family, to connect to. */
struct ws_net_query {
    const char *host; /* name or literal, "[::1]" too; with passive, NULL
                         or "*" is every local address; without, NULL is
                         the loopback address */
    const char *port; /* service name or number; NULL means "0" */
    int socktype;     /* SOCK_STREAM (0 means this) or SOCK_DGRAM */
    int family;       /* AF_UNSPEC (0), AF_INET or AF_INET6 */
    int passive;      /* nonzero: addresses to bind, not to connect to */
};

/*
 * Resolve q into up to max addresses, in getaddrinfo()'s order of
 * preference. Returns the number stored (>= 1), WS_ENOTFOUND when the
 * name or the service does not resolve (err gets "resolve host:port:
 * host not found" or the resolver's cause) or the port is a number above
 * 65535 (err: "... port 70000 is out of range (0-65535)"; getaddrinfo
 * would wrap it), or -EINVAL for a NULL q or
 * out, max < 1 or an unknown socktype. err (optional) is emptied on
 * success.
 */
int ws_net_resolve(const struct ws_net_query *q, struct ws_net_addr *out,
                   int max, char *err, size_t errlen);

/* Write "host:port", "[v6]:port", or "*:port" for a NULL host, the way
   messages name an address that was not resolved yet. */
void ws_net_hostport_format(const char *host, const char *port, char *out,
                            size_t cap);

/* The port of an AF_INET or AF_INET6 address, or -1 for other families. */
int ws_net_sockaddr_port(const struct sockaddr *sa);

/* Set the port of an AF_INET or AF_INET6 address; returns 0, or -EINVAL
   for another family or a port outside 0..65535. */
int ws_net_addr_set_port(struct ws_net_addr *a, int port);

#endif
