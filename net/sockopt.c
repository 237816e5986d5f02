/*
 * sockopt.c - named socket options: one table maps each ws_net_opt to its
 * level, its setsockopt() name, the kind of value it takes and its field
 * in struct ws_net_sockopts. It must never open, bind or close a socket.
 */
#include "net/sockopt.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net/neterr.h"

/* How an option's value is passed to the kernel. */
enum opt_kind {
    OPT_FLAG,  /* int 0/1 */
    OPT_COUNT, /* int >= 1 (keep-alive timings) */
    OPT_BYTES, /* int >= 0 (buffer sizes) */
    OPT_LINGER /* struct linger */
};

/* One named option. */
struct opt_desc {
    const char *name;
    int level;
    int optname;
    enum opt_kind kind;
    size_t field; /* offset of its int in struct ws_net_sockopts */
};

#define OPT_FIELD(f) offsetof(struct ws_net_sockopts, f)

/* Indexed by enum ws_net_opt. */
static const struct opt_desc opt_table[WS_NET_OPT_COUNT] = {
    {"SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, OPT_FLAG, OPT_FIELD(reuseaddr)},
    {"SO_REUSEPORT", SOL_SOCKET, SO_REUSEPORT, OPT_FLAG, OPT_FIELD(reuseport)},
    {"SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, OPT_FLAG, OPT_FIELD(keepalive)},
    {"TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE, OPT_COUNT,
     OPT_FIELD(keepidle_s)},
    {"TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL, OPT_COUNT,
     OPT_FIELD(keepintvl_s)},
    {"TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT, OPT_COUNT, OPT_FIELD(keepcnt)},
    {"SO_LINGER", SOL_SOCKET, SO_LINGER, OPT_LINGER, OPT_FIELD(linger)},
    {"TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY, OPT_FLAG, OPT_FIELD(nodelay)},
    {"SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, OPT_BYTES, OPT_FIELD(sndbuf)},
    {"SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, OPT_BYTES, OPT_FIELD(rcvbuf)},
};

/* The table row for opt, or NULL. */
static const struct opt_desc *opt_find(int opt)
{
    if (opt < 0 || opt >= WS_NET_OPT_COUNT)
        return NULL;
    return &opt_table[opt];
}

const char *ws_net_opt_name(int opt)
{
    const struct opt_desc *d = opt_find(opt);

    return d != NULL ? d->name : NULL;
}

/* Find an option by its C name. */
int ws_net_opt_lookup(const char *name)
{
    for (int i = 0; name != NULL && i < WS_NET_OPT_COUNT; i++)
        if (strcmp(opt_table[i].name, name) == 0)
            return i;
    return -EINVAL;
}

/* True if value is in range for d's kind. */
static int opt_valid(const struct opt_desc *d, int value)
{
    switch (d->kind) {
    case OPT_FLAG:
        return value == 0 || value == 1;
    case OPT_COUNT:
        return value >= 1;
    case OPT_BYTES:
        return value >= 0;
    case OPT_LINGER:
        return value >= -1;
    }
    return 0;
}

/* Set one option; SO_LINGER takes a struct, the others an int. */
int ws_net_opt_set(int fd, int opt, int value)
{
    const struct opt_desc *d = opt_find(opt);
    struct linger lg;
    int rc;

    if (d == NULL || !opt_valid(d, value))
        return -EINVAL;
    if (d->kind == OPT_LINGER) {
        lg.l_onoff = value >= 0;
        lg.l_linger = value >= 0 ? value : 0;
        rc = setsockopt(fd, d->level, d->optname, &lg, sizeof(lg));
    } else {
        rc = setsockopt(fd, d->level, d->optname, &value, sizeof(value));
    }
    return rc < 0 ? -errno : 0;
}

/* Read one option; flags come back as 0 or 1, linger as -1 or seconds. */
int ws_net_opt_get(int fd, int opt, int *value)
{
    const struct opt_desc *d = opt_find(opt);
    struct linger lg;
    socklen_t len;
    int v = 0;

    if (d == NULL || value == NULL)
        return -EINVAL;
    if (d->kind == OPT_LINGER) {
        len = sizeof(lg);
        if (getsockopt(fd, d->level, d->optname, &lg, &len) < 0)
            return -errno;
        *value = lg.l_onoff ? lg.l_linger : -1;
        return 0;
    }
    len = sizeof(v);
    if (getsockopt(fd, d->level, d->optname, &v, &len) < 0)
        return -errno;
    *value = d->kind == OPT_FLAG ? v != 0 : v;
    return 0;
}

/* The int of struct o that row d describes, to write. */
static int *opt_field(struct ws_net_sockopts *o, const struct opt_desc *d)
{
    return (int *)(void *)((char *)o + d->field);
}

/* The value of the int of struct o that row d describes. */
static int opt_field_value(const struct ws_net_sockopts *o,
                           const struct opt_desc *d)
{
    int v;

    memcpy(&v, (const char *)o + d->field, sizeof(v));
    return v;
}

/* Turn field f of o into a ws_net_opt_set() value; returns 1 with *value
   set, 0 when the field says "leave it", -EINVAL when out of range. */
static int opt_value_of(const struct ws_net_sockopts *o,
                        const struct opt_desc *d, int *value)
{
    int f = opt_field_value(o, d);

    if (f == 0)
        return 0;
    if (d->kind == OPT_FLAG || d->kind == OPT_LINGER) {
        if (f != WS_NET_ON && f != WS_NET_OFF)
            return -EINVAL;
        if (d->kind == OPT_FLAG)
            *value = f == WS_NET_ON;
        else if (f == WS_NET_ON && o->linger_s < 0)
            return -EINVAL; /* -1 would read as "off" */
        else
            *value = f == WS_NET_ON ? o->linger_s : -1;
    } else {
        *value = f;
    }
    return opt_valid(d, *value) ? 1 : -EINVAL;
}

/* Check every field first, so that a bad one changes nothing. */
static int opt_check(const struct ws_net_sockopts *o)
{
    int v;

    for (int i = 0; i < WS_NET_OPT_COUNT; i++)
        if (opt_value_of(o, &opt_table[i], &v) < 0)
            return -EINVAL;
    return 0;
}

/* Apply the non-zero fields of o in table order. */
int ws_net_sockopts_apply(int fd, const struct ws_net_sockopts *o, char *err,
                          size_t errlen)
{
    char what[64];
    int v, rc;

    if (o == NULL || opt_check(o) < 0) {
        ws_net_errfmt(err, errlen, "setsockopt", NULL, -EINVAL);
        return -EINVAL;
    }
    for (int i = 0; i < WS_NET_OPT_COUNT; i++) {
        if (opt_value_of(o, &opt_table[i], &v) <= 0)
            continue;
        rc = ws_net_opt_set(fd, i, v);
        if (rc < 0) {
            snprintf(what, sizeof(what), "%s=%d", opt_table[i].name, v);
            ws_net_errfmt(err, errlen, "setsockopt", what, rc);
            return rc;
        }
    }
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    return 0;
}

/* True if fd is a TCP socket, so that IPPROTO_TCP options apply. */
static int opt_is_tcp(int fd)
{
    int proto = 0;
    socklen_t len = sizeof(proto);

    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
        return 0;
    return proto == IPPROTO_TCP;
}

/* Read every option that applies to fd into o. */
int ws_net_sockopts_read(int fd, struct ws_net_sockopts *o)
{
    int tcp = opt_is_tcp(fd);
    int v, rc;

    if (o == NULL)
        return -EINVAL;
    memset(o, 0, sizeof(*o));
    for (int i = 0; i < WS_NET_OPT_COUNT; i++) {
        const struct opt_desc *d = &opt_table[i];
        if (d->level == IPPROTO_TCP && !tcp)
            continue;
        rc = ws_net_opt_get(fd, i, &v);
        if (rc < 0)
            return rc;
        if (d->kind == OPT_FLAG)
            v = v ? WS_NET_ON : WS_NET_OFF;
        if (d->kind == OPT_LINGER) {
            o->linger_s = v >= 0 ? v : 0;
            v = v >= 0 ? WS_NET_ON : WS_NET_OFF;
        }
        *opt_field(o, d) = v;
    }
    return 0;
}

/* Append one "NAME=value" to out at *pos, space-separated. */
static void opt_append(char *out, size_t cap, size_t *pos, const char *name,
                       const char *value)
{
    int n;

    if (*pos >= cap)
        return;
    n = snprintf(out + *pos, cap - *pos, "%s%s=%s", *pos ? " " : "", name,
                 value);
    if (n > 0)
        *pos += (size_t)n;
}

/* "SO_SNDBUF=4096 TCP_NODELAY=on", or "defaults". */
void ws_net_sockopts_format(const struct ws_net_sockopts *o, char *out,
                            size_t cap)
{
    size_t pos = 0;
    char num[32];

    if (out == NULL || cap == 0)
        return;
    out[0] = '\0';
    for (int i = 0; o != NULL && i < WS_NET_OPT_COUNT; i++) {
        const struct opt_desc *d = &opt_table[i];
        int f = opt_field_value(o, d);
        if (f == 0)
            continue;
        if (d->kind == OPT_FLAG || (d->kind == OPT_LINGER && f != WS_NET_ON))
            snprintf(num, sizeof(num), "%s", f == WS_NET_ON ? "on" : "off");
        else if (d->kind == OPT_LINGER)
            snprintf(num, sizeof(num), "%ds", o->linger_s);
        else
            snprintf(num, sizeof(num), "%d", f);
        opt_append(out, cap, &pos, d->name, num);
    }
    if (pos == 0)
        snprintf(out, cap, "defaults");
}
