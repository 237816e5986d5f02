/*
 * addr.c - host and port strings to socket addresses with getaddrinfo(),
 * IPv4 and IPv6 alike, and the "host:port" text of messages. Every other
 * file of the socket layer resolves through here. It must never open a
 * socket or keep state.
 */
#include "net/addr.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "net/neterr.h"
#include "net/error.h"

/* "host:port", bracketing hosts that contain a colon (IPv6 literals). */
void ws_net_hostport_format(const char *host, const char *port, char *out,
                            size_t cap)
{
    if (out == NULL || cap == 0)
        return;
    if (port == NULL)
        port = "0";
    if (host == NULL)
        snprintf(out, cap, "*:%s", port);
    else if (strchr(host, ':') != NULL && host[0] != '[')
        snprintf(out, cap, "[%s]:%s", host, port);
    else
        snprintf(out, cap, "%s:%s", host, port);
}

/* Copy host into buf without the brackets of "[::1]"; returns host
   itself when there are none, or NULL for the wildcard. */
static const char *addr_strip(const char *host, int passive, char *buf,
                              size_t cap)
{
    size_t len;

    if (host == NULL || (passive && strcmp(host, "*") == 0))
        return NULL;
    len = strlen(host);
    if (len < 2 || host[0] != '[' || host[len - 1] != ']' || len - 2 >= cap)
        return host;
    memcpy(buf, host + 1, len - 2);
    buf[len - 2] = '\0';
    return buf;
}

/* Copy getaddrinfo()'s list into out; returns the number copied. */
static int addr_copy(const struct addrinfo *res, struct ws_net_addr *out,
                     int max)
{
    int n = 0;

    for (const struct addrinfo *ai = res; ai != NULL && n < max;
         ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(out[n].ss))
            continue;
        memset(&out[n], 0, sizeof(out[n]));
        memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
        out[n].len = ai->ai_addrlen;
        n++;
    }
    return n;
}

/*
 * Whether port is a decimal number above 65535 (or with more digits than
 * any port): getaddrinfo() takes such a service and keeps its low 16 bits,
 * so that "70000" would mean port 4464 and "65536" port 0.
 */
static bool port_out_of_range(const char *port)
{
    size_t n = strlen(port);
    unsigned long v = 0;

    if (n == 0 || strspn(port, "0123456789") != n)
        return false; /* a service name: getaddrinfo() looks it up */
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (unsigned long)(port[i] - '0');
        if (v > 65535)
            return true;
    }
    return false;
}

/* Resolve q with getaddrinfo() into out[0..max). */
int ws_net_resolve(const struct ws_net_query *q, struct ws_net_addr *out,
                   int max, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char hostbuf[NI_MAXHOST], where[NI_MAXHOST + 64];
    const char *host, *port;
    int rc, n, sys_errno;

    if (q == NULL || out == NULL || max < 1)
        return -EINVAL;
    if (q->socktype != 0 && q->socktype != SOCK_STREAM &&
        q->socktype != SOCK_DGRAM)
        return -EINVAL;
    host = addr_strip(q->host, q->passive, hostbuf, sizeof(hostbuf));
    port = q->port != NULL ? q->port : "0";
    if (port_out_of_range(port)) {
        ws_net_hostport_format(host, port, where, sizeof(where));
        if (err != NULL && errlen > 0)
            snprintf(err, errlen,
                     "resolve %s: port %s is out of range "
                     "(0-65535)",
                     where, port);
        return WS_ENOTFOUND;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = q->family;
    hints.ai_socktype = q->socktype != 0 ? q->socktype : SOCK_STREAM;
    /* No AI_ADDRCONFIG: it hides ::1 on hosts whose only IPv6 address is
       the loopback one, and loopback must always work. */
    hints.ai_flags = q->passive ? AI_PASSIVE : 0;
    rc = getaddrinfo(host, port, &hints, &res);
    sys_errno = errno; /* meaningful for EAI_SYSTEM only */
    n = rc == 0 ? addr_copy(res, out, max) : 0;
    if (res != NULL)
        freeaddrinfo(res);
    if (n > 0) {
        if (err != NULL && errlen > 0)
            err[0] = '\0';
        return n;
    }
    ws_net_hostport_format(host, port, where, sizeof(where));
    ws_net_errfmt_gai(err, errlen, "resolve", where, rc != 0 ? rc : EAI_NONAME,
                      sys_errno);
    return WS_ENOTFOUND;
}

/* The port of an AF_INET or AF_INET6 address. */
int ws_net_sockaddr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(
            ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return -1;
}

/* Store port into an AF_INET or AF_INET6 address. */
int ws_net_addr_set_port(struct ws_net_addr *a, int port)
{
    if (port < 0 || port > 65535)
        return -EINVAL;
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
    else if (a->ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
    else
        return -EINVAL;
    return 0;
}
