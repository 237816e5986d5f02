// app.js - the chat page: joins a room over WebSocket (/chat), shows
// messages, notices and who is online, and reconnects with exponential
// backoff and jitter when the server goes away, re-joining with the same
// nick and room. Everything a user typed reaches the page through
// textContent only, never as HTML.
'use strict';

(() => {
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const GROUP_MS = 5 * 60 * 1000; // consecutive messages share a header
  const limits = { nick_max: 24, text_max: 1000 }; // updated by welcome

  const $ = (id) => document.getElementById(id);
  const el = {
    app: document.querySelector('.app'),
    roomName: $('room-name'),
    me: $('me'),
    status: $('status'),
    statusText: $('status-text'),
    banner: $('banner'),
    bannerText: $('banner-text'),
    retry: $('retry'),
    messages: $('messages'),
    composer: $('composer'),
    input: $('input'),
    send: $('send'),
    counter: $('counter'),
    composerError: $('composer-error'),
    online: $('online'),
    onlineCount: $('online-count'),
    roomForm: $('room-form'),
    roomInput: $('room-input'),
    join: $('join'),
    joinForm: $('join-form'),
    nick: $('nick'),
    room: $('room'),
    joinError: $('join-error'),
    joinBtn: $('join-btn'),
  };

  const state = {
    nick: '',
    room: 'lobby',
    ws: null,
    wanted: false, // the user asked to be in the chat
    joined: false, // a welcome arrived on the current socket
    everJoined: false,
    attempt: 0,
    retryTimer: 0,
    tickTimer: 0,
    retryAt: 0,
    last: null, // {nick, ts} of the last message shown, for grouping
    errorTimer: 0,
    online: [], // nicks shown as online (sorted)
    onlineCount: 0, // everyone in the room, listed or not
  };

  // ---- small helpers ----------------------------------------------------

  // Characters as the server counts them (code points, not UTF-16 units).
  const chars = (s) => Array.from(s).length;

  // An element with a class and text; text is always set as text.
  function node(tag, className, text) {
    const n = document.createElement(tag);
    if (className) n.className = className;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }

  // A stable colour for a nick.
  function hue(nick) {
    let h = 0;
    for (const ch of nick.toLowerCase()) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return h % 360;
  }

  function avatar(nick, className) {
    const a = node('span', className, Array.from(nick)[0].toUpperCase());
    a.style.setProperty('--hue', String(hue(nick)));
    a.setAttribute('aria-hidden', 'true');
    return a;
  }

  function timeElement(ts) {
    const d = new Date(ts);
    const t = node('time', 'time',
      d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    t.dateTime = d.toISOString();
    t.title = d.toLocaleString();
    return t;
  }

  function setStatus(kind, text) {
    el.status.dataset.state = kind;
    el.statusText.textContent = text;
    el.app.dataset.connection = kind;
  }

  function setComposer(enabled) {
    for (const c of [el.input, el.send, el.roomInput,
      el.roomForm.querySelector('button')]) c.disabled = !enabled;
  }

  // Keep the newest message in view, unless the user scrolled up to read.
  function appendMessage(li) {
    const box = el.messages;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    box.append(li);
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  // ---- rendering ----------------------------------------------------------

  function addMessage(m) {
    const grouped = state.last && state.last.nick === m.nick &&
      m.ts - state.last.ts < GROUP_MS;
    const li = node('li', 'msg');
    if (m.nick === state.nick) li.classList.add('mine');
    if (grouped) {
      li.classList.add('cont');
      li.append(node('span', 'avatar-space'));
    } else {
      li.append(avatar(m.nick, 'avatar'));
    }
    const body = node('div', 'msg-body');
    if (!grouped) {
      const meta = node('div', 'meta');
      meta.append(node('span', 'author', m.nick), timeElement(m.ts));
      body.append(meta);
    }
    body.append(node('div', 'text', m.text));
    li.append(body);
    li.dataset.nick = m.nick;
    appendMessage(li);
    state.last = { nick: m.nick, ts: m.ts };
  }

  function addNotice(text, ts, kind) {
    const li = node('li', 'notice' + (kind ? ' ' + kind : ''));
    li.append(node('span', 'notice-text', text));
    if (ts) li.append(timeElement(ts));
    appendMessage(li);
    state.last = null;
  }

  // The order the server lists nicks in: ASCII case ignored, then exact.
  function nickOrder(a, b) {
    const fold = (s) => s.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
    const x = fold(a), y = fold(b);
    if (x !== y) return x < y ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  // Who is online: the welcome's list (the first few hundred of a huge
  // room) and count, then kept up to date from join and leave events.
  function presence(m) {
    if (m.room !== state.room) return;
    const i = state.online.indexOf(m.nick);
    if (m.type === 'join' && i < 0) {
      state.online.push(m.nick);
      state.online.sort(nickOrder);
      state.onlineCount++;
    } else if (m.type === 'leave') {
      if (i >= 0) state.online.splice(i, 1);
      state.onlineCount = Math.max(state.online.length, state.onlineCount - 1);
    }
    renderOnline(state.online, state.onlineCount);
  }

  function renderOnline(nicks, count) {
    const items = nicks.map((nick) => {
      const li = node('li', nick === state.nick ? 'self' : '');
      li.append(avatar(nick, 'avatar small'), node('span', 'who', nick));
      if (nick === state.nick) li.append(node('span', 'you', 'you'));
      return li;
    });
    el.online.replaceChildren(...items);
    el.onlineCount.textContent = String(count === undefined ? nicks.length : count);
  }

  function showRoom(room) {
    el.roomName.textContent = room;
    el.input.placeholder = 'Message #' + room;
    el.roomInput.placeholder = room;
    document.title = '#' + room + ' · ws chat';
  }

  function showComposerError(text) {
    el.composerError.textContent = text;
    clearTimeout(state.errorTimer);
    state.errorTimer = setTimeout(() => { el.composerError.textContent = ''; },
      5000);
  }

  function showJoin(error) {
    el.join.hidden = false;
    el.joinError.textContent = error || '';
    el.joinBtn.disabled = false;
    el.joinBtn.textContent = 'Join';
    el.nick.focus();
    el.nick.select();
  }

  // ---- connection -----------------------------------------------------------

  function send(obj) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  function clearTimers() {
    clearTimeout(state.retryTimer);
    clearInterval(state.tickTimer);
    state.retryTimer = 0;
    state.tickTimer = 0;
  }

  function connect() {
    clearTimers();
    el.banner.hidden = true;
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    let ws;
    try {
      ws = new WebSocket(scheme + location.host + '/chat');
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    state.joined = false;
    setStatus('connecting', state.everJoined ? 'Reconnecting…' : 'Connecting…');
    ws.onopen = () => {
      if (state.ws === ws) send({ type: 'join', nick: state.nick, room: state.room });
    };
    ws.onmessage = (ev) => { if (state.ws === ws) handle(ev.data); };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      const wasJoined = state.joined;
      state.ws = null;
      state.joined = false;
      disconnected(wasJoined);
    };
  }

  function disconnected(wasJoined) {
    setComposer(false);
    if (!state.wanted) {
      setStatus('offline', 'Offline');
      return;
    }
    if (wasJoined) {
      addNotice('Connection lost.', Date.now(), 'warn');
    } else if (!state.everJoined) {
      el.joinError.textContent = 'Cannot reach the server. Retrying…';
    }
    scheduleReconnect();
  }

  // Exponential backoff with jitter: half the step plus a random half, so
  // that many pages that lost the same server do not return in lockstep.
  function scheduleReconnect() {
    clearTimers();
    const step = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
    const delay = step / 2 + Math.random() * step / 2;
    state.attempt++;
    state.retryAt = Date.now() + delay;
    setStatus('offline', 'Disconnected');
    el.banner.hidden = false;
    tick();
    state.tickTimer = setInterval(tick, 250);
    state.retryTimer = setTimeout(connect, delay);
  }

  function tick() {
    const s = Math.max(1, Math.ceil((state.retryAt - Date.now()) / 1000));
    el.bannerText.textContent = 'Disconnected — reconnecting in ' + s + ' s…';
  }

  // ---- server messages -------------------------------------------------------

  function handle(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (!m || typeof m !== 'object') return;
    switch (m.type) {
      case 'welcome': welcome(m); break;
      case 'message': addMessage(m); break;
      case 'join': addNotice(m.nick + ' joined #' + m.room, m.ts); presence(m); break;
      case 'leave': addNotice(m.nick + ' left #' + m.room, m.ts); presence(m); break;
      case 'online': renderOnline(m.nicks || []); break; // older servers
      case 'error': serverError(m); break;
      default: break;
    }
  }

  function welcome(m) {
    const again = state.everJoined;
    const switched = again && m.room !== state.room;
    Object.assign(limits, m.limits || {});
    state.joined = true;
    state.everJoined = true;
    state.attempt = 0;
    state.nick = m.nick;
    state.room = m.room;
    state.last = null;
    clearTimers();
    try { localStorage.setItem('ws-chat-nick', m.nick); } catch (e) { /* private mode */ }
    history.replaceState(null, '', '#' + m.room);
    el.join.hidden = true;
    el.banner.hidden = true;
    el.me.hidden = false;
    el.me.textContent = m.nick;
    showRoom(m.room);
    el.messages.replaceChildren();
    for (const msg of m.history || []) addMessage(msg);
    if (again && !switched) addNotice('Reconnected.', m.ts, 'ok');
    else addNotice('You joined #' + m.room + '.', m.ts);
    state.online = (m.online || []).slice();
    state.onlineCount = typeof m.online_count === 'number' ? m.online_count : state.online.length;
    renderOnline(state.online, state.onlineCount);
    setStatus('online', 'Connected');
    setComposer(true);
    el.input.focus();
  }

  function serverError(m) {
    const code = String(m.code || '');
    const text = String(m.message || 'error');
    if (!state.joined && state.everJoined && code === 'nick_taken') {
      // Our previous connection may still hold the nick: try again soon.
      if (state.ws) state.ws.close();
      return;
    }
    if (!state.joined) {
      // A refused join: ask for another nick; the connection stays open
      // for the next try.
      state.wanted = false;
      showJoin(text);
      return;
    }
    if (code === 'rate_limited') {
      addNotice(text, Date.now(), 'error');
      return;
    }
    showComposerError(text);
  }

  // ---- user actions ----------------------------------------------------------

  el.joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const nick = el.nick.value.trim();
    const room = el.room.value.trim() || 'lobby';
    if (!nick) return showJoin('Please choose a nickname.');
    if (chars(nick) > limits.nick_max) return showJoin('A nickname has at most 24 characters.');
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(room)) return showJoin('A room name has 1-32 letters, digits, - or _.');
    state.nick = nick;
    state.room = room.toLowerCase();
    state.wanted = true;
    state.attempt = 0;
    el.joinError.textContent = '';
    el.joinBtn.disabled = true;
    el.joinBtn.textContent = 'Joining…';
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      send({ type: 'join', nick: state.nick, room: state.room });
    } else {
      connect();
    }
  });

  function submitMessage() {
    const text = el.input.value;
    if (!text.trim() || !state.joined) return;
    if (chars(text) > limits.text_max) {
      showComposerError('A message has at most ' + limits.text_max + ' characters.');
      return;
    }
    if (send({ type: 'say', text })) {
      el.input.value = '';
      resizeInput();
      updateCounter();
    }
  }

  el.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitMessage();
  });

  el.input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submitMessage();
    }
  });

  function resizeInput() {
    el.input.style.height = 'auto';
    el.input.style.height = Math.min(el.input.scrollHeight, 160) + 'px';
  }

  function updateCounter() {
    const left = limits.text_max - chars(el.input.value);
    el.counter.textContent = left < 100 ? String(left) : '';
    el.counter.classList.toggle('over', left < 0);
  }

  el.input.addEventListener('input', () => {
    resizeInput();
    updateCounter();
  });

  el.roomForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const room = el.roomInput.value.trim();
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(room)) {
      showComposerError('A room name has 1-32 letters, digits, - or _.');
      return;
    }
    if (send({ type: 'switch', room })) el.roomInput.value = '';
  });

  el.retry.addEventListener('click', () => connect());
  window.addEventListener('online', () => {
    if (state.wanted && !state.ws) connect();
  });

  // ---- start -------------------------------------------------------------------

  try { el.nick.value = localStorage.getItem('ws-chat-nick') || ''; } catch (e) { /* private mode */ }
  let fromHash = '';
  try { fromHash = decodeURIComponent(location.hash.slice(1)); } catch (e) { /* bad escape */ }
  el.room.value = /^[A-Za-z0-9_-]{1,32}$/.test(fromHash) ? fromHash : 'lobby';
  showRoom(el.room.value.toLowerCase());
  setStatus('offline', 'Offline');
  el.nick.focus();
})();
