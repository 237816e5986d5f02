/*
 * session_out.h - what the two halves of the session (session.c receives,
 * session_send.c sends) share: queueing a frame within the output limit,
 * the close frame, and failing the connection. Internal to them.
 */
#ifndef WS_SESSION_OUT_H
#define WS_SESSION_OUT_H

#include "ws/session.h"

/*
 * Queue a data, ping or pong frame within max_output (less what the
 * connection holds outside out: s->out_shared). A peer whose queue would
 * pass it is not reading: the frame is refused and the connection is
 * closed with 1008 (RFC 6455 §7.4.1, policy violation); WS_EFULL then.
 */
int ws_session_queue_frame(struct ws_session *s, struct ws_buf *out, bool fin,
                           uint8_t rsv, uint8_t opcode, const void *data,
                           size_t len);

/* Queue a close frame with code and reason (the caller sets the state);
   the one frame allowed past max_output. */
int ws_session_queue_close(struct ws_session *s, struct ws_buf *out,
                           uint16_t code, const char *reason,
                           size_t reason_len);

/* Fail the connection (RFC 6455 §7.1.7) with code and why, or with the
   reason the code has. */
void ws_session_fail_why(struct ws_session *s, struct ws_buf *out,
                         uint16_t code, const char *why);
void ws_session_fail(struct ws_session *s, struct ws_buf *out, uint16_t code);

#endif
