// shutdown.test.mjs - the graceful shutdown of build/ws_echo seen by real
// browser sockets: Debian's chromium (playwright-core) opens 50 WebSockets
// in one page, each echoing once, and a 51st in a worker that sends 8 MiB
// and then blocks in a synchronous XMLHttpRequest to a page server of this
// test, so that it reads nothing: the server's output queue for it backs
// up (seen in /proc/net/tcp). SIGTERM then; the worker is let go; all 51
// must report wasClean true with code 1001 (RFC 6455 §7.4.1), the worker
// after its whole echo, and ws_echo must exit 0 before the close timeout.
// Every wait is for an event and bounded; the server and the browser are
// stopped even when a step fails.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD = path.resolve(ROOT, process.env.BUILD || 'build');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 20000;
const SOCKETS = 50;
const BIG = 8 << 20;
const CLOSE_TIMEOUT_MS = 20000;

// The worker: one socket, 8 MiB out, then blocked until /hold answers.
const WORKER = `
const url = new URL(location.href).searchParams.get('ws');
const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
// A checksum of 32-bit words, to compare the echo with what was sent.
function sum(buf) {
  const w = new Uint32Array(buf);
  let h = 0;
  for (let i = 0; i < w.length; i++) h = (Math.imul(h, 31) + w[i]) | 0;
  return h;
}
let sent = 0;
const got = { len: -1, same: false };
ws.onmessage = (e) => { got.len = e.data.byteLength; got.same = sum(e.data) === sent; };
ws.onclose = (e) => postMessage({ kind: 'close', code: e.code, wasClean: e.wasClean,
  reason: e.reason, ...got });
ws.onerror = () => postMessage({ kind: 'error' });
ws.onopen = () => postMessage({ kind: 'open' });
onmessage = () => {
  const big = new Uint8Array(${BIG});
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  sent = sum(big.buffer);
  ws.send(big);
  // Once all of it has left the page, stop reading: a synchronous request
  // holds this thread (and so the socket's messages) until it is answered.
  const wait = () => {
    if (ws.bufferedAmount > 0) { setTimeout(wait, 5); return; }
    postMessage({ kind: 'sent' });
    const xhr = new XMLHttpRequest();
    xhr.open('GET', '/hold', false);
    xhr.send();
    postMessage({ kind: 'released', status: xhr.status });
  };
  wait();
};
`;

const PAGE = `<!doctype html><meta charset="utf-8"><title>shutdown</title>
<script>
window.closes = [];
window.events = [];
// One socket open and echoing; its close is recorded.
const openOne = (url, i) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  ws.onopen = () => ws.send('socket ' + i);
  ws.onmessage = (e) => {
    if (e.data === 'socket ' + i) resolve();
    else reject(new Error(e.data));
  };
  ws.onerror = () => reject(new Error('socket ' + i + ' failed'));
  ws.onclose = (e) => window.closes.push({ i, code: e.code, wasClean: e.wasClean,
    reason: e.reason });
});
// One after the other: Chromium delays a new socket more the more of
// them are still connecting (its per-process throttle).
window.openAll = async (url, n) => {
  for (let i = 0; i < n; i++) await openOne(url, i);
};
window.startWorker = (url) => new Promise((resolve, reject) => {
  const w = new Worker('/worker.js?ws=' + encodeURIComponent(url));
  w.onmessage = (e) => {
    window.events.push(e.data);
    if (e.data.kind === 'open') resolve();
    if (e.data.kind === 'error') reject(new Error('worker socket failed'));
  };
  w.onerror = (e) => reject(new Error('worker: ' + e.message));
  window.worker = w;
});
</script>`;

// The page, the worker and /hold, which answers only when released.
function pageServer() {
  const held = [];
  const srv = http.createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(PAGE);
    } else if (req.url.startsWith('/worker.js')) {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(WORKER);
    } else if (req.url === '/hold') {
      held.push(res);
      srv.emit('held');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  srv.release = () => {
    for (const res of held.splice(0)) res.end('go');
  };
  srv.heldCount = () => held.length;
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

// ws_echo on a free port, its stdout kept line by line.
function startEcho() {
  const proc = spawn(path.join(BUILD, 'ws_echo'), ['--host', '127.0.0.1', '--port', '0',
    '--verbose', '--close-timeout', String(CLOSE_TIMEOUT_MS)],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  const state = { proc, lines: [], log: '', waiters: [] };
  let partial = '';
  proc.stdout.on('data', (c) => {
    partial += c;
    const parts = partial.split('\n');
    partial = parts.pop();
    state.lines.push(...parts);
    for (const w of state.waiters.slice()) w();
  });
  proc.stderr.on('data', (c) => { state.log += c; });
  return state;
}

// Resolve with the first stdout line that matches re (bounded).
function waitLine(state, re, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const line = state.lines.find((l) => re.test(l));
      if (line === undefined) return false;
      clearTimeout(timer);
      state.waiters.splice(state.waiters.indexOf(check), 1);
      resolve(line);
      return true;
    };
    const timer = setTimeout(() => {
      state.waiters.splice(state.waiters.indexOf(check), 1);
      reject(new Error('no ' + what + ' line; stderr: ' + state.log));
    }, WAIT);
    state.waiters.push(check);
    check();
  });
}

// The exit code and how long after `since` it came (bounded).
function exited(proc, since) {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode, ms: 0 });
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ws_echo did not exit')), CLOSE_TIMEOUT_MS * 2);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ms: Date.now() - since });
    });
  });
}

// The largest send queue among ws_echo's sockets on port (/proc/net/tcp:
// local address, remote, state, tx_queue:rx_queue).
function sendQueue(port) {
  const want = ':' + port.toString(16).toUpperCase().padStart(4, '0');
  let most = 0;
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 4 && f[1].endsWith(want) && f[3] === '01') {
      most = Math.max(most, parseInt(f[4].split(':')[0], 16));
    }
  }
  return most;
}

// Poll (bounded) until cond() is true: for a state the kernel shows, which
// raises no event of its own.
async function until(cond, what) {
  const end = Date.now() + WAIT;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let browser = null;
let echo = null;
let pages = null;

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (echo && echo.proc.exitCode === null && echo.proc.signalCode === null) {
    echo.proc.kill('SIGKILL');
  }
  if (pages) {
    pages.release();
    pages.closeAllConnections();
    pages.close();
  }
});

test('graceful shutdown: 50 Chromium sockets and a blocked 8 MiB echo close cleanly with 1001',
  { timeout: 120000 }, async () => {
    assert.ok(fs.existsSync(path.join(BUILD, 'ws_echo')), 'ws_echo is missing: run make first');
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    pages = await pageServer();
    echo = startEcho();
    const banner = await waitLine(echo, /^ws_echo listening on 127\.0\.0\.1 port \d+/, 'banner');
    const port = Number(banner.match(/port (\d+)/)[1]);
    const url = `ws://127.0.0.1:${port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      args: ['--no-sandbox', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-gpu',
        '--no-first-run', '--disable-dev-shm-usage'],
    });
    const page = await browser.newPage();
    page.setDefaultTimeout(WAIT);
    const problems = [];
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    await page.goto(`http://127.0.0.1:${pages.address().port}/`);

    await page.evaluate(([u, n]) => window.openAll(u, n), [url, SOCKETS]);
    await page.evaluate((u) => window.startWorker(u), url);
    const held = new Promise((resolve) => pages.once('held', resolve));
    await page.evaluate(() => window.worker.postMessage('go'));
    // The worker is blocked, and ws_echo has read the 8 MiB: on_message
    // logs before it queues the echo, so the echo is queued before the
    // shutdown can begin.
    await held;
    await waitLine(echo, new RegExp(`^binary ${BIG} bytes from `), 'big message');
    await until(() => sendQueue(port) > 0, 'the echo to back up');

    const t0 = Date.now();
    const exit = exited(echo.proc, t0);
    echo.proc.kill('SIGTERM');
    // The 50 others hear first: their closes do not wait for the worker.
    await page.waitForFunction((n) => window.closes.length === n, SOCKETS, { timeout: WAIT });
    const waited = echo.proc.exitCode === null && echo.proc.signalCode === null;
    pages.release();
    await page.waitForFunction(() => window.events.some((e) => e.kind === 'close'), null,
      { timeout: WAIT });

    const closes = await page.evaluate(() => window.closes);
    const unclean = closes.filter((c) => !c.wasClean || c.code !== 1001);
    assert.deepEqual(unclean, [], 'every page socket closed cleanly with 1001');
    const events = await page.evaluate(() => window.events);
    const big = events.find((e) => e.kind === 'close');
    assert.equal(big.len, BIG, 'the whole 8 MiB echo arrived before the close');
    assert.ok(big.same, 'the echo is what was sent');
    assert.equal(big.wasClean, true, 'the blocked socket closed cleanly');
    assert.equal(big.code, 1001);
    assert.equal(big.reason, 'server shutdown');
    assert.ok(waited, 'ws_echo waited for the blocked socket');
    const { code, signal, ms } = await exit;
    assert.equal(signal, null);
    assert.equal(code, 0, 'ws_echo exits 0: ' + echo.log);
    assert.ok(ms < CLOSE_TIMEOUT_MS / 2, `ws_echo exited ${ms} ms after SIGTERM`);
    const serverCloses = echo.lines.filter((l) => l.startsWith('close '));
    assert.equal(serverCloses.length, SOCKETS + 1);
    assert.ok(serverCloses.every((l) => l.split(' ')[2] === '1001'), serverCloses.join('\n'));
    assert.deepEqual(problems, []);
  });
