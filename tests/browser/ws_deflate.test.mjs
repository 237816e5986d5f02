// ws_deflate.test.mjs - npm ws with perMessageDeflate against
// build/ws_echo (which turns permessage-deflate on), RFC 7692: the default
// offer and one-sided and window-limited ones, every message compressed
// (threshold 0), text and binary from 0 B to 4 MiB, fragmented sends, and
// close codes. The server runs on a free 127.0.0.1 port, is stopped by
// PID, and every wait is bounded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD = path.resolve(ROOT, process.env.BUILD || 'build');
const WAIT = 20000;

// Start ws_echo on port 0 and read the port it chose from its banner.
function startEcho(args = []) {
  const proc = spawn(path.join(BUILD, 'ws_echo'),
    ['--host', '127.0.0.1', '--port', '0', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('no banner')); }, WAIT);
    proc.stdout.on('data', (c) => {
      out += c;
      const m = /listening on 127\.0\.0\.1 port (\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ proc, port: Number(m[1]) }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error('exited ' + code)); });
  });
}

function stop(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), WAIT);
    proc.on('exit', () => { clearTimeout(timer); resolve(); });
    proc.kill('SIGTERM');
  });
}

function open(port, pmd) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: pmd, maxPayload: 0 });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no open')), WAIT);
    ws.on('open', () => { clearTimeout(timer); resolve(ws); });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// Send m (or its pieces) and wait for the echo.
function echo(ws, m, pieces) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo')), WAIT);
    ws.once('message', (data, isBinary) => {
      clearTimeout(timer);
      resolve({ data, isBinary });
    });
    if (!pieces) {
      ws.send(m);
      return;
    }
    pieces.forEach((p, i) => ws.send(p, { fin: i === pieces.length - 1 }));
  });
}

const OFFERS = [
  ['default', { threshold: 0 }],
  ['serverNoContextTakeover', { threshold: 0, serverNoContextTakeover: true }],
  ['clientNoContextTakeover', { threshold: 0, clientNoContextTakeover: true }],
  ['windows 10/9', { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 9 }],
];
const SIZES = [0, 1, 100, 65536, 1 << 20, 4 << 20];

for (const flags of [[], ['--deflate-context']]) {
  test(`npm ws perMessageDeflate against ws_echo ${flags.join(' ')}`, { timeout: 120000 }, async (t) => {
    const { proc, port } = await startEcho(flags);
    after(() => stop(proc));
    for (const [label, pmd] of OFFERS) {
      await t.test(label, async () => {
        const ws = await open(port, pmd);
        assert.match(ws.extensions, /^permessage-deflate/);
        for (const n of SIZES) {
          const bin = crypto.randomBytes(n);
          let r = await echo(ws, bin);
          assert.ok(r.isBinary && Buffer.compare(r.data, bin) === 0, `binary ${n}`);
          const text = 'grüße, 日本語 '.repeat(Math.ceil(n / 20) + 1).slice(0, n);
          r = await echo(ws, text);
          assert.ok(!r.isBinary && r.data.toString() === text, `text ${n}`);
        }
        const parts = ['ab', 'cd'.repeat(5000), 'ef'];
        const r = await echo(ws, null, parts);
        assert.equal(r.data.toString(), parts.join(''));
        const code = await new Promise((resolve) => {
          ws.on('close', (c) => resolve(c));
          ws.close(4002, 'done');
        });
        assert.equal(code, 4002);
      });
    }
    await stop(proc);
  });
}
