/*
 * chat.h - what the files of the chat demo share: the limits, the room
 * and client structs, the functions of chat_room.c (rooms, presence,
 * history, nicks, rate limits, events) and of chat_redis.c (the same
 * shared with other instances through Redis). The demo uses only ws/ws.h
 * from the library, and ws/redis.h for --redis.
 */
#ifndef WS_DEMO_CHAT_H
#define WS_DEMO_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ws/ws.h"

#define CHAT_NICK_MAX 24          /* characters (code points) */
#define CHAT_ROOM_MAX 32          /* bytes of [a-z0-9_-] */
#define CHAT_TEXT_MAX 1000        /* characters (code points) */
#define CHAT_HISTORY 50           /* messages replayed to a joiner */
#define CHAT_MAX_ROOMS 64         /* rooms kept, with their history */
#define CHAT_IN_MAX 16384         /* bytes of one client message */
#define CHAT_RATE 5.0             /* messages per second, sustained */
#define CHAT_BURST 10.0           /* messages at once */
#define CHAT_DEFAULT_ROOM "lobby" /* when join names none */
#define CHAT_ONLINE_MAX 200       /* nicks a welcome lists (and the count) */
#define CHAT_PRESENCE_TTL                                                      \
    10 /* seconds an instance's users stay listed                              \
          in Redis after its last heartbeat */

struct chat_room;
struct chat_pending;
struct ws_redis;

/* One WebSocket connection's state; owned by the chat, attached to the
   connection with ws_conn_set_user_data() from on_open to on_close. */
struct chat_client {
    struct ws_conn *conn;     /* not owned */
    struct chat_room *room;   /* not owned; NULL until joined */
    struct chat_client *next; /* next member of room */
    char nick[CHAT_NICK_MAX * 4 + 1];
    double tokens;                /* token bucket of the rate limit */
    int64_t refilled_ms;          /* monotonic time of the last refill */
    bool closing;                 /* we began the close: ignore its messages */
    struct chat_pending *pending; /* a question to Redis about entering */
    bool shared; /* entered with Redis's view: the others know of it */
};

/* A room: its members (for their nicks: messages reach them through the
   library's topic of the room's name) and a ring of its last
   CHAT_HISTORY messages. */
struct chat_room {
    char name[CHAT_ROOM_MAX + 1];
    struct chat_client *members; /* not owned; newest first */
    size_t nmembers;
    json_t *history[CHAT_HISTORY]; /* owned references */
    size_t hist_start;             /* oldest entry */
    size_t hist_count;
    int64_t used_ms; /* when someone last joined or spoke */
    int64_t beat_ms; /* with Redis: the last heartbeat it answered */
    struct chat_room *next;
};

/* The whole chat: the server and every room. */
struct chat {
    struct ws_server *srv;   /* not owned */
    const char *www;         /* document root, not owned */
    struct chat_room *rooms; /* owned list */
    size_t nrooms;
    struct ws_redis *redis; /* not owned; NULL: this instance alone */
    int presence_ttl_ms;    /* with redis */
    struct ws_server_timer *heartbeat; /* with redis */
};

/* What a welcome shows of a room: its history (an array of message
   events), who is online (the first CHAT_ONLINE_MAX nicks) and how many;
   owned references. */
struct chat_view {
    json_t *history;
    json_t *online;
    size_t count;
};

/* Milliseconds since the Unix epoch, for the timestamps users see. */
int64_t chat_now_ms(void);

/* Milliseconds on the monotonic clock, for intervals. */
int64_t chat_mono_ms(void);

/* Start the state of a client on conn: not joined, a full bucket. */
void chat_client_init(struct chat_client *c, struct ws_conn *conn);

/* Take one token from c's bucket; false when it is empty (flooding). */
bool chat_rate_take(struct chat_client *c);

/* NULL when nick is acceptable, else why not (a sentence for the user). */
const char *chat_nick_check(const char *nick);

/* True when a client of any room already uses nick, ignoring ASCII case. */
bool chat_nick_taken(const struct chat *chat, const char *nick);

/* qsort() order of nicks (const char *) as people read a list: ignoring
   case, then exactly. */
int chat_nick_order(const void *a, const void *b);

/* Lower-case name into out (CHAT_ROOM_MAX + 1 bytes); false if invalid. */
bool chat_room_name(const char *name, char *out);

/* The room called name, or NULL when this instance has none. */
struct chat_room *chat_room_find(const struct chat *chat, const char *name);

/* The room called name, created if needed; NULL when the room limit is
   reached and no room is empty, or out of memory. */
struct chat_room *chat_room_get(struct chat *chat, const char *name);

/* The room called name as chat_room_get() gives it, or NULL after
   telling c why not. */
struct chat_room *chat_room_open(struct chat *chat, struct chat_client *c,
                                 const char *name);

/* The view of room as this instance knows it. */
void chat_view_local(const struct chat_room *room, struct chat_view *v);

/* Drop v's references. */
void chat_view_free(struct chat_view *v);

/* Send c the welcome of its room showing v (consumed): history, who is
   online, the limits. */
int chat_send_welcome(struct chat_client *c, struct chat_view *v);

/* Put c in room (c->room must be NULL): subscribe it to the room's topic,
   welcome it with v (consumed; NULL: the local view) and tell the others
   it joined. */
int chat_room_enter(struct chat_room *room, struct chat_client *c,
                    struct chat_view *v);

/* Tell every member of room, on every instance, {"type":type,"nick":nick}
   ("join" or "leave"). */
void chat_room_announce(struct ws_server *srv, const struct chat_room *room,
                        const char *type, const char *nick);

/* Take c out of its room, if any, and tell those who remain. */
void chat_room_leave(struct chat_client *c);

/* Record a message from c in its room's history and send it to all;
   the message (a new reference), or NULL when out of memory. */
json_t *chat_room_say(struct chat_client *c, const char *text);

/* How chat_redis_enter() asks Redis. */
enum chat_enter {
    CHAT_ENTER_JOIN,   /* claim the nick, which must be free */
    CHAT_ENTER_SWITCH, /* the nick is c's already: another room */
    CHAT_ENTER_AGAIN   /* c's own room again: a fresh welcome */
};

/* Start sharing presence through chat->redis: a heartbeat every third of
   chat->presence_ttl_ms. Returns 0 or a WS_E* code. */
int chat_redis_start(struct chat *chat);

/* Stop the heartbeat; answers still to come find no one to tell. */
void chat_redis_stop(struct chat *chat);

/* Ask Redis to let c (nick set, c->room NULL unless AGAIN) into the room
   called name: the answer enters c with the room's shared history and
   presence, or tells c its nick is taken. False when Redis cannot be
   asked now: the caller enters c from local state. */
bool chat_redis_enter(struct chat *chat, struct chat_client *c,
                      const char *name, enum chat_enter how);

/* c left room: drop it from the room's presence in Redis, and its nick
   too when release (it is gone, not switching). */
void chat_redis_left(struct chat *chat, const struct chat_client *c,
                     const struct chat_room *room, bool release);

/* Append msg to room's history in Redis. */
void chat_redis_said(struct chat *chat, const struct chat_room *room,
                     const json_t *msg);

/* c is going away: a pending answer about it releases what it claimed. */
void chat_redis_forget(struct chat *chat, struct chat_client *c);

/* Free every room of chat (after the server is gone). */
void chat_rooms_free(struct chat *chat);

/* Send ev to c (serialised compactly); ev is not consumed. */
int chat_send(struct chat_client *c, const json_t *ev);

/* Send {"type":"error","code":code,"message":text} to c. */
int chat_send_error(struct chat_client *c, const char *code, const char *text);

/* The number of characters (code points) of valid UTF-8 s. */
size_t chat_utf8_count(const char *s);

#endif
