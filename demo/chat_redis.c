/*
 * chat_redis.c - the chat's state shared through Redis (ws_chat --redis),
 * so that a room spans every instance: messages, joins and leaves travel
 * through the library's Redis bridge (ws/redis.h) like any publish; this
 * file keeps the rest in Redis, with ws_redis_command() on the bridge's
 * connection:
 *   chat:nick:<nick, ASCII lower case>  the instance id that holds it,
 *                                       expiring after the presence TTL
 *   chat:online:<room>  sorted set: nick -> when it expires (ms, Redis's
 *                       clock, so that instances' clocks do not matter)
 *   chat:history:<room> list: the last CHAT_HISTORY messages, as JSON
 * Every third of the TTL each instance renews its members (nick and
 * presence), and removes the room's expired entries: the instance whose
 * script removed one tells the room it left, so the users of an instance
 * that died leave everyone's list within the TTL and a third. Each step
 * is one Lua script, atomic in Redis, so two instances never both take a
 * nick or both announce a leave.
 *
 * When Redis cannot be asked (down, or stalled: no answer within
 * ENTER_WAIT_MS), the chat goes on from local state: local history and
 * presence, nicks unique here. Commands keep their order on the one
 * connection, so a late answer needs nothing undone: what the client did
 * next follows it in Redis too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "demo/chat.h"
#include "ws/redis.h"

#define KEY_MAX 128
#define BEAT_CHUNK 256             /* members renewed per script */
#define HISTORY_KEEP_MS "86400000" /* a quiet room's history: a day */
#define ENTER_WAIT_MS 500          /* then enter from local state */

/* A question about entering: who asked, which room, how. */
struct chat_pending {
    struct chat *chat;
    struct chat_client *c; /* NULL once c is gone */
    char room[CHAT_ROOM_MAX + 1];
    char nick[CHAT_NICK_MAX * 4 + 1];
    char nick_key[KEY_MAX];
    enum chat_enter how;
    struct ws_server_timer *timer; /* ENTER_WAIT_MS */
    bool late;                     /* entered without the answer */
};

/* Which room a heartbeat answer is about. */
struct beat {
    struct chat *chat;
    char room[CHAT_ROOM_MAX + 1];
};

/* The nick claim: free for a join, ours for a switch; then presence, and
   what the welcome shows. Returns {0} when taken, else {1, count,
   online, history, stale}: stale is 1 when the room still listed the
   nick, expired (its instance died and no sweep has removed it yet), so
   that this instance announces that leave before the join. */
static const char enter_lua[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and (ARGV[5] == 'join' or cur ~= ARGV[1]) then return {0} end\n"
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])\n"
    "local old = redis.call('ZSCORE', KEYS[2], ARGV[2])\n"
    "local stale = 0\n"
    "if old and tonumber(old) < now then stale = 1 end\n"
    "redis.call('ZADD', KEYS[2], now + ARGV[3], ARGV[2])\n"
    "return {1, redis.call('ZCOUNT', KEYS[2], now, '+inf'),\n"
    "  redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf', 'LIMIT', 0,"
    " ARGV[4]),\n"
    "  redis.call('LRANGE', KEYS[3], 0, -1), stale}\n";

/* Out of a room; the nick too when ARGV[3] is 1 and it is still ours. */
static const char leave_lua[] =
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "if ARGV[3] == '1' and redis.call('GET', KEYS[2]) == ARGV[2] then\n"
    "  redis.call('DEL', KEYS[2]) end\n"
    "return 0\n";

/* Renew members (KEYS[2..] their nick keys, ARGV[3..] their nicks) and
   remove the room's expired entries. Returns {expired nicks, nicks that
   had been removed (an outage longer than the TTL) and are back}. */
static const char beat_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local back = {}\n"
    "for i = 2, #KEYS do\n"
    "  if redis.call('ZADD', KEYS[1], now + ARGV[1], ARGV[i + 1]) == 1 then\n"
    "    back[#back + 1] = ARGV[i + 1] end\n"
    "  local cur = redis.call('GET', KEYS[i])\n"
    "  if not cur or cur == ARGV[2] then\n"
    "    redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[1]) end\n"
    "end\n"
    "local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)\n"
    "if #gone > 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now) end\n"
    "return {gone, back}\n";

/* key = "chat:" kind ":" name, with ASCII letters of name lowered when
   fold (nicks are unique ignoring ASCII case, like chat_nick_taken). */
static void make_key(char *key, const char *kind, const char *name, bool fold)
{
    int n = snprintf(key, KEY_MAX, "chat:%s:", kind);

    for (size_t i = 0; name[i] && (size_t)n + 1 < KEY_MAX; i++) {
        char ch = name[i];

        if (fold && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        key[n++] = ch;
    }
    key[n] = '\0';
}

/* EVAL script with keys then args: argc words in all. */
static int eval(struct chat *chat, ws_redis_reply_fn fn, void *arg,
                const char *script, int nkeys, int argc, const char **argv)
{
    char nk[16];

    argv[0] = "EVAL";
    argv[1] = script;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[2] = nk;
    return ws_redis_command(chat->redis, fn, arg, argc, argv, NULL);
}

/* --- entering a room --- */

/* The history replies, oldest first, as message events; bad ones (not
   ours) are skipped. */
static json_t *history_of(const redisReply *list)
{
    json_t *out = json_array();

    for (size_t i = 0; out && i < list->elements; i++) {
        const redisReply *e = list->element[i];
        json_t *msg = e->type == REDIS_REPLY_STRING
                          ? json_loadb(e->str, e->len, 0, NULL)
                          : NULL;

        if (json_is_object(msg))
            json_array_append(out, msg);
        json_decref(msg);
    }
    return out;
}

/* The nicks of an online reply, sorted for reading. */
static json_t *online_of(const redisReply *list)
{
    const char **nicks = calloc(list->elements + 1, sizeof(*nicks));
    json_t *out = json_array();
    size_t n = 0;

    for (size_t i = 0; nicks && i < list->elements; i++)
        if (list->element[i]->type == REDIS_REPLY_STRING)
            nicks[n++] = list->element[i]->str;
    if (nicks)
        qsort(nicks, n, sizeof(*nicks), chat_nick_order);
    for (size_t i = 0; out && i < n; i++)
        json_array_append_new(out, json_string(nicks[i]));
    free(nicks);
    if (nicks == NULL) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* A well-formed answer of enter_lua: {1, count, online, history,
   stale}. */
static bool view_of(const redisReply *r, struct chat_view *v)
{
    if (r->elements != 5 || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_ARRAY ||
        r->element[3]->type != REDIS_REPLY_ARRAY)
        return false;
    v->count = (size_t)r->element[1]->integer;
    v->online = online_of(r->element[2]);
    v->history = history_of(r->element[3]);
    return true;
}

/* Enter p's client from local state: Redis did not answer. */
static void enter_locally(struct chat_pending *p, struct chat_client *c)
{
    struct chat_room *room;

    if (p->how == CHAT_ENTER_JOIN && chat_nick_taken(p->chat, c->nick)) {
        chat_send_error(c, "nick_taken",
                        "that nick is already taken; choose another one");
        c->nick[0] = '\0';
        return;
    }
    room = chat_room_open(p->chat, c, p->room);
    if (room == NULL)
        return;
    if (p->how == CHAT_ENTER_AGAIN) {
        struct chat_view v;

        chat_view_local(room, &v);
        chat_send_welcome(c, &v);
    } else {
        chat_room_enter(room, c, NULL);
    }
}

/* Enter p's client with the room as Redis sees it; stale: announce
   first that the nick's expired entry left (see enter_lua). */
static void enter_shared(struct chat_pending *p, struct chat_view *v,
                         bool stale)
{
    struct chat_client *c = p->c;
    struct chat_room *room = chat_room_open(p->chat, c, p->room);

    if (room == NULL) {
        chat_view_free(v);
        return;
    }
    /* Only on the way in: a welcome again changes no one's list. */
    if (stale && c->room == NULL)
        chat_room_announce(p->chat->srv, room, "leave", p->nick);
    if (p->how == CHAT_ENTER_AGAIN && c->room == room)
        chat_send_welcome(c, v);
    else if (c->room == NULL)
        chat_room_enter(room, c, v);
    else
        chat_view_free(v);
}

/* Release what a claim took for a client that went away meanwhile. */
static void release(struct chat_pending *p)
{
    char online[KEY_MAX];
    const char *argv[8] = {[3] = online,
                           [4] = p->nick_key,
                           [5] = p->nick,
                           [6] = ws_redis_id(p->chat->redis),
                           [7] = "1"};

    make_key(online, "online", p->room, false);
    eval(p->chat, NULL, NULL, leave_lua, 2, 8, argv);
}

static void on_enter(struct ws_redis *r, struct redisReply *reply, void *arg)
{
    struct chat_pending *p = arg;
    struct chat_view v = {0};
    bool claimed = reply && reply->type == REDIS_REPLY_ARRAY &&
                   reply->elements > 0 &&
                   reply->element[0]->type == REDIS_REPLY_INTEGER &&
                   reply->element[0]->integer == 1;

    (void)r;
    if (p->timer)
        ws_server_timer_stop(p->timer);
    if (p->c)
        p->c->pending = NULL;
    if (p->chat->redis == NULL) {
        /* detaching: the server is going away with its clients */
    } else if (p->c == NULL) {
        if (claimed && !p->late)
            release(p);
    } else if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            fprintf(stderr, "ws_chat: redis: %s\n", reply->str);
        enter_locally(p, p->c);
    } else if (!claimed) {
        chat_send_error(p->c, "nick_taken",
                        "that nick is already taken; choose another one");
        if (p->how == CHAT_ENTER_JOIN)
            p->c->nick[0] = '\0';
    } else if (view_of(reply, &v)) {
        enter_shared(p, &v,
                     reply->element[4]->type == REDIS_REPLY_INTEGER &&
                         reply->element[4]->integer == 1);
    } else {
        enter_locally(p, p->c);
    }
    free(p);
}

/* Redis has not answered in time: enter from local state now; the
   answer, when it comes, is only freed. */
static void on_wait(struct ws_server_timer *t, void *arg)
{
    struct chat_pending *p = arg;
    struct chat_client *c = p->c;

    ws_server_timer_stop(t);
    p->timer = NULL;
    if (c == NULL)
        return;
    c->pending = NULL;
    p->c = NULL;
    p->late = true;
    fprintf(stderr, "ws_chat: redis: no answer in %d ms; %s enters alone\n",
            ENTER_WAIT_MS, c->nick);
    enter_locally(p, c);
}

bool chat_redis_enter(struct chat *chat, struct chat_client *c,
                      const char *name, enum chat_enter how)
{
    static const char *const hows[] = {"join", "switch", "again"};
    struct chat_pending *p;
    char online[KEY_MAX], history[KEY_MAX], ttl[16], max[16];
    const char *argv[11];

    if (chat->redis == NULL || c->pending)
        return false;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return false;
    *p = (struct chat_pending){.chat = chat, .c = c, .how = how};
    snprintf(p->room, sizeof(p->room), "%s", name);
    snprintf(p->nick, sizeof(p->nick), "%s", c->nick);
    make_key(p->nick_key, "nick", c->nick, true);
    make_key(online, "online", name, false);
    make_key(history, "history", name, false);
    snprintf(ttl, sizeof(ttl), "%d", chat->presence_ttl_ms);
    snprintf(max, sizeof(max), "%d", CHAT_ONLINE_MAX);
    argv[3] = p->nick_key;
    argv[4] = online;
    argv[5] = history;
    argv[6] = ws_redis_id(chat->redis);
    argv[7] = c->nick;
    argv[8] = ttl;
    argv[9] = max;
    argv[10] = hows[how];
    if (eval(chat, on_enter, p, enter_lua, 3, 11, argv) < 0) {
        free(p);
        return false;
    }
    c->pending = p;
    /* Without a timer the client would wait for a stalled Redis. */
    ws_server_timer_start(chat->srv, &p->timer, ENTER_WAIT_MS, 0, on_wait, p);
    return true;
}

void chat_redis_forget(struct chat *chat, struct chat_client *c)
{
    (void)chat;
    if (c->pending)
        c->pending->c = NULL;
    c->pending = NULL;
}

/* --- leaving, speaking --- */

void chat_redis_left(struct chat *chat, const struct chat_client *c,
                     const struct chat_room *room, bool release_nick)
{
    char online[KEY_MAX], nick[KEY_MAX];
    const char *argv[8] = {[3] = online, [4] = nick, [5] = c->nick};

    if (chat->redis == NULL)
        return;
    make_key(online, "online", room->name, false);
    make_key(nick, "nick", c->nick, true);
    argv[6] = ws_redis_id(chat->redis);
    argv[7] = release_nick ? "1" : "0";
    eval(chat, NULL, NULL, leave_lua, 2, 8, argv);
}

void chat_redis_said(struct chat *chat, const struct chat_room *room,
                     const json_t *msg)
{
    char key[KEY_MAX], last[16];
    char *text;

    if (chat->redis == NULL || (text = json_dumps(msg, JSON_COMPACT)) == NULL)
        return;
    make_key(key, "history", room->name, false);
    snprintf(last, sizeof(last), "%d", -CHAT_HISTORY);
    /* Three commands in a row on one connection: Redis runs them in
       order, and a reader between them sees at most one extra entry. */
    ws_redis_command(chat->redis, NULL, NULL, 3,
                     (const char *[]){"RPUSH", key, text}, NULL);
    ws_redis_command(chat->redis, NULL, NULL, 4,
                     (const char *[]){"LTRIM", key, last, "-1"}, NULL);
    ws_redis_command(chat->redis, NULL, NULL, 3,
                     (const char *[]){"PEXPIRE", key, HISTORY_KEEP_MS}, NULL);
    free(text);
}

/* --- the heartbeat --- */

/* room's member here called nick, or NULL. */
static struct chat_client *member_here(const struct chat_room *room,
                                       const char *nick)
{
    for (struct chat_client *m = room->members; m; m = m->next)
        if (strcmp(m->nick, nick) == 0)
            return m;
    return NULL;
}

/* Announce what a heartbeat found: the expired (unless here: renewed
   in a later chunk) left. Of those it had to add back, announce the
   members the others never heard of (they entered while Redis was away),
   and all of them when this room went unrenewed for longer than the TTL,
   when other instances may have announced them gone; not after a mere
   restart of Redis, which lost the entries but told no one. */
static void announce_beat(struct chat *chat, struct chat_room *room,
                          const redisReply *gone, const redisReply *back)
{
    int64_t now = chat_mono_ms();
    bool lapsed = now - room->beat_ms > chat->presence_ttl_ms;

    room->beat_ms = now;
    for (size_t i = 0; i < gone->elements; i++)
        if (gone->element[i]->type == REDIS_REPLY_STRING &&
            !member_here(room, gone->element[i]->str))
            chat_room_announce(chat->srv, room, "leave", gone->element[i]->str);
    for (size_t i = 0; i < back->elements; i++) {
        struct chat_client *m;

        if (back->element[i]->type != REDIS_REPLY_STRING ||
            (m = member_here(room, back->element[i]->str)) == NULL)
            continue;
        if (lapsed || !m->shared)
            chat_room_announce(chat->srv, room, "join", m->nick);
        m->shared = true;
    }
}

static void on_beat(struct ws_redis *r, struct redisReply *reply, void *arg)
{
    struct beat *b = arg;
    struct chat *chat = b->chat;
    struct chat_room *room = chat->redis ? chat_room_find(chat, b->room) : NULL;

    (void)r;
    if (room && reply && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_ARRAY &&
        reply->element[1]->type == REDIS_REPLY_ARRAY)
        announce_beat(chat, room, reply->element[0], reply->element[1]);
    free(b);
}

/* Renew up to BEAT_CHUNK members of room from *m on, in one script, and
   step *m past them. The words: EVAL, script, count, the online key, the
   nick keys, then ttl, id and the nicks. */
static void beat_chunk(struct chat *chat, const struct chat_room *room,
                       const struct chat_client **m)
{
    const struct chat_client *first = *m;
    char keys[BEAT_CHUNK][KEY_MAX], online[KEY_MAX], ttl[16];
    const char *argv[6 + 2 * BEAT_CHUNK];
    struct beat *b = malloc(sizeof(*b));
    int n = 0;

    for (; *m && n < BEAT_CHUNK; n++, *m = (*m)->next)
        make_key(keys[n], "nick", (*m)->nick, true);
    if (b == NULL)
        return;
    *b = (struct beat){.chat = chat};
    snprintf(b->room, sizeof(b->room), "%s", room->name);
    make_key(online, "online", room->name, false);
    snprintf(ttl, sizeof(ttl), "%d", chat->presence_ttl_ms);
    argv[3] = online;
    argv[4 + n] = ttl;
    argv[5 + n] = ws_redis_id(chat->redis);
    for (int i = 0; i < n; i++, first = first->next) {
        argv[4 + i] = keys[i];
        argv[6 + n + i] = first->nick;
    }
    if (eval(chat, on_beat, b, beat_lua, 1 + n, 6 + 2 * n, argv) < 0)
        free(b);
}

static void on_heartbeat(struct ws_server_timer *t, void *arg)
{
    struct chat *chat = arg;

    (void)t;
    for (const struct chat_room *room = chat->rooms; room; room = room->next) {
        const struct chat_client *m = room->members;

        while (m)
            beat_chunk(chat, room, &m);
    }
}

int chat_redis_start(struct chat *chat)
{
    unsigned period = (unsigned)chat->presence_ttl_ms / 3;

    return ws_server_timer_start(chat->srv, &chat->heartbeat, period, period,
                                 on_heartbeat, chat);
}

void chat_redis_stop(struct chat *chat)
{
    if (chat->heartbeat)
        ws_server_timer_stop(chat->heartbeat);
    chat->heartbeat = NULL;
    chat->redis = NULL;
}
