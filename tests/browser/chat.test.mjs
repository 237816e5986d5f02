// chat.test.mjs - the chat page in a real browser: Debian's chromium driven
// by playwright-core against build/ws_chat on a free 127.0.0.1 port. Two
// (then three) pages join, chat, see presence and leave notices; markup in
// messages and nicks stays text; the server is stopped and restarted on
// the same port and the pages reconnect by themselves. A screenshot goes
// to $BUILD/chat.png. Every wait is bounded; the server and the browser
// are stopped even when a step fails.
// All of it runs twice: over http/ws, and over https/wss with a test CA
// (tests/tls/make_certs.sh) that the browser trusts: it is added to the
// NSS database of a temporary HOME, where Chromium on Linux looks for
// trusted roots, so no certificate error is ignored.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  ROOT, BUILD, BIN, CHROMIUM, WAIT, BROWSER_ARGS, freePort, ChatServer,
  openPage as openPageIn, join, say, seeMessage, seeNotice, seeOnline,
} from './chat_pages.mjs';

const SHOT = path.join(BUILD, 'chat.png');
const XSS = '<img src=x onerror=alert(1)>';

// Certificates for 127.0.0.1 and a HOME whose NSS database trusts their
// CA; made once, removed at the end.
let tlsDir = null;
function tlsSetup() {
  if (tlsDir) return tlsDir;
  tlsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-browser-tls-'));
  execFileSync('sh', [path.join(ROOT, 'tests/tls/make_certs.sh'), tlsDir], { stdio: 'ignore' });
  const nss = path.join(tlsDir, 'home', '.pki', 'nssdb');
  fs.mkdirSync(nss, { recursive: true });
  execFileSync('certutil', ['-d', 'sql:' + nss, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', 'sql:' + nss, '-A', '-n', 'ws test CA', '-t', 'C,,',
    '-i', path.join(tlsDir, 'ca.pem')]);
  return tlsDir;
}

let server = null;
let browser = null;
const openPage = (origin, problems) => openPageIn(browser, origin, problems);

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (server) await server.stop();
  if (tlsDir) fs.rmSync(tlsDir, { recursive: true, force: true });
});

async function chatSuite(t, tls) {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: run make first`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  const problems = [];
  const certs = tls ? tlsSetup() : null;
  server = new ChatServer(await freePort(), certs);
  await server.start();
  const origin = `${tls ? 'https' : 'http'}://127.0.0.1:${server.port}`;
  // launch() makes a fresh temporary profile of its own and deletes it on
  // close; --user-data-dir is only for launchPersistentContext().
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    env: tls ? { ...process.env, HOME: path.join(certs, 'home') } : process.env,
    args: BROWSER_ARGS,
  });
  const alice = await openPage(origin, problems);
  const bob = await openPage(origin, problems);

  await t.test('two pages join with different nicks', async () => {
    await join(alice, 'alice');
    await join(bob, 'bob');
    await seeOnline(alice, ['alice', 'bob']);
    await seeOnline(bob, ['alice', 'bob']);
    await seeNotice(alice, 'bob joined #lobby');
    assert.equal(await alice.textContent('#online-count'), '2');
  });

  await t.test('the browser negotiated permessage-deflate', async () => {
    // RFC 7692: Chromium offers it on every socket; ws_chat accepts.
    const ext = await alice.evaluate((wait) => new Promise((resolve, reject) => {
      const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
      const ws = new WebSocket(scheme + location.host + '/chat');
      const timer = setTimeout(() => reject(new Error('no open')), wait);
      ws.onopen = () => { clearTimeout(timer); resolve(ws.url + ' ' + ws.extensions); ws.close(); };
      ws.onerror = () => { clearTimeout(timer); reject(new Error('socket error')); };
    }), WAIT);
    assert.match(ext, tls ? /^wss:\/\/\S+ permessage-deflate/ : /^ws:\/\/\S+ permessage-deflate/);
  });

  await t.test('a message typed in one page appears in the other', async () => {
    await say(alice, 'Hi Bob! The new build is green, café time?');
    await seeMessage(bob, 'Hi Bob! The new build is green, café time?', 'alice');
    await say(bob, 'Great, the chat reconnects on its own now.');
    await seeMessage(alice, 'Great, the chat reconnects on its own now.', 'bob');
    assert.equal(await alice.inputValue('#input'), '', 'Enter sent and cleared');
  });

  await t.test('markup in a message is shown as text', async () => {
    await say(alice, XSS);
    await seeMessage(bob, XSS, 'alice');
    await seeMessage(alice, XSS, 'alice');
    for (const page of [alice, bob]) {
      assert.equal(await page.locator('#messages img').count(), 0);
    }
    await say(bob, 'Ha, it shows up as plain text. Nice.');
    await seeMessage(alice, 'Ha, it shows up as plain text. Nice.', 'bob');
  });

  await t.test('screenshot', async () => {
    await alice.waitForTimeout(300); // let the last scroll settle
    const shot = tls ? SHOT.replace(/\.png$/, '-tls.png') : SHOT;
    await alice.screenshot({ path: shot });
    assert.ok(fs.statSync(shot).size > 10000, 'screenshot written');
  });

  await t.test('a taken nick is refused; markup in a nick is text; leave notice', async () => {
    const evilNick = '<i>eve</i>';
    const eve = await openPage(origin, problems);
    // A taken nick (in any case) is refused in the join dialog.
    await eve.fill('#nick', 'ALICE');
    await eve.click('#join-btn');
    await eve.waitForFunction(() => /already taken/
      .test(document.querySelector('#join-error').textContent));
    assert.ok(await eve.isVisible('#join-form'), 'join dialog stays open');
    await join(eve, evilNick);
    await seeOnline(alice, ['<i>eve</i>', 'alice', 'bob']);
    await seeNotice(alice, '<i>eve</i> joined #lobby');
    assert.equal(await alice.locator('#online i, #messages i').count(), 0);
    await eve.context().close();
    await seeNotice(alice, '<i>eve</i> left #lobby');
    await seeNotice(bob, '<i>eve</i> left #lobby');
    await seeOnline(bob, ['alice', 'bob']);
    // The server sends who is online once, in the welcome; the page keeps
    // the list and the count from the join and leave deltas since.
    for (const page of [alice, bob]) {
      await page.waitForFunction(() => document.querySelector('#online-count').textContent === '2');
    }
  });

  await t.test('stopping and restarting the server: pages reconnect', async () => {
    assert.equal(await server.stop(), 0, 'ws_chat exits 0 on SIGTERM');
    for (const page of [alice, bob]) {
      await page.waitForSelector('#banner', { state: 'visible' });
      await page.waitForFunction(() => /reconnecting in \d+ s/
        .test(document.querySelector('#banner-text').textContent));
      assert.equal(await page.getAttribute('#status', 'data-state'), 'offline');
      assert.ok(await page.isDisabled('#input'), 'composer disabled while offline');
    }
    await alice.waitForTimeout(1500); // stay down through a few retries
    await server.start();
    for (const page of [alice, bob]) {
      await page.waitForSelector('#status[data-state="online"]', { timeout: 20000 });
      await page.waitForSelector('#banner', { state: 'hidden' });
    }
    await seeOnline(alice, ['alice', 'bob']);
    await say(alice, 'Still here after the restart.');
    await seeMessage(bob, 'Still here after the restart.', 'alice');
  });

  await t.test('closing a page shows a leave notice in the other', async () => {
    await bob.context().close();
    await seeNotice(alice, 'bob left #lobby');
    await seeOnline(alice, ['alice']);
  });

  await t.test('no dialog, script error or CSP violation', () => {
    assert.deepEqual(problems, []);
  });

  await browser.close();
  browser = null;
  assert.equal(await server.stop(), 0, 'ws_chat exits 0 on SIGTERM');
  server = null;
}

test('chat page in chromium', { timeout: 120000 }, (t) => chatSuite(t, false));

// page.goto() fails on a certificate the browser does not trust, so each
// page that loads proves the CA is trusted, not an error ignored.
test('chat page in chromium over https and wss', { timeout: 120000 },
  (t) => chatSuite(t, true));
