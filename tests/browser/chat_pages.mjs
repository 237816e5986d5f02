// chat_pages.mjs - what the browser tests of the chat share: a free port,
// a ws_chat process started and stopped by PID (with any extra flags),
// and the steps a user takes on the page (join, say) and waits for what
// it shows (a message, a notice, who is online). Every wait is bounded.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD = path.resolve(ROOT, process.env.BUILD || 'build');
export const BIN = path.join(BUILD, 'ws_chat');
export const WWW = path.join(ROOT, 'www');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const WAIT = 10000; // ms, for any one thing to show up on a page
export const BROWSER_ARGS = ['--no-sandbox', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-gpu',
  '--no-first-run', '--disable-dev-shm-usage'];

// A port that was free a moment ago.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// One ws_chat process, started and stopped by PID.
export class ChatServer {
  constructor(port, tls, extra = []) {
    this.port = port;
    this.tls = tls;
    this.extra = extra; // more flags: --redis, --reuse-port
    this.up = 0; // "redis ... up" lines seen
    this.proc = null;
    this.log = '';
  }

  // Start and wait (bounded) for the banner; retry while the port is busy.
  async start() {
    for (let i = 0; i < 20; i++) {
      if (await this.tryStart()) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('ws_chat did not start:\n' + this.log);
  }

  tryStart() {
    const tlsArgs = this.tls ? ['--tls-cert', path.join(this.tls, 'server.pem'),
      '--tls-key', path.join(this.tls, 'server.key')] : [];
    const proc = spawn(BIN, ['--host', '127.0.0.1', '--port', String(this.port),
      '--www', WWW, ...tlsArgs, ...this.extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { proc.kill('SIGKILL'); resolve(false); }, WAIT);
      const onData = (chunk) => {
        this.log += chunk;
        this.up = (this.log.match(/^redis \S+ up$/gm) || []).length;
        if (this.log.includes('ws_chat listening on 127.0.0.1 port ' + this.port)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', (c) => { this.log += c; });
      proc.on('exit', () => { clearTimeout(timer); resolve(false); });
    });
  }

  // Until the bridge to Redis is up count times (bounded).
  async waitUp(count = 1) {
    for (let i = 0; this.up < count; i++) {
      if (i * 20 > WAIT) throw new Error('redis never up:\n' + this.log);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // SIGKILL by PID: the instance dies without a word to anyone.
  kill() {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      proc.on('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  // SIGTERM by PID; resolves with the exit code (SIGKILL after a timeout).
  stop() {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
      return Promise.resolve(proc ? proc.exitCode : null);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), WAIT);
      proc.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolve(signal ? signal : code);
      });
      proc.kill('SIGTERM');
    });
  }
}

// A page that records dialogs and script errors, which must not happen.
export async function openPage(browser, origin, problems) {
  const context = await browser.newContext({
    viewport: { width: 1100, height: 680 },
    deviceScaleFactor: 1,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('dialog', (d) => { problems.push('dialog: ' + d.message()); d.dismiss(); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket connection|ERR_CONNECTION_REFUSED/.test(m.text())) {
      problems.push('console error: ' + m.text());
    }
  });
  await page.goto(origin + '/');
  return page;
}

export async function join(page, nick, room = 'lobby') {
  await page.fill('#nick', nick);
  await page.fill('#room', room);
  await page.click('#join-btn');
  await page.waitForSelector('#status[data-state="online"]');
  await page.waitForSelector('#join', { state: 'hidden' });
}

export async function say(page, text) {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
}

// Wait until a message with exactly this text (and author) is shown.
export async function seeMessage(page, text, nick) {
  await page.waitForFunction(([t, n]) => {
    for (const li of document.querySelectorAll('#messages li.msg')) {
      if (li.querySelector('.text').textContent === t && (!n || li.dataset.nick === n)) return true;
    }
    return false;
  }, [text, nick], { timeout: WAIT });
}

export async function seeNotice(page, text) {
  await page.waitForFunction((t) => [...document.querySelectorAll('#messages li.notice .notice-text')]
    .some((n) => n.textContent === t), text, { timeout: WAIT });
}

export async function seeOnline(page, nicks) {
  await page.waitForFunction((want) => {
    const got = [...document.querySelectorAll('#online li .who')].map((n) => n.textContent);
    return JSON.stringify(got) === JSON.stringify(want);
  }, nicks, { timeout: WAIT });
}

