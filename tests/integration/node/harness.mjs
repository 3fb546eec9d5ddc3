// Shared harness of the Node integration tests (echo_test.mjs, drain_test.mjs):
// Node's `ws` client (and hand-written raw frames over
// node:net) against examples/echo_server, checked against RFC 6455, RFC 7692
// and the echo_server contract (Close 1001 and exit 0 on SIGTERM).
//
//   ECHO_SERVER=build/integ/examples/echo_server node --test tests/integration/node/echo_test.mjs
//
// Every test starts its own server on a free port (WEBSOCKET_PORT=0) bound to
// 127.0.0.1, in an empty working directory (so no stray .env is read), and
// stops it with SIGTERM, asserting a clean exit. Every wait has a deadline.
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {after, describe, test} from 'node:test';
import {fileURLToPath} from 'node:url';
import zlib from 'node:zlib';

const require = createRequire(import.meta.url);
export const WebSocket = require('ws');

export const HERE = path.dirname(fileURLToPath(import.meta.url));
// Absolute: the server runs in a scratch working directory.
export const ECHO_SERVER = process.env.ECHO_SERVER ?
    path.resolve(process.env.ECHO_SERVER) :
    path.resolve(HERE, '../../../build/integ/examples/echo_server');
export const MiB = 1 << 20;
export const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

// Deadlines (ms). Generous enough for a Debug build on a shared 2-core box.
export const START_MS = 10000;
export const STOP_MS = 10000;
export const STEP_MS = 5000;
export const BIG_MS = 60000;
export const TEST_MS = 120000;

// ---------------------------------------------------------------- deadlines

/** Resolves like `promise`, or rejects naming `what` after `ms`. */
export function withDeadline(promise, ms, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** FIFO of events with deadline-bounded reads; end() fails current and later reads. */
export class AsyncQueue {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.waiters = [];
    this.endError = null;
  }
  push(item) {
    const w = this.waiters.shift();
    if (w)
      w.resolve(item);
    else
      this.items.push(item);
  }
  end(error) {
    this.endError = error;
    for (const w of this.waiters.splice(0)) w.reject(error);
  }
  next(ms = STEP_MS) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    if (this.endError) return Promise.reject(this.endError);
    let waiter;
    const p = new Promise((resolve, reject) => {
      waiter = {resolve, reject};
      this.waiters.push(waiter);
    });
    return withDeadline(p, ms, `next ${this.name}`).catch((e) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw e;
    });
  }
}

// ---------------------------------------------------------------- data

/** Deterministic, non-periodic-at-256 byte pattern. */
export function pattern(n, seed = 0) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >>> 8) * 13 + (i >>> 16) * 29 + seed) & 0xff;
  return b;
}

/** Byte-for-byte comparison that reports the first difference, not megabytes of diff. */
export function assertSameBytes(actual, expected, what) {
  const a = Buffer.from(actual);
  if (a.length !== expected.length) {
    assert.fail(`${what}: length ${a.length}, expected ${expected.length}`);
  }
  if (!a.equals(expected)) {
    let i = 0;
    while (a[i] === expected[i]) i++;
    assert.fail(`${what}: first difference at byte ${i}: got ${a[i]}, expected ${expected[i]}`);
  }
}

/** String equality that reports the first difference, not the whole strings. */
export function assertSameText(actual, expected, what = 'text echo') {
  if (actual === expected) return;
  let i = 0;
  while (actual[i] === expected[i]) i++;
  const around = (t) => JSON.stringify(t.slice(Math.max(0, i - 8), i + 24));
  assert.fail(
      `${what}: ${actual.length} chars (expected ${expected.length}), first difference at ` +
          `char ${i}: got ${around(actual)}, expected ${around(expected)}`,
  );
}

/** About `n` bytes of highly compressible, deterministic text. */
export function compressibleText(n) {
  const parts = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const line = `line ${i % 1000}: the quick brown fox jumps over the lazy dog\n`;
    parts.push(line);
    len += line.length;
  }
  return parts.join('').slice(0, n);
}

// ---------------------------------------------------------------- server

export const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebb-integ-node-'));
export const liveServers = new Set();

after(() => {
  for (const srv of liveServers) srv.proc.kill('SIGKILL');
  fs.rmSync(workDir, {recursive: true, force: true});
});

/** Environment for the server: ours only, never inherited WEBSOCKET_* knobs. */
export function serverEnv(overrides) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('WEBSOCKET_') && !k.startsWith('SERVER_')) env[k] = v;
  }
  return {...env, WEBSOCKET_PORT: '0', WEBSOCKET_HOST: '127.0.0.1', ...overrides};
}

export class EchoServer {
  constructor(proc) {
    this.proc = proc;
    this.stdout = '';
    this.stderr = '';
    this.clients = new Set();
    this.exited = new Promise(
        (resolve) => proc.once('exit', (code, signal) => resolve({code, signal})),
    );
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => (this.stdout += d));
    proc.stderr.on('data', (d) => {
      this.stderr += d;
      if (this.stderr.length > 16384) this.stderr = this.stderr.slice(-8192);
    });
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/`;
  }

  tail() {
    return `\n--- server stderr (tail) ---\n${this.stderr.slice(-4000)}`;
  }

  async waitListening() {
    const listening = new Promise((resolve, reject) => {
      const check = () => {
        const m = /echo_server listening on port (\d+)/.exec(this.stdout);
        if (m) resolve(Number(m[1]));
      };
      this.proc.stdout.on('data', check);
      check();
      this.exited.then(
          ({code, signal}) => reject(
              new Error(`echo_server exited (code ${code}, signal ${signal}) before listening`)),
      );
      this.proc.once('error', reject);
    });
    try {
      this.port = await withDeadline(listening, START_MS, 'echo_server to listen');
    } catch (e) {
      this.proc.kill('SIGKILL');
      e.message += this.tail();
      throw e;
    }
    assert.ok(this.port > 0, `bad port ${this.port}`);
  }

  /** SIGTERM, then the exit status; SIGKILL and throw if it does not exit in time. */
  /**
   * Sends SIGTERM once. A second SIGTERM means "force the drain now" to
   * echo_server (exit status 3), so stop() never repeats one a test sent.
   */
  terminate() {
    if (this.terminated || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.terminated = true;
    this.proc.kill('SIGTERM');
  }

  async stop() {
    this.terminate();
    try {
      return await withDeadline(this.exited, STOP_MS, 'echo_server to exit after SIGTERM');
    } catch (e) {
      this.proc.kill('SIGKILL');
      e.message += this.tail();
      throw e;
    } finally {
      liveServers.delete(this);
      for (const c of this.clients) c.destroy();
    }
  }

  /** A `ws` client, opened. */
  async connect(protocols, options = {}) {
    const c =
        new Client(new WebSocket(this.url, protocols, {handshakeTimeout: STEP_MS, ...options}));
    this.clients.add(c);
    await c.opened();
    return c;
  }

  /** A plain TCP connection to the server. */
  async tcp() {
    const c = await RawConn.connect(this.port);
    this.clients.add(c);
    return c;
  }

  /** A raw connection after a successful opening handshake. */
  async rawWebSocket(extraHeaders = []) {
    const c = await this.tcp();
    c.write(handshakeRequest(this.port, {extra: extraHeaders}));
    const res = await c.readHttpHead();
    assert.equal(res.status, 101, `upgrade refused: ${res.statusLine}`);
    assert.equal(res.headers['sec-websocket-accept'], RFC_ACCEPT);
    c.response = res;
    return c;
  }
}

export async function startServer(env = {}) {
  assert.ok(
      fs.existsSync(ECHO_SERVER), `echo_server not found at ${ECHO_SERVER} (set ECHO_SERVER)`);
  const proc = spawn(ECHO_SERVER, [], {
    cwd: workDir,
    env: serverEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const srv = new EchoServer(proc);
  liveServers.add(srv);
  await srv.waitListening();
  return srv;
}

/**
 * Runs `body(server)` against a fresh server, then stops it with SIGTERM and
 * asserts it exits 0. A failure in `body` wins over one in stopping.
 */
export async function withServer(env, body) {
  const srv = await startServer(env);
  let exit;
  try {
    await body(srv);
  } catch (e) {
    await srv.stop().catch(() => {});
    e.message += srv.tail();
    throw e;
  }
  exit = await srv.stop();
  assert.deepEqual(exit, {code: 0, signal: null}, `echo_server did not exit cleanly${srv.tail()}`);
}

// ---------------------------------------------------------------- ws client

export class Client {
  constructor(ws) {
    this.ws = ws;
    this.messages = new AsyncQueue('message');
    this.pings = new AsyncQueue('ping');
    this.pongs = new AsyncQueue('pong');
    this.errors = [];
    ws.on('message', (data, isBinary) => this.messages.push({data, isBinary}));
    ws.on('ping', (data) => this.pings.push(data));
    ws.on('pong', (data) => this.pongs.push(data));
    ws.on('error', (e) => this.errors.push(e));
    this.closed = new Promise(
        (resolve) => ws.once(
            'close',
            (code, reason) => {
              const info = {code, reason: reason.toString()};
              const err = new Error(`connection closed (code ${code}, reason '${info.reason}')`);
              this.messages.end(err);
              this.pings.end(err);
              this.pongs.end(err);
              resolve(info);
            }),
    );
  }

  opened() {
    const p = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    return withDeadline(p, STEP_MS, 'WebSocket open');
  }

  send(data, options = {}) {
    return new Promise(
        (resolve, reject) => this.ws.send(data, options, (e) => (e ? reject(e) : resolve())),
    );
  }

  recv(ms = STEP_MS) {
    return this.messages.next(ms);
  }

  async recvText(ms = STEP_MS) {
    const m = await this.recv(ms);
    assert.equal(m.isBinary, false, 'expected a text message');
    return m.data.toString('utf8');
  }

  async recvBinary(ms = STEP_MS) {
    const m = await this.recv(ms);
    assert.equal(m.isBinary, true, 'expected a binary message');
    return m.data;
  }

  /** Echo round trip of one text message. */
  async echoText(text, ms = STEP_MS) {
    await this.send(text);
    assertSameText(await this.recvText(ms), text);
  }

  waitClosed(ms = STEP_MS) {
    return withDeadline(this.closed, ms, 'close event');
  }

  /** Waits for the close event and asserts the code the server sent. */
  async expectClose(code, ms = STEP_MS) {
    const info = await this.waitClosed(ms);
    const errors = this.errors.map((e) => e.code || e.message).join(', ');
    assert.equal(
        info.code,
        code,
        `close code ${info.code} (reason '${info.reason}'), expected ${code}` +
            (errors ? `; client errors: ${errors}` : ''),
    );
    return info;
  }

  destroy() {
    this.ws.terminate();
  }
}

// ---------------------------------------------------------------- raw frames

export const OP = {
  cont: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa
};

/** One frame; masked unless `mask: false`. `rsv` is the 3-bit RSV1..3 field. */
export function buildFrame({fin = true, rsv = 0, opcode, payload = Buffer.alloc(0), mask = true}) {
  payload = Buffer.from(payload);
  const len = payload.length;
  const head = [(fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0xf)];
  const maskBit = mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (len < 126) {
    head.push(maskBit | len);
  } else if (len < 65536) {
    head.push(maskBit | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(len);
  } else {
    head.push(maskBit | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(len));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), ext, key, body]);
}

export function closePayload(code, reason = '') {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.isBuffer(reason) ? reason : Buffer.from(reason)]);
}

/**
 * Inflates the server's compressed messages of one connection. With context
 * takeover each message continues one raw deflate stream that the sender
 * sync-flushed, so inflating all payloads so far (each with its 00 00 ff ff
 * tail restored) and cutting off the earlier output decodes the newest.
 */
export class MessageInflater {
  constructor() {
    this.input = [];
    this.outputLength = 0;
  }
  inflate(payload) {
    this.input.push(payload, Buffer.from([0, 0, 0xff, 0xff]));
    const all = zlib.inflateRawSync(Buffer.concat(this.input), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    const message = all.subarray(this.outputLength);
    this.outputLength = all.length;
    return message;
  }
}

/** {frame, used} when `buf` starts with a whole frame, else undefined. */
export function parseFrame(buf) {
  if (buf.length < 2) return undefined;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  const masked = (buf[1] & 0x80) !== 0;
  let key = null;
  if (masked) {
    if (buf.length < off + 4) return undefined;
    key = buf.subarray(off, off + 4);
    off += 4;
  }
  if (buf.length < off + len) return undefined;
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (key)
    for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
  const frame = {
    fin: (buf[0] & 0x80) !== 0,
    rsv: (buf[0] >> 4) & 7,
    opcode: buf[0] & 0xf,
    masked,
    payload,
  };
  return {frame, used: off + len};
}

export function handshakeRequest(port, {method = 'GET', headers = {}, extra = []} = {}) {
  const base = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': RFC_KEY,
    'Sec-WebSocket-Version': '13',
  };
  const merged = {...base, ...headers};
  const lines = [`${method} / HTTP/1.1`];
  for (const [k, v] of Object.entries(merged))
    if (v !== null) lines.push(`${k}: ${v}`);
  lines.push(...extra);
  return lines.join('\r\n') + '\r\n\r\n';
}

/** A TCP connection with deadline-bounded reads of HTTP heads and frames. */
export class RawConn {
  static connect(port) {
    const socket = net.connect({host: '127.0.0.1', port});
    const c = new RawConn(socket);
    const p = new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(c));
      socket.once('error', reject);
    });
    return withDeadline(p, STEP_MS, 'TCP connect');
  }

  constructor(socket) {
    this.socket = socket;
    this.chunks = [];
    this.size = 0;
    this.ended = false;
    this.wake = null;
    socket.on('data', (d) => {
      this.chunks.push(d);
      this.size += d.length;
      this.notify();
    });
    // Writes after the server hung up may fail; reads report the end.
    socket.on('error', (e) => {
      this.error = e;
      this.notify();
    });
    this.closed = new Promise(
        (resolve) => socket.once(
            'close',
            () => {
              this.ended = true;
              this.notify();
              resolve();
            }),
    );
  }

  notify() {
    const w = this.wake;
    this.wake = null;
    if (w) w();
  }

  buffer() {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] || Buffer.alloc(0);
  }

  consume(n) {
    const b = this.buffer();
    this.chunks = n < b.length ? [b.subarray(n)] : [];
    this.size -= n;
  }

  /** Waits until `take(buffer)` returns a value; bounded by `ms`. */
  async until(take, ms, what) {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = take(this.buffer());
      if (r !== undefined) return r;
      if (this.ended) {
        throw new Error(
            `connection closed while waiting for ${what} (${this.size} bytes buffered)`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      let timer;
      await new Promise((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  write(data) {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  sendFrame(spec) {
    this.write(buildFrame(spec));
  }

  async readHttpHead(ms = STEP_MS) {
    const head = await this.until(
        (b) => {
          const end = b.indexOf('\r\n\r\n');
          if (end < 0) return undefined;
          this.consume(end + 4);
          return b.subarray(0, end).toString('latin1');
        },
        ms,
        'HTTP response head',
    );
    const [statusLine, ...lines] = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    assert.ok(m, `bad status line: ${statusLine}`);
    const headers = {};
    for (const line of lines) {
      const i = line.indexOf(':');
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    return {status: Number(m[1]), statusLine, headers};
  }

  readFrame(ms = STEP_MS) {
    return this.until(
        (b) => {
          const r = parseFrame(b);
          if (!r) return undefined;
          this.consume(r.used);
          return r.frame;
        },
        ms,
        'a frame',
    );
  }

  /**
   * Reads until the server's Close frame, asserts its code, answers it and
   * asserts the server then closes the TCP connection.
   */
  async expectClose(code, ms = STEP_MS) {
    let f;
    const seen = [];
    for (;;) {
      f = await this.readFrame(ms);
      if (f.opcode === OP.close) break;
      seen.push(f.opcode);
      assert.ok(seen.length < 100, `no Close frame, opcodes seen: ${seen}`);
    }
    assert.equal(f.masked, false, 'server frames must not be masked');
    assert.equal(f.fin, true, 'Close frame must not be fragmented');
    assert.ok(
        f.payload.length >= 2,
        `Close frame without status code (payload ${f.payload.length} bytes)`);
    const got = f.payload.readUInt16BE(0);
    const reason = f.payload.subarray(2).toString();
    assert.equal(got, code, `close code ${got} (reason '${reason}'), expected ${code}`);
    this.sendFrame({opcode: OP.close, payload: closePayload(code)});
    await this.waitEnd(ms);
    return {code: got, reason};
  }

  waitEnd(ms = STEP_MS) {
    return withDeadline(this.closed, ms, 'the server to close the TCP connection');
  }

  destroy() {
    this.socket.destroy();
  }
}

// ======================================================================
// Echo
// ======================================================================

