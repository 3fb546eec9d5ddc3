// Helpers for the process-level tests of the example programs
// (attached_runtime_test.mjs, examples_test.mjs): start a program with a
// clean environment in the harness's scratch directory, learn its ports,
// talk HTTP and WebSocket to it, and wait on conditions with deadlines.
// Every program still alive when the test file ends is SIGKILLed by the
// harness's after() hook (liveServers).
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import {
  Client,
  handshakeRequest,
  liveServers,
  START_MS,
  STEP_MS,
  WebSocket,
  withDeadline,
  workDir,
} from './harness.mjs';

/** Absolute path of a program named by environment variable `envName`. */
export function programPath(envName) {
  const p = process.env[envName];
  assert.ok(p, `${envName} is not set (path of the program under test)`);
  const abs = path.resolve(p);
  assert.ok(fs.existsSync(abs), `${envName}: ${abs} does not exist`);
  return abs;
}

// Knobs a developer's shell may hold that would change what is tested.
const OUR_PREFIXES = ['WEBSOCKET_', 'SERVER_', 'SHUTDOWN_', 'HTTP_', 'HEALTH_', 'ADMIN_', 'EBB_'];

/** The program's environment: ours only, bound to 127.0.0.1, on any free port. */
export function programEnv(overrides = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env))
    if (!OUR_PREFIXES.some((p) => k.startsWith(p))) env[k] = v;
  return {
    ...env,
    SERVER_HOST: '127.0.0.1',
    SERVER_PORT: '0',
    WEBSOCKET_HOST: '127.0.0.1',
    WEBSOCKET_PORT: '0',
    ...overrides,
  };
}

/** Resolves once `predicate()` (sync or async) is truthy; polls every `everyMs`. */
export async function waitFor(predicate, ms, what, everyMs = 10) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export class Program {
  constructor(file, {env = {}, args = []} = {}) {
    this.name = path.basename(file);
    this.proc =
        spawn(file, args, {cwd: workDir, env: programEnv(env), stdio: ['ignore', 'pipe', 'pipe']});
    this.stdout = '';
    this.stderr = '';
    this.signalsSent = 0;
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => {
      liveServers.delete(this);
      resolve({code, signal});
    }));
    this.proc.once('error', (e) => (this.spawnError = e));
    this.proc.stdout.setEncoding('utf8');
    this.proc.stderr.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => (this.stdout += d));
    this.proc.stderr.on('data', (d) => {
      this.stderr += d;
      if (this.stderr.length > 65536) this.stderr = this.stderr.slice(-32768);
    });
    this.clients = new Set();
    liveServers.add(this);
  }

  get running() {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  tail() {
    return `\n--- ${this.name} stdout ---\n${this.stdout.slice(-2000)}` +
        `\n--- ${this.name} stderr (tail) ---\n${this.stderr.slice(-4000)}`;
  }

  /** The first match of `re` in stdout; fails early if the program exits first. */
  async waitStdout(re, ms = START_MS) {
    await waitFor(
        () => re.test(this.stdout) || !this.running, ms, `${re} on ${this.name}'s stdout`);
    const m = re.exec(this.stdout);
    if (!m) {
      const {code, signal} = await this.exited;
      throw new Error(
          `${this.name} exited (code ${code}, signal ${signal}) before printing ${re}` +
          this.tail());
    }
    return m;
  }

  /** Sends a signal; every call sends one (a second SIGTERM means "force"). */
  signal(sig = 'SIGTERM') {
    if (!this.running) return;
    this.signalsSent++;
    this.proc.kill(sig);
  }

  /** The exit {code, signal}, or a failure after `ms` (and the program is killed). */
  async exitWithin(ms) {
    try {
      return await withDeadline(this.exited, ms, `${this.name} to exit`);
    } catch (e) {
      this.proc.kill('SIGKILL');
      e.message += this.tail();
      throw e;
    }
  }

  /** SIGTERM (unless one was sent), then asserts exit status 0 within `ms`. */
  async stopClean(ms = 10000) {
    if (this.signalsSent === 0) this.signal('SIGTERM');
    const exit = await this.exitWithin(ms);
    for (const c of this.clients) c.destroy();
    assert.deepEqual(
        exit, {code: 0, signal: null}, `${this.name} did not exit cleanly${this.tail()}`);
  }

  /** A harness Client (Node `ws`), open. */
  async connect(url) {
    const c = new Client(new WebSocket(url, {handshakeTimeout: STEP_MS}));
    this.clients.add(c);
    await c.opened();
    return c;
  }

  kill() {
    this.proc.kill('SIGKILL');
    for (const c of this.clients) c.destroy();
  }
}

/**
 * Runs `body(program)`; on failure kills the program and appends its output
 * to the error, so that a failing test says what the server said.
 */
export async function withProgram(program, body) {
  try {
    return await body(program);
  } catch (e) {
    program.kill();
    if (!String(e.message).includes(`--- ${program.name} stdout`)) e.message += program.tail();
    throw e;
  }
}

// ---------------------------------------------------------------- HTTP

/**
 * One request on a fresh connection (no agent: each request must be a NEW
 * connection to test what the listener does). `sent` resolves once
 * the request is written; `response` with {status, headers, body} or rejects
 * with the socket error (ECONNREFUSED, ECONNRESET, ...).
 */
export function httpRequest(port, target, {method = 'GET', ms = STEP_MS, keepAlive = false} = {}) {
  let req;
  // Without an agent Node asks for Connection: close; a test of what the
  // server says about the connection must ask to keep it instead.
  const headers = keepAlive ? {Connection: 'keep-alive'} : {};
  const sent = new Promise((resolve, reject) => {
    req = http.request({host: '127.0.0.1', port, path: target, method, agent: false, headers});
    req.once('finish', resolve);
    req.once('error', reject);
  });
  const response = new Promise((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.once('end', () => {
        resolve({status: res.statusCode, headers: res.headers, body});
        // No agent will reuse it. res.socket is null once the server has
        // closed the connection itself: destroy through the request.
        if (keepAlive) req.destroy();
      });
      res.once('error', reject);
      res.once('aborted', () => reject(new Error('response aborted')));
    });
    req.end();
  });
  sent.catch(() => {});  // reported through `response`
  return {sent, response: withDeadline(response, ms, `${method} ${target}`), request: req};
}

export async function httpGet(port, target, options) {
  return httpRequest(port, target, options).response;
}

export async function httpJson(port, target, options) {
  const r = await httpRequest(port, target, options).response;
  return {...r, json: JSON.parse(r.body)};
}

/** 'connected' or the error code of a plain TCP connect (e.g. 'ECONNREFUSED'). */
export function tcpProbe(port, ms = STEP_MS) {
  const attempt = new Promise((resolve) => {
    const s = net.connect({host: '127.0.0.1', port});
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e) => resolve(e.code || e.message));
  });
  return withDeadline(attempt, ms, `TCP connect to ${port}`);
}

/**
 * A WebSocket client that completes the upgrade and then ignores everything:
 * it never answers a Close and keeps its side open after the server's FIN
 * (allowHalfOpen), so only a forced end can finish it.
 */
export async function stubbornClient(port, target = '/') {
  const socket = net.connect({host: '127.0.0.1', port, allowHalfOpen: true});
  const c = {socket, bytes: Buffer.alloc(0)};
  socket.on('data', (d) => (c.bytes = Buffer.concat([c.bytes, d])));
  socket.on('error', () => {});
  c.closed = new Promise((resolve) => socket.once('close', resolve));
  await withDeadline(new Promise((r) => socket.once('connect', r)), STEP_MS, 'connect');
  const req = handshakeRequest(port).replace('GET / HTTP/1.1', `GET ${target} HTTP/1.1`);
  socket.write(req);
  await waitFor(() => c.bytes.includes('\r\n\r\n'), STEP_MS, '101 response');
  assert.match(c.bytes.toString('latin1'), /^HTTP\/1\.1 101/);
  c.bytes = c.bytes.subarray(c.bytes.indexOf('\r\n\r\n') + 4);
  // A server Close frame: 0x88, 7-bit length, code 1001 (0x03e9).
  c.sawClose1001 = () => {
    for (let i = 0; i + 3 < c.bytes.length; ++i)
      if (c.bytes[i] === 0x88 && c.bytes.readUInt16BE(i + 2) === 1001) return true;
    return false;
  };
  c.destroy = () => socket.destroy();
  return c;
}

/**
 * A port that was free a moment ago (the kernel picks it; we release it).
 * Another process may take it before the program binds it: callers retry
 * on a bind failure.
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** True when GET /health/ready answers 200 now. */
export async function isReady(port) {
  try {
    return (await httpGet(port, '/health/ready', {ms: 1000})).status === 200;
  } catch {
    return false;
  }
}

/**
 * Starts an ebb::App program on free ports (SERVER_PORT, and WEBSOCKET_PORT
 * unless `wsOnAppPort`) and waits until GET /health/ready answers 200.
 * Retries with other ports when the program could not bind (someone took
 * the free port in between). The program gets .httpPort and .wsPort.
 */
export async function startApp(file, env = {}, {wsOnAppPort = false} = {}) {
  for (let attempt = 1;; attempt++) {
    const httpPort = await freePort();
    const wsPort = wsOnAppPort ? 0 : await freePort();
    const p = new Program(file, {
      env: {SERVER_PORT: String(httpPort), WEBSOCKET_PORT: String(wsPort), ...env},
    });
    await waitFor(
        async () => !p.running || (await isReady(httpPort)), START_MS,
        `${p.name} to be ready on port ${httpPort}`)
        .catch((e) => {
          p.kill();
          e.message += p.tail();
          throw e;
        });
    if (p.running) {
      p.httpPort = httpPort;
      p.wsPort = wsPort;
      return p;
    }
    const exit = await p.exited;
    if (exit.code === 1 && /cannot listen/.test(p.stderr) && attempt < 3) continue;
    assert.fail(`${p.name} exited at start-up (${JSON.stringify(exit)})${p.tail()}`);
  }
}
