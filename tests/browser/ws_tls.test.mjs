// ws_tls.test.mjs - npm ws over wss:// against build/ws_echo with the test
// CA's certificate (tests/tls/make_certs.sh, in a temporary directory),
// the client verifying it: text and binary from 0 B to 8 MiB with and
// without permessage-deflate, fragmented sends, 50 clients at once, a
// close code, and a client that does not trust the CA (refused by the
// client, the server serving the next one). The server runs on a free
// 127.0.0.1 port, is stopped by PID, and every wait is bounded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD = path.resolve(ROOT, process.env.BUILD || 'build');
const WAIT = 20000;
const CERTS = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-npm-tls-'));
execFileSync('sh', [path.join(ROOT, 'tests/tls/make_certs.sh'), CERTS], { stdio: 'ignore' });
const CA = fs.readFileSync(path.join(CERTS, 'ca.pem'));

after(() => fs.rmSync(CERTS, { recursive: true, force: true }));

// Start ws_echo with TLS on port 0 and read the port from its banner.
function startEcho(args = []) {
  const proc = spawn(path.join(BUILD, 'ws_echo'),
    ['--host', '127.0.0.1', '--port', '0', '--tls-cert', path.join(CERTS, 'server.pem'),
      '--tls-key', path.join(CERTS, 'server.key'), ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (c) => { log += c; });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('no banner')); }, WAIT);
    proc.stdout.on('data', (c) => {
      out += c;
      const m = /listening on 127\.0\.0\.1 port (\d+) \(TLS\)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ proc, port: Number(m[1]), log: () => log }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error('exited ' + code + log)); });
  });
}

function stop(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), WAIT);
    proc.on('exit', (code) => { clearTimeout(timer); resolve(code); });
    proc.kill('SIGTERM');
  });
}

function open(port, opts = {}) {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/`, { ca: CA, maxPayload: 0, ...opts });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no open')), WAIT);
    ws.on('open', () => { clearTimeout(timer); resolve(ws); });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function echo(ws, m, pieces) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo')), WAIT);
    ws.once('message', (data, isBinary) => { clearTimeout(timer); resolve({ data, isBinary }); });
    if (!pieces) ws.send(m);
    else pieces.forEach((p, i) => ws.send(p, { fin: i === pieces.length - 1 }));
  });
}

function closed(ws, code) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no close')), WAIT);
    ws.once('close', (c) => { clearTimeout(timer); resolve(c); });
    ws.close(code);
  });
}

const SIZES = [0, 1, 125, 126, 65536, 1 << 20, 8 << 20];

for (const pmd of [false, { threshold: 0 }]) {
  test(`npm ws over wss, permessage-deflate ${pmd ? 'on' : 'off'}`, { timeout: 120000 }, async (t) => {
    const { proc, port } = await startEcho();
    try {
      const ws = await open(port, { perMessageDeflate: pmd });
      assert.equal(ws.extensions.length > 0, !!pmd);
      await t.test('text and binary, 0 B to 8 MiB', async () => {
        for (const n of SIZES) {
          const bin = crypto.randomBytes(n);
          let r = await echo(ws, bin);
          assert.ok(r.isBinary && Buffer.compare(r.data, bin) === 0, `binary ${n}`);
          const text = 'wss ✓ '.repeat(Math.ceil(n / 8)).slice(0, n);
          r = await echo(ws, text);
          assert.ok(!r.isBinary && r.data.toString() === text, `text ${n}`);
        }
      });
      await t.test('fragmented sends', async () => {
        const r = await echo(ws, null, ['frag', 'ment', 'ed ✓']);
        assert.equal(r.data.toString(), 'fragmented ✓');
      });
      await t.test('50 clients at once', async () => {
        await Promise.all(Array.from({ length: 50 }, async (_, i) => {
          const c = await open(port, { perMessageDeflate: pmd });
          const r = await echo(c, `client ${i}`.repeat(i + 1));
          assert.equal(r.data.toString(), `client ${i}`.repeat(i + 1));
          assert.equal(await closed(c, 1000), 1000);
        }));
      });
      await t.test('a close code is echoed', async () => {
        assert.equal(await closed(ws, 4001), 4001);
      });
      await t.test('a client that does not trust the CA is refused, the next served', async () => {
        await assert.rejects(open(port, { ca: undefined }), /self[- ]signed|unable to (get|verify)/);
        const c = await open(port);
        assert.equal((await echo(c, 'after')).data.toString(), 'after');
        await closed(c, 1000);
      });
    } finally {
      assert.equal(await stop(proc), 0, 'ws_echo exits 0');
    }
  });
}
