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
const WebSocket = require('ws');

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

/**
 * This process's environment without any ebb-chat setting, plus `extra`: a
 * setting the caller does not give cannot leak in from the shell.
 */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(SERVER_|WEBSOCKET_|SHUTDOWN_|HTTP_|HEALTH_|ADMIN_|CHAT_|LONGPOLL_|DATA_DIR|EBB_LOG)/.test(k))
      env[k] = v;
  return Object.assign(env, extra);
}

/** The port in ebb-chat's "listening on http://HOST:PORT/" line, or null. */
export function announcedPort(log) {
  const m = /ebb-chat listening on http:\/\/[^\s/]+:(\d+)\//.exec(log);
  return m ? Number(m[1]) : null;
}

/**
 * One ebb-chat process in `workDir`. Settings only from `env` (a clean
 * environment). By default it gets --port and --data-dir and
 * SERVER_HOST=127.0.0.1; with `flags: false` it gets no flag and no setting
 * but `env` (and a `.env` the caller put in `workDir`), and `port` is learnt
 * from the line it prints once it listens.
 */
export class ChatServer {
  constructor({port = null, dataDir, workDir, env = {}, flags = true}) {
    this.port = port;
    this.dataDir = dataDir;
    this.workDir = workDir;
    this.env = env;
    this.flags = flags;
    this.proc = null;
    this.log = '';
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const env = cleanEnv(this.flags ? {SERVER_HOST: '127.0.0.1', ...this.env} : this.env);
    const args = this.flags ? ['--port', String(this.port), '--data-dir', this.dataDir] : [];
    this.log = '';
    const proc = spawn(serverBinary(), args, {
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
    const checkAlive = () => {
      if (exitedEarly) throw new Error(`ebb-chat exited during start-up: ${JSON.stringify(exitedEarly)}\n${this.log}`);
    };
    if (!this.flags) {
      this.announced = await waitFor(() => {
        checkAlive();
        return announcedPort(this.log);
      }, START_MS, 'ebb-chat to print the port it listens on');
      if (this.port === null) this.port = this.announced;
    }
    await waitFor(async () => {
      checkAlive();
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

  /** GET /metrics: the value of the sample `name` (no labels), or null. */
  async metric(name) {
    const r = await fetch(`${this.base}/metrics`);
    assert.equal(r.status, 200, 'GET /metrics');
    const text = await r.text();
    const line = text.split('\n').find((l) => l.startsWith(name + ' '));
    return line === undefined ? null : Number(line.slice(name.length + 1));
  }
}

/** Runs ebb-chat to its exit (start-up errors): {status, stdout, stderr}. */
export function runToExit(args, {cwd, env}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(serverBinary(), args, {cwd, env, stdio: ['ignore', 'pipe', 'pipe']});
    let stdout = '', stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`ebb-chat ${args.join(' ')} did not exit within ${START_MS} ms\n${stdout}${stderr}`));
    }, START_MS);
    proc.once('error', reject);
    proc.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({status, signal, stdout, stderr});
    });
  });
}

/**
 * `n` plain WebSocket sessions to `${base}/ws` that say nothing (they answer
 * pings and the Close), resolved once all are open. They never reconnect.
 */
export async function openQuietSockets(base, n) {
  const url = base.replace(/^http/, 'ws') + '/ws';
  return Promise.all(Array.from({length: n}, () => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`WebSocket to ${url} did not open within ${STEP_MS} ms`));
    }, STEP_MS);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  })));
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
