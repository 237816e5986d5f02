/*
 * sockopt.h - socket options as named settings: SO_REUSEADDR,
 * SO_REUSEPORT, SO_KEEPALIVE and its timings, SO_LINGER, TCP_NODELAY and
 * the buffer sizes, each set and read back one at a time or all at once
 * from a struct.
 */
#ifndef WS_NET_SOCKOPT_H
#define WS_NET_SOCKOPT_H

#include <stddef.h>

/* The named options. Values for ws_net_opt_set()/get(): */
enum ws_net_opt {
    WS_NET_OPT_REUSEADDR, /* 0 off, 1 on */
    WS_NET_OPT_REUSEPORT, /* 0 off, 1 on */
    WS_NET_OPT_KEEPALIVE, /* 0 off, 1 on */
    WS_NET_OPT_KEEPIDLE,  /* TCP_KEEPIDLE: idle seconds before probing */
    WS_NET_OPT_KEEPINTVL, /* TCP_KEEPINTVL: seconds between probes */
    WS_NET_OPT_KEEPCNT,   /* TCP_KEEPCNT: unanswered probes before reset */
    WS_NET_OPT_LINGER,    /* -1 off; n >= 0: close() waits up to n s for
                             unsent data, and 0 resets the connection */
    WS_NET_OPT_NODELAY,   /* TCP_NODELAY: 0 Nagle on, 1 Nagle off */
    WS_NET_OPT_SNDBUF,    /* bytes; reads back as the kernel's figure,
                             about double what was set and capped by
                             net.core.wmem_max */
    WS_NET_OPT_RCVBUF,    /* bytes; likewise, net.core.rmem_max */
    WS_NET_OPT_COUNT
};

/* Tri-state switches of struct ws_net_sockopts; 0 means "leave it". */
enum { WS_NET_OFF = -1, WS_NET_ON = 1 };

/*
 * Every option at once. Zero-filled means "leave every option as the
 * kernel set it". ws_net_sockopts_read() fills every field (switches with
 * WS_NET_ON/WS_NET_OFF) except the TCP ones on a non-TCP socket (left 0).
 */
struct ws_net_sockopts {
    int reuseaddr;   /* WS_NET_ON, WS_NET_OFF or 0 */
    int reuseport;   /* WS_NET_ON, WS_NET_OFF or 0 */
    int keepalive;   /* WS_NET_ON, WS_NET_OFF or 0 */
    int keepidle_s;  /* > 0 sets TCP_KEEPIDLE */
    int keepintvl_s; /* > 0 sets TCP_KEEPINTVL */
    int keepcnt;     /* > 0 sets TCP_KEEPCNT */
    int linger;      /* WS_NET_ON (with linger_s), WS_NET_OFF or 0 */
    int linger_s;    /* seconds for WS_NET_ON; 0 resets on close */
    int nodelay;     /* WS_NET_ON, WS_NET_OFF or 0 */
    int sndbuf;      /* > 0 sets SO_SNDBUF (bytes) */
    int rcvbuf;      /* > 0 sets SO_RCVBUF (bytes) */
};

/* The option's C name ("SO_REUSEADDR"), or NULL for an unknown opt. */
const char *ws_net_opt_name(int opt);

/* The option called name (as ws_net_opt_name() spells it), or -EINVAL. */
int ws_net_opt_lookup(const char *name);

/* Set one option. Returns 0, -EINVAL (unknown opt or a value out of
   range) or the negated errno of setsockopt(). */
int ws_net_opt_set(int fd, int opt, int value);

/* Read one option back into *value. Returns 0, -EINVAL or the negated
   errno of getsockopt(). */
int ws_net_opt_get(int fd, int opt, int *value);

/*
 * Apply every non-zero field of o, in the order of enum ws_net_opt.
 * Returns 0, -EINVAL for a field out of range (nothing is set then), or
 * the negated errno of the first setsockopt() that failed, with err
 * (optional) set to "setsockopt SO_SNDBUF=4096: cause". Buffer sizes and
 * SO_REUSEADDR/SO_REUSEPORT must be set before bind() or connect() to
 * matter.
 */
int ws_net_sockopts_apply(int fd, const struct ws_net_sockopts *o, char *err,
                          size_t errlen);

/* Read every option of fd into *o. Returns 0 or a negated errno. */
int ws_net_sockopts_read(int fd, struct ws_net_sockopts *o);

/* Write the non-zero fields of o as "SO_SNDBUF=4096 TCP_NODELAY=on", or
   "defaults" when there is none. */
void ws_net_sockopts_format(const struct ws_net_sockopts *o, char *out,
                            size_t cap);

#endif
