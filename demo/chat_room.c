/*
 * chat_room.c - the state of the chat demo: rooms with their members and
 * message history, nick rules, the per-client rate limit, and the JSON
 * events sent to clients. It never reads a socket or parses client input:
 * chat.c does that and calls in here. Uses only ws/ws.h and jansson.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "demo/chat.h"

/* Milliseconds on clock id. */
static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t chat_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t chat_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

void chat_client_init(struct chat_client *c, struct ws_conn *conn)
{
    memset(c, 0, sizeof(*c));
    c->conn = conn;
    c->tokens = CHAT_BURST;
    c->refilled_ms = clock_ms(CLOCK_MONOTONIC);
}

/* A token bucket on the monotonic clock, so that setting the wall clock
   back cannot lock a client out or let it flood. */
bool chat_rate_take(struct chat_client *c)
{
    int64_t now = clock_ms(CLOCK_MONOTONIC);

    c->tokens += (double)(now - c->refilled_ms) * CHAT_RATE / 1000.0;
    if (c->tokens > CHAT_BURST)
        c->tokens = CHAT_BURST;
    c->refilled_ms = now;
    if (c->tokens < 1.0)
        return false;
    c->tokens -= 1.0;
    return true;
}

/* Decode the code point at *p of valid UTF-8 and advance past it. */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    int n = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
    uint32_t cp = n == 1 ? s[0] : s[0] & (0x7Fu >> n);
    int i;

    /* Valid input is promised; still never step past the NUL. */
    for (i = 1; i < n && s[i] != '\0'; i++)
        cp = (cp << 6) | (s[i] & 0x3Fu);
    *p = s + i;
    return cp;
}

size_t chat_utf8_count(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;

    while (*p) {
        utf8_next(&p);
        n++;
    }
    return n;
}

/* True for characters a nick may not hold: controls, invisible and
   direction-changing characters, and spaces other than U+0020, all of
   which let one nick pass for another. */
static bool nick_char_bad(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F) ||
           cp == 0x3000 || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB);
}

const char *chat_nick_check(const char *nick)
{
    const unsigned char *p = (const unsigned char *)nick;
    uint32_t cp = ' ';
    size_t n = 0;

    if (*p == '\0')
        return "a nick cannot be empty";
    if (*p == ' ')
        return "a nick cannot start or end with a space";
    while (*p) {
        uint32_t prev = cp;

        cp = utf8_next(&p);
        if (nick_char_bad(cp))
            return "a nick cannot hold control or invisible characters";
        if (cp == ' ' && prev == ' ')
            return "a nick cannot hold two spaces in a row";
        if (++n > CHAT_NICK_MAX)
            return "a nick has at most 24 characters";
    }
    if (cp == ' ')
        return "a nick cannot start or end with a space";
    return NULL;
}

bool chat_nick_taken(const struct chat *chat, const char *nick)
{
    for (const struct chat_room *r = chat->rooms; r; r = r->next)
        for (const struct chat_client *m = r->members; m; m = m->next)
            if (strcasecmp(m->nick, nick) == 0)
                return true;
    return false;
}

bool chat_room_name(const char *name, char *out)
{
    size_t n = 0;

    for (; name[n]; n++) {
        char ch = name[n];

        if (n == CHAT_ROOM_MAX)
            return false;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (!(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9') &&
            ch != '-' && ch != '_')
            return false;
        out[n] = ch;
    }
    out[n] = '\0';
    return n > 0;
}

/* Drop every message of room's history. */
static void history_clear(struct chat_room *room)
{
    for (size_t i = 0; i < room->hist_count; i++)
        json_decref(room->history[(room->hist_start + i) % CHAT_HISTORY]);
    room->hist_start = 0;
    room->hist_count = 0;
}

/* Free the empty room used longest ago to make space; false if none. */
static bool room_evict(struct chat *chat)
{
    struct chat_room **victim = NULL;

    for (struct chat_room **pp = &chat->rooms; *pp; pp = &(*pp)->next)
        if ((*pp)->nmembers == 0 &&
            (victim == NULL || (*pp)->used_ms < (*victim)->used_ms))
            victim = pp;
    if (victim == NULL)
        return false;
    struct chat_room *room = *victim;

    *victim = room->next;
    history_clear(room);
    free(room);
    chat->nrooms--;
    return true;
}

struct chat_room *chat_room_find(const struct chat *chat, const char *name)
{
    for (struct chat_room *room = chat->rooms; room; room = room->next)
        if (strcmp(room->name, name) == 0)
            return room;
    return NULL;
}

struct chat_room *chat_room_get(struct chat *chat, const char *name)
{
    struct chat_room *room = chat_room_find(chat, name);

    if (room)
        return room;
    /* Rooms outlive their members (for the history), within a limit. */
    if (chat->nrooms >= CHAT_MAX_ROOMS && !room_evict(chat))
        return NULL;
    room = calloc(1, sizeof(*room));
    if (room == NULL)
        return NULL;
    snprintf(room->name, sizeof(room->name), "%s", name);
    room->used_ms = clock_ms(CLOCK_MONOTONIC);
    room->beat_ms = room->used_ms;
    room->next = chat->rooms;
    chat->rooms = room;
    chat->nrooms++;
    return room;
}

struct chat_room *chat_room_open(struct chat *chat, struct chat_client *c,
                                 const char *name)
{
    struct chat_room *room = chat_room_get(chat, name);

    if (room == NULL)
        chat_send_error(c, "room_limit",
                        "there are too many rooms; join an existing one");
    return room;
}

void chat_rooms_free(struct chat *chat)
{
    while (chat->rooms) {
        struct chat_room *room = chat->rooms;

        chat->rooms = room->next;
        history_clear(room);
        free(room);
    }
    chat->nrooms = 0;
}

int chat_send(struct chat_client *c, const json_t *ev)
{
    char *text = json_dumps(ev, JSON_COMPACT);
    int rc;

    if (text == NULL)
        return WS_ENOMEM;
    rc = ws_conn_send_text(c->conn, text);
    free(text);
    return rc;
}

int chat_send_error(struct chat_client *c, const char *code, const char *text)
{
    json_t *ev = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code,
                           "message", text);
    int rc = ev ? chat_send(c, ev) : WS_ENOMEM;

    json_decref(ev);
    return rc;
}

/* Send ev to every member of room but except (NULL: none), through the
   room's topic: the library frames it once for all of them. A member
   that cannot take it is closed by the library; on_close follows. */
static void room_publish(struct ws_server *srv, const struct chat_room *room,
                         const json_t *ev, const struct chat_client *except)
{
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;

    if (text == NULL)
        return;
    if (except)
        ws_conn_publish(except->conn, room->name, WS_TEXT, text, strlen(text));
    else
        ws_server_publish(srv, room->name, WS_TEXT, text, strlen(text));
    free(text);
}

/* A new event {"type", "room", "nick", "ts"}, or NULL. */
static json_t *event_new(const char *type, const struct chat_room *room,
                         const char *nick)
{
    return json_pack("{s:s, s:s, s:s, s:I}", "type", type, "room", room->name,
                     "nick", nick, "ts", (json_int_t)chat_now_ms());
}

void chat_room_announce(struct ws_server *srv, const struct chat_room *room,
                        const char *type, const char *nick)
{
    json_t *ev = event_new(type, room, nick);

    room_publish(srv, room, ev, NULL);
    json_decref(ev);
}

int chat_nick_order(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int d = strcasecmp(x, y);

    return d ? d : strcmp(x, y);
}

/* The first max of room's members' nicks, sorted, as a JSON array, or
   NULL. */
static json_t *online_list(const struct chat_room *room, size_t max)
{
    const char **nicks = malloc((room->nmembers + 1) * sizeof(*nicks));
    json_t *list = json_array();
    size_t n = 0;

    if (nicks == NULL || list == NULL) {
        free(nicks);
        json_decref(list);
        return NULL;
    }
    for (const struct chat_client *m = room->members; m; m = m->next)
        nicks[n++] = m->nick;
    qsort(nicks, n, sizeof(*nicks), chat_nick_order);
    for (size_t i = 0; i < n && i < max; i++)
        json_array_append_new(list, json_string(nicks[i]));
    free(nicks);
    return list;
}

/* room's history, oldest first, as a JSON array sharing the messages. */
static json_t *history_list(const struct chat_room *room)
{
    json_t *list = json_array();

    for (size_t i = 0; list && i < room->hist_count; i++)
        json_array_append(list,
                          room->history[(room->hist_start + i) % CHAT_HISTORY]);
    return list;
}

void chat_view_local(const struct chat_room *room, struct chat_view *v)
{
    v->history = history_list(room);
    v->online = online_list(room, CHAT_ONLINE_MAX);
    v->count = room->nmembers;
}

void chat_view_free(struct chat_view *v)
{
    json_decref(v->history);
    json_decref(v->online);
    v->history = NULL;
    v->online = NULL;
}

int chat_send_welcome(struct chat_client *c, struct chat_view *v)
{
    json_t *ev = event_new("welcome", c->room, c->nick);
    json_t *limits =
        json_pack("{s:i, s:i, s:i, s:f, s:f}", "nick_max", CHAT_NICK_MAX,
                  "text_max", CHAT_TEXT_MAX, "history", CHAT_HISTORY, "rate",
                  CHAT_RATE, "burst", CHAT_BURST);
    int failed, rc;

    if (ev == NULL) {
        json_decref(limits);
        chat_view_free(v);
        return WS_ENOMEM;
    }
    /* json_object_set_new() takes the value's reference even on error,
       and a NULL value is an error. */
    failed = json_object_set_new(ev, "history", v->history);
    /* Who is here, once; joins and leaves follow as deltas. A huge room
       sends its count and the first CHAT_ONLINE_MAX nicks. */
    failed |= json_object_set_new(ev, "online", v->online);
    failed |= json_object_set_new(ev, "online_count",
                                  json_integer((json_int_t)v->count));
    failed |= json_object_set_new(ev, "limits", limits);
    v->history = NULL;
    v->online = NULL;
    rc = failed ? WS_ENOMEM : chat_send(c, ev);
    json_decref(ev);
    return rc;
}

int chat_room_enter(struct chat_room *room, struct chat_client *c,
                    struct chat_view *v)
{
    struct chat_view local;
    json_t *ev;
    int rc;

    rc = ws_conn_subscribe(c->conn, room->name);
    if (rc < 0) {
        if (v)
            chat_view_free(v);
        return rc;
    }
    c->room = room;
    c->next = room->members;
    room->members = c;
    room->nmembers++;
    room->used_ms = clock_ms(CLOCK_MONOTONIC);
    c->shared = v != NULL;
    if (v == NULL) {
        chat_view_local(room, &local);
        v = &local;
    }
    rc = chat_send_welcome(c, v);
    ev = event_new("join", room, c->nick);
    room_publish(ws_conn_server(c->conn), room, ev, c);
    json_decref(ev);
    return rc;
}

void chat_room_leave(struct chat_client *c)
{
    struct chat_room *room = c->room;
    json_t *ev;

    if (room == NULL)
        return;
    for (struct chat_client **pp = &room->members; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            room->nmembers--;
            break;
        }
    c->room = NULL;
    c->next = NULL;
    ws_conn_unsubscribe(c->conn, room->name); /* gone already if closed */
    ev = event_new("leave", room, c->nick);
    room_publish(ws_conn_server(c->conn), room, ev, NULL);
    json_decref(ev);
}

/* Keep msg (one reference taken) as the newest of room's history. */
static void history_push(struct chat_room *room, json_t *msg)
{
    size_t end = (room->hist_start + room->hist_count) % CHAT_HISTORY;

    if (room->hist_count == CHAT_HISTORY) {
        json_decref(room->history[room->hist_start]);
        room->hist_start = (room->hist_start + 1) % CHAT_HISTORY;
    } else {
        room->hist_count++;
    }
    room->history[end] = json_incref(msg);
}

json_t *chat_room_say(struct chat_client *c, const char *text)
{
    struct chat_room *room = c->room;
    json_t *ev = event_new("message", room, c->nick);

    if (ev == NULL || json_object_set_new(ev, "text", json_string(text))) {
        json_decref(ev);
        return NULL;
    }
    room->used_ms = clock_ms(CLOCK_MONOTONIC);
    history_push(room, ev);
    room_publish(ws_conn_server(c->conn), room, ev, NULL);
    return ev;
}
