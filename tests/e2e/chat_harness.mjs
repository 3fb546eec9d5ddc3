// Helpers of the browser end-to-end tests: start and stop ebb-chat, drive
// Debian's Chromium through playwright-core, wait on conditions with
// deadlines, save screenshots.
//
//   EBB_CHAT=build/debug/apps/ebb-chat/ebb-chat node --test tests/e2e/chat_e2e.mjs
//
// Environment: EBB_CHAT (the server binary, required), CHROMIUM (default
// /usr/bin/chromium), E2E_ARTIFACTS (screenshots; default ./artifacts).
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// playwright-core lives in tests/node_modules (tests/package.json).
const require = createRequire(path.join(HERE, '..', 'package.json'));
const {chromium} = require('playwright-core');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.resolve(process.env.E2E_ARTIFACTS || 'artifacts');

// Deadlines (ms), generous for a Debug build on a shared 2-core machine.
export const START_MS = 15000;
export const STEP_MS = 10000;
export const STOP_MS = 20000;

/** Resolves once `predicate()` is truthy; polls every `everyMs`. */
export async function waitFor(predicate, ms, what, everyMs = 25) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function serverBinary() {
  const p = process.env.EBB_CHAT;
  assert.ok(p, 'EBB_CHAT is not set (path of the ebb-chat binary)');
  const abs = path.resolve(p);
  assert.ok(fs.existsSync(abs), `EBB_CHAT: ${abs} does not exist`);
  return abs;
}

export function makeTempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** One ebb-chat process. Settings only from `env` (a clean environment). */
export class ChatServer {
  constructor({port, dataDir, workDir, env = {}}) {
    this.port = port;
    this.dataDir = dataDir;
    this.workDir = workDir;
    this.env = env;
    this.proc = null;
    this.log = '';
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const env = {};
    for (const [k, v] of Object.entries(process.env))
      if (!/^(SERVER_|WEBSOCKET_|SHUTDOWN_|HTTP_|HEALTH_|ADMIN_|CHAT_|LONGPOLL_|DATA_DIR)/.test(k))
        env[k] = v;
    Object.assign(env, {SERVER_HOST: '127.0.0.1', ...this.env});
    const proc = spawn(serverBinary(), ['--port', String(this.port), '--data-dir', this.dataDir], {
      cwd: this.workDir,  // an empty directory: no stray .env
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({code, signal})));
    const keep = (d) => {
      this.log += d;
      if (this.log.length > 200000) this.log = this.log.slice(-100000);
    };
    proc.stdout.setEncoding('utf8').on('data', keep);
    proc.stderr.setEncoding('utf8').on('data', keep);
    let exitedEarly = null;
    this.exited.then((e) => (exitedEarly = e));
    await waitFor(async () => {
      if (exitedEarly) throw new Error(`ebb-chat exited during start-up: ${JSON.stringify(exitedEarly)}\n${this.log}`);
      try {
        const r = await fetch(`${this.base}/health/ready`);
        return r.status === 200;
      } catch {
        return false;
      }
    }, START_MS, 'ebb-chat /health/ready');
  }

  /** SIGTERM, then the exit status (with a deadline). */
  async terminate() {
    this.proc.kill('SIGTERM');
    return this.waitExit();
  }

  async waitExit(ms = STOP_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`ebb-chat did not exit within ${ms} ms\n${this.log}`)), ms);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Last resort at the end of a test run. */
  kill() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }

  async stats() {
    const r = await fetch(`${this.base}/api/stats`);
    assert.equal(r.status, 200);
    return r.json();
  }
}

export async function launchBrowser() {
  assert.ok(fs.existsSync(CHROMIUM),
            `${CHROMIUM} not found: install Debian's chromium (scripts/setup.sh) or set CHROMIUM`);
  return chromium.launch({executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true});
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  await page.screenshot({path: path.join(ARTIFACTS, `${name}.png`), fullPage: false});
}
