// chat_redis.test.mjs - the chat across instances in a real browser: a
// redis-server started here (127.0.0.1, a free port, no persistence,
// stopped by PID) and two build/ws_chat --redis instances on two ports;
// a page on each sees the other's messages, joins, presence and the
// shared history, and a nick taken on one is refused on the other. Then
// a third instance joins the second's port (--reuse-port) and the second
// is SIGKILLed: its user leaves the first page's list within the presence
// TTL, and its page reconnects by itself, to the instance that is left on
// its port, and rejoins with its nick. Every wait is bounded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { chromium } from 'playwright-core';
import {
  BIN, CHROMIUM, WAIT, BROWSER_ARGS, freePort, ChatServer, openPage, join,
  say, seeMessage, seeNotice, seeOnline,
} from './chat_pages.mjs';

const REDIS = '/usr/bin/redis-server';
const TTL = 2; // --presence-ttl, seconds

// True once redis-server on port answers PING.
function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(500, () => { s.destroy(); resolve(false); });
    s.on('error', () => resolve(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
  });
}

async function startRedis(port) {
  const proc = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    if (await ping(port)) return proc;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

const servers = [];
let redis = null;
let browser = null;

after(async () => {
  if (browser) await browser.close().catch(() => {});
  for (const s of servers) await s.stop();
  if (redis && redis.exitCode === null) redis.kill('SIGTERM');
});

async function instance(port, redisPort) {
  const s = new ChatServer(port, null, ['--redis', '127.0.0.1:' + redisPort,
    '--presence-ttl', String(TTL), '--reuse-port']);
  servers.push(s);
  await s.start();
  await s.waitUp();
  return s;
}

test('chat across two ws_chat instances through Redis, in chromium',
  { timeout: 120000, skip: !fs.existsSync(REDIS) && 'redis-server not installed' },
  async (t) => {
    assert.ok(fs.existsSync(BIN), `${BIN} is missing: run make first`);
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    const redisPort = await freePort();
    redis = await startRedis(redisPort);
    const one = await instance(await freePort(), redisPort);
    const two = await instance(await freePort(), redisPort);
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true, timeout: 30000, args: BROWSER_ARGS,
    });
    const problems = [];
    const ann = await openPage(browser, 'http://127.0.0.1:' + one.port, problems);
    const bo = await openPage(browser, 'http://127.0.0.1:' + two.port, problems);

    await t.test('pages on two instances share history, presence and messages', async () => {
      await join(ann, 'ann');
      await say(ann, 'said before bo came');
      await seeMessage(ann, 'said before bo came', 'ann');
      await join(bo, 'bo');
      await seeMessage(bo, 'said before bo came', 'ann'); // history from Redis
      await seeOnline(bo, ['ann', 'bo']);
      await seeOnline(ann, ['ann', 'bo']);
      await seeNotice(ann, 'bo joined #lobby');
      await say(bo, 'hello from the second instance');
      await seeMessage(ann, 'hello from the second instance', 'bo');
      await say(ann, 'hello from the first');
      await seeMessage(bo, 'hello from the first', 'ann');
    });

    await t.test('a nick taken on one instance is refused on the other', async () => {
      const eve = await openPage(browser, 'http://127.0.0.1:' + two.port, problems);
      await eve.fill('#nick', 'ANN');
      await eve.click('#join-btn');
      await eve.waitForFunction(() => /already taken/
        .test(document.querySelector('#join-error').textContent));
      await eve.context().close();
    });

    await t.test('a killed instance: its user leaves, its page moves and rejoins', async () => {
      servers.push(new ChatServer(two.port, null, ['--redis', '127.0.0.1:' + redisPort,
        '--presence-ttl', String(TTL), '--reuse-port']));
      const three = servers[servers.length - 1];
      await three.start(); // on two's port, beside it
      await three.waitUp();
      const t0 = Date.now();
      await two.kill();
      await seeNotice(ann, 'bo left #lobby');
      // Within the TTL and a third, plus a loaded machine's scheduling.
      assert.ok(Date.now() - t0 < (TTL * 4 / 3 + 3) * 1000, `left after ${Date.now() - t0} ms`);
      await bo.waitForSelector('#status[data-state="online"]', { timeout: 20000 });
      await seeOnline(ann, ['ann', 'bo']);
      await seeOnline(bo, ['ann', 'bo']);
      await seeMessage(bo, 'hello from the first', 'ann'); // history again
      await say(bo, 'back, on the third instance');
      await seeMessage(ann, 'back, on the third instance', 'bo');
      assert.match(three.log, /join {3}bo #lobby/);
    });

    await t.test('no dialog, script error or CSP violation', () => {
      assert.deepEqual(problems, []);
    });

    await browser.close();
    browser = null;
    for (const s of servers.splice(0)) {
      const code = await s.stop();
      assert.ok(code === 0 || code === null, `ws_chat exit ${code}`);
    }
  });
