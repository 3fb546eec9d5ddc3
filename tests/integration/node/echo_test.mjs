// Integration tests: Node's `ws` client (and hand-written raw frames over
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
const WebSocket = require('ws');

const HERE = path.dirname(fileURLToPath(import.meta.url));
// Absolute: the server runs in a scratch working directory.
const ECHO_SERVER = process.env.ECHO_SERVER ?
    path.resolve(process.env.ECHO_SERVER) :
    path.resolve(HERE, '../../../build/integ/examples/echo_server');
const MiB = 1 << 20;
const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

// Deadlines (ms). Generous enough for a Debug build on a shared 2-core box.
const START_MS = 10000;
const STOP_MS = 10000;
const STEP_MS = 5000;
const BIG_MS = 60000;
const TEST_MS = 120000;

// ---------------------------------------------------------------- deadlines

/** Resolves like `promise`, or rejects naming `what` after `ms`. */
function withDeadline(promise, ms, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** FIFO of events with deadline-bounded reads; end() fails current and later reads. */
class AsyncQueue {
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
function pattern(n, seed = 0) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >>> 8) * 13 + (i >>> 16) * 29 + seed) & 0xff;
  return b;
}

/** Byte-for-byte comparison that reports the first difference, not megabytes of diff. */
function assertSameBytes(actual, expected, what) {
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
function assertSameText(actual, expected, what = 'text echo') {
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
function compressibleText(n) {
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

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebb-integ-node-'));
const liveServers = new Set();

after(() => {
  for (const srv of liveServers) srv.proc.kill('SIGKILL');
  fs.rmSync(workDir, {recursive: true, force: true});
});

/** Environment for the server: ours only, never inherited WEBSOCKET_* knobs. */
function serverEnv(overrides) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('WEBSOCKET_') && !k.startsWith('SERVER_')) env[k] = v;
  }
  return {...env, WEBSOCKET_PORT: '0', WEBSOCKET_HOST: '127.0.0.1', ...overrides};
}

class EchoServer {
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
  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
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

async function startServer(env = {}) {
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
async function withServer(env, body) {
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

class Client {
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

const OP = {
  cont: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa
};

/** One frame; masked unless `mask: false`. `rsv` is the 3-bit RSV1..3 field. */
function buildFrame({fin = true, rsv = 0, opcode, payload = Buffer.alloc(0), mask = true}) {
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

function closePayload(code, reason = '') {
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
class MessageInflater {
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
function parseFrame(buf) {
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

function handshakeRequest(port, {method = 'GET', headers = {}, extra = []} = {}) {
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
class RawConn {
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

describe('echo', () => {
  test('text: ASCII, multi-byte UTF-8, empty', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const c = await srv.connect();
      await c.echoText('hello, world');
      await c.echoText('héllo wörld — 日本語 ∑ 🎉 \u{10FFFF}');
      await c.echoText('');
      await c.echoText('x'.repeat(200));
    });
  });

  test('binary: sizes 0 .. 16 MiB byte for byte', {timeout: 4 * TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const c = await srv.connect();
      for (const size of [0, 1, 125, 126, 127, 65535, 65536, MiB, 16 * MiB]) {
        const data = pattern(size, size & 0xff);
        await c.send(data);
        const got = await c.recvBinary(BIG_MS);
        assertSameBytes(got, data, `binary echo of ${size} bytes`);
      }
    });
  });

  test('16 MiB + 1 byte exceeds the default limit: close 1009', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const c = await srv.connect();
      c.send(pattern(16 * MiB + 1)).catch(() => {});
      await c.expectClose(1009, BIG_MS);
    });
  });

  test('10,000 small messages come back in order', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const c = await srv.connect();
      const n = 10000;
      for (let i = 0; i < n; i++) c.ws.send(i % 2 ? `m${i}` : Buffer.from(`b${i}`));
      for (let i = 0; i < n; i++) {
        const m = await c.recv(BIG_MS);
        assert.equal(m.isBinary, i % 2 === 0, `message ${i} kind`);
        assert.equal(m.data.toString(), i % 2 ? `m${i}` : `b${i}`, `message ${i} out of order`);
      }
    });
  });

  test('many clients echo concurrently without crosstalk', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const clients = await Promise.all(Array.from({length: 20}, () => srv.connect()));
      const perClient = 50;
      clients.forEach((c, k) => {
        for (let i = 0; i < perClient; i++) c.ws.send(`c${k}-m${i}`);
      });
      await Promise.all(
          clients.map(async (c, k) => {
            for (let i = 0; i < perClient; i++)
              assert.equal(await c.recvText(BIG_MS), `c${k}-m${i}`);
          }),
      );
    });
  });

  test('fragmented messages arrive as one echo', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const c = await srv.connect();
      // Text split inside a multi-byte character: UTF-8 is checked per message.
      const text = Buffer.from('fragmented €uro text 🎉', 'utf8');
      const cut1 = text.indexOf(0xe2) + 1;  // inside '€'
      const cut2 = text.length - 2;         // inside the emoji
      await c.send(text.subarray(0, cut1), {binary: false, fin: false});
      await c.send(text.subarray(cut1, cut2), {binary: false, fin: false});
      await c.send(text.subarray(cut2), {binary: false, fin: true});
      assert.equal(await c.recvText(), text.toString('utf8'));

      const bin = pattern(3000, 5);
      await c.send(bin.subarray(0, 1000), {binary: true, fin: false});
      await c.send(bin.subarray(1000, 2000), {binary: true, fin: false});
      await c.send(bin.subarray(2000), {binary: true, fin: true});
      assertSameBytes(await c.recvBinary(), bin, 'fragmented binary echo');

      // Exactly one echo each: the next message is the sentinel.
      await c.echoText('sentinel');
    });
  });
});

// ======================================================================
// Ping / pong
// ======================================================================

describe('ping/pong', () => {
  test(
      'client ping is answered with a pong carrying the same payload', {timeout: TEST_MS},
      async () => {
        await withServer({}, async (srv) => {
          const c = await srv.connect();
          c.ws.ping(Buffer.from('are you there?'));
          assert.equal((await c.pongs.next()).toString(), 'are you there?');
          c.ws.ping();
          assert.equal((await c.pongs.next()).length, 0);
          await c.echoText('still open');
        });
      });

  test(
      'server pings every WEBSOCKET_PING_INTERVAL_MS; answered pings keep the session',
      {timeout: TEST_MS}, async () => {
        const env = {WEBSOCKET_PING_INTERVAL_MS: '200', WEBSOCKET_PONG_TIMEOUT_MS: '1000'};
        await withServer(env, async (srv) => {
          const c = await srv.connect();
          // ws answers each ping itself; 8 pings span well past the pong timeout.
          for (let i = 0; i < 8; i++) await c.pings.next(3000);
          await c.echoText('alive after pings');
        });
      });

  test('a client that never answers pings is disconnected', {timeout: TEST_MS}, async () => {
    const env = {WEBSOCKET_PING_INTERVAL_MS: '200', WEBSOCKET_PONG_TIMEOUT_MS: '300'};
    await withServer(env, async (srv) => {
      const c = await srv.connect(undefined, {autoPong: false});
      // RFC 6455 leaves the code open; the connection must simply end.
      await c.waitClosed(5000);
    });
  });
});

// ======================================================================
// permessage-deflate (RFC 7692)
// ======================================================================

describe('compression', () => {
  test(
      'on: negotiated, 1 MiB compressible text and binary echo intact', {timeout: TEST_MS},
      async () => {
        await withServer({WEBSOCKET_DEFLATE: 'true'}, async (srv) => {
          const c = await srv.connect(undefined, {perMessageDeflate: {threshold: 0}});
          assert.match(c.ws.extensions, /permessage-deflate/);
          const text = compressibleText(MiB);
          await c.echoText(text, BIG_MS);
          await c.echoText('small');
          await c.echoText('');  // empty message compressed
          const bin = Buffer.from(compressibleText(MiB / 2));
          await c.send(bin);
          assertSameBytes(await c.recvBinary(BIG_MS), bin, 'compressed binary echo');
          const noise = pattern(100000, 9);  // barely compressible
          await c.send(noise);
          assertSameBytes(await c.recvBinary(BIG_MS), noise, 'incompressible binary echo');
          // Context takeover across messages: the same text again.
          await c.echoText(text, BIG_MS);
        });
      });

  const DEFLATE_OFFER = ['Sec-WebSocket-Extensions: permessage-deflate'];

  test(
      'on: the server compresses what it sends (RSV1, context takeover)', {timeout: TEST_MS},
      async () => {
        await withServer({WEBSOCKET_DEFLATE: 'true'}, async (srv) => {
          const c = await srv.rawWebSocket(DEFLATE_OFFER);
          assert.match(c.response.headers['sec-websocket-extensions'] || '', /permessage-deflate/);
          const inflater = new MessageInflater();
          // Uncompressed messages are legal on a deflate session (RFC 7692 6.1),
          // so this isolates the server's compressor from its decompressor.
          for (const text of [compressibleText(100000), compressibleText(50000)]) {
            c.sendFrame({opcode: OP.text, payload: Buffer.from(text)});
            const f = await c.readFrame();
            assert.equal(f.opcode, OP.text);
            assert.equal(
                f.rsv, 4, 'echo of a large compressible message should be compressed (RSV1)');
            assert.ok(
                f.payload.length < text.length / 4, `compressed echo is ${f.payload.length} bytes`);
            assertSameText(inflater.inflate(f.payload).toString(), text, 'inflated echo');
          }
          c.sendFrame({opcode: OP.close, payload: closePayload(1000)});
          const close = await c.readFrame();
          assert.equal(close.opcode, OP.close);
          await c.waitEnd();
        });
      });

  test('on: the server inflates what the client compressed', {timeout: TEST_MS}, async () => {
    await withServer({WEBSOCKET_DEFLATE: 'true'}, async (srv) => {
      const c = await srv.rawWebSocket(DEFLATE_OFFER);
      const inflater = new MessageInflater();
      const text = 'hello '.repeat(20);
      // One self-contained message: raw deflate, sync flush, 00 00 ff ff dropped.
      const z = zlib.deflateRawSync(Buffer.from(text), {finishFlush: zlib.constants.Z_SYNC_FLUSH});
      c.sendFrame({opcode: OP.text, rsv: 4, payload: z.subarray(0, z.length - 4)});
      const f = await c.readFrame();
      assert.equal(f.opcode, OP.text);
      const echoed = f.rsv & 4 ? inflater.inflate(f.payload) : f.payload;
      assertSameText(echoed.toString(), text, 'echo of a compressed message');
    });
  });

  test(
      'on: message size limit applies after inflating: close 1009', {timeout: TEST_MS},
      async () => {
        const env = {WEBSOCKET_DEFLATE: 'true', WEBSOCKET_MAX_MESSAGE_SIZE: '1024'};
        await withServer(env, async (srv) => {
          const c = await srv.connect(undefined, {perMessageDeflate: {threshold: 0}});
          assert.match(c.ws.extensions, /permessage-deflate/);
          // Under the limit passes (content is checked by the tests above).
          await c.send('a'.repeat(1000));
          assert.equal((await c.recvText()).length, 1000);
          c.send('a'.repeat(100000)).catch(() => {});  // about 100 bytes on the wire
          await c.expectClose(1009);
        });
      });

  test('off on the server: not negotiated, echo works', {timeout: TEST_MS}, async () => {
    await withServer({WEBSOCKET_DEFLATE: 'false'}, async (srv) => {
      const c = await srv.connect(undefined, {perMessageDeflate: true});
      assert.equal(c.ws.extensions, '');
      const text = compressibleText(MiB);
      await c.echoText(text, BIG_MS);
    });
  });

  test('off on the client: not negotiated, echo works', {timeout: TEST_MS}, async () => {
    await withServer({WEBSOCKET_DEFLATE: 'true'}, async (srv) => {
      const c = await srv.connect(undefined, {perMessageDeflate: false});
      assert.equal(c.ws.extensions, '');
      await c.echoText(compressibleText(10000));
    });
  });

  test('on: RSV1 on a control frame is a protocol error', {timeout: TEST_MS}, async () => {
    await withServer({WEBSOCKET_DEFLATE: 'true'}, async (srv) => {
      const c = await srv.rawWebSocket(['Sec-WebSocket-Extensions: permessage-deflate']);
      c.sendFrame({opcode: OP.ping, rsv: 4, payload: Buffer.from('x')});
      await c.expectClose(1002);
    });
  });
});

// ======================================================================
// Subprotocols
// ======================================================================

describe('subprotocols', () => {
  const env = {WEBSOCKET_SUBPROTOCOLS: 'chat,superchat'};

  test('client offers superchat: superchat selected', {timeout: TEST_MS}, async () => {
    await withServer(env, async (srv) => {
      const c = await srv.connect(['superchat']);
      assert.equal(c.ws.protocol, 'superchat');
      await c.echoText('proto');
    });
  });

  test(
      'client offers superchat, chat: server preference order wins', {timeout: TEST_MS},
      async () => {
        await withServer(env, async (srv) => {
          const c = await srv.connect(['superchat', 'chat']);
          assert.equal(c.ws.protocol, 'chat');
        });
      });

  test('client offers none: no subprotocol', {timeout: TEST_MS}, async () => {
    await withServer(env, async (srv) => {
      const c = await srv.connect();
      assert.equal(c.ws.protocol, '');
      await c.echoText('no proto');
    });
  });

  test(
      'client offers only unknown: no Sec-WebSocket-Protocol selected', {timeout: TEST_MS},
      async () => {
        await withServer(env, async (srv) => {
          const c = await srv.tcp();
          c.write(handshakeRequest(srv.port, {headers: {'Sec-WebSocket-Protocol': 'nope, other'}}));
          const res = await c.readHttpHead();
          // RFC 6455 4.2.2: the server may accept without a subprotocol or refuse;
          // it must never select one the client did not offer.
          if (res.status === 101)
            assert.equal(res.headers['sec-websocket-protocol'], undefined);
          else
            assert.ok(res.status >= 400 && res.status < 500, res.statusLine);
        });
      });
});

// ======================================================================
// Close paths
// ======================================================================

describe('close', () => {
  test('client close 1000 with reason: server answers 1000', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const c = await srv.connect();
      await c.echoText('before close');
      c.ws.close(1000, 'bye now');
      await c.expectClose(1000);
    });
  });

  test('client close 4000: server echoes 4000', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const c = await srv.connect();
      c.ws.close(4000, 'app specific');
      await c.expectClose(4000);
    });
  });

  test(
      'client close without status: server answers an empty or 1000 Close', {timeout: TEST_MS},
      async () => {
        await withServer({}, async (srv) => {
          const c = await srv.rawWebSocket();
          c.sendFrame({opcode: OP.close});
          const f = await c.readFrame();
          assert.equal(f.opcode, OP.close);
          if (f.payload.length) assert.equal(f.payload.readUInt16BE(0), 1000);
          await c.waitEnd();
        });
      });

  test(
      'SIGTERM: every client gets Close 1001 and the server exits 0', {timeout: TEST_MS},
      async () => {
        const srv = await startServer({});
        let clients;
        try {
          clients = await Promise.all([srv.connect(), srv.connect(), srv.connect()]);
          for (const c of clients) await c.echoText('hi');
        } catch (e) {
          await srv.stop().catch(() => {});
          throw e;
        }
        srv.proc.kill('SIGTERM');
        const closes = await Promise.all(clients.map((c) => c.waitClosed(STOP_MS)));
        const exit = await srv.stop();
        for (const {code} of closes) assert.equal(code, 1001);
        assert.deepEqual(exit, {code: 0, signal: null}, `unclean exit${srv.tail()}`);
      });

  test(
      'SIGTERM: a raw client sees Close 1001 and then the server closes TCP', {timeout: TEST_MS},
      async () => {
        const srv = await startServer({});
        try {
          const c = await srv.rawWebSocket();
          srv.proc.kill('SIGTERM');
          await c.expectClose(1001, STOP_MS);
        } finally {
          const exit = await srv.stop();
          assert.deepEqual(exit, {code: 0, signal: null}, `unclean exit${srv.tail()}`);
        }
      });

  test(
      'SIGTERM: a client that never answers the Close is cut off after WEBSOCKET_CLOSE_WAIT_MS',
      {timeout: TEST_MS}, async () => {
        const srv = await startServer({WEBSOCKET_CLOSE_WAIT_MS: '300'});
        try {
          const c = await srv.rawWebSocket();
          srv.proc.kill('SIGTERM');
          const f = await c.readFrame(STOP_MS);
          assert.equal(f.opcode, OP.close);
          assert.equal(f.payload.readUInt16BE(0), 1001);
          const t0 = Date.now();
          await c.waitEnd(3000);  // no Close reply from us
          assert.ok(Date.now() - t0 < 3000);
        } finally {
          const exit = await srv.stop();
          assert.deepEqual(exit, {code: 0, signal: null}, `unclean exit${srv.tail()}`);
        }
      });

  test('idle timeout: a silent client is disconnected', {timeout: TEST_MS}, async () => {
    await withServer({WEBSOCKET_IDLE_TIMEOUT_MS: '300'}, async (srv) => {
      const c = await srv.connect();
      await c.echoText('then silence');
      await c.waitClosed(3000);  // RFC 6455 leaves the code to the server
      const d = await srv.connect();
      await d.echoText('server still serving');
    });
  });

  test('SIGTERM with no clients: exits 0 promptly', {timeout: TEST_MS}, async () => {
    const srv = await startServer({});
    const t0 = Date.now();
    const exit = await srv.stop();
    assert.deepEqual(exit, {code: 0, signal: null});
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  });

  test(
      'oversize message (max 1024, send 2000): close 1009; 1024 is fine', {timeout: TEST_MS},
      async () => {
        await withServer({WEBSOCKET_MAX_MESSAGE_SIZE: '1024'}, async (srv) => {
          const c = await srv.connect();
          const ok = pattern(1024, 3);
          await c.send(ok);
          assertSameBytes(await c.recvBinary(), ok, 'message at the limit');
          c.send(pattern(2000)).catch(() => {});
          await c.expectClose(1009);
          // The server survives and serves others.
          const d = await srv.connect();
          await d.echoText('next client');
        });
      });

  test(
      'oversize fragmented message (3 x 600 bytes, max 1024): close 1009', {timeout: TEST_MS},
      async () => {
        await withServer({WEBSOCKET_MAX_MESSAGE_SIZE: '1024'}, async (srv) => {
          const c = await srv.connect();
          c.send(pattern(600), {binary: true, fin: false}).catch(() => {});
          c.send(pattern(600), {binary: true, fin: false}).catch(() => {});
          c.send(pattern(600), {binary: true, fin: true}).catch(() => {});
          await c.expectClose(1009);
        });
      });

  test('invalid UTF-8 text: close 1007', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const c = await srv.connect();
      // ws does not validate outgoing text, so the bytes reach the server as is.
      c.send(Buffer.from([0x68, 0x69, 0xc3, 0x28]), {binary: false}).catch(() => {});
      await c.expectClose(1007);
    });
  });

  for (const [name, bytes] of [
           ['overlong encoding', [0xc0, 0xaf]],
           ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
           ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
           ['truncated at message end', [0x61, 0xe2, 0x82]],
  ]) {
    test(`invalid UTF-8 text (${name}): close 1007`, {timeout: TEST_MS}, async () => {
      await withServer({}, async (srv) => {
        const c = await srv.rawWebSocket();
        c.sendFrame({opcode: OP.text, payload: Buffer.from(bytes)});
        await c.expectClose(1007);
      });
    });
  }

  test('invalid UTF-8 split over fragments: close 1007', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const c = await srv.rawWebSocket();
      c.sendFrame({opcode: OP.text, fin: false, payload: Buffer.from([0x61, 0xe2])});
      c.sendFrame({opcode: OP.cont, fin: true, payload: Buffer.from([0x28, 0xa1])});
      await c.expectClose(1007);
    });
  });

  test('invalid UTF-8 in a Close reason: close 1007', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const c = await srv.rawWebSocket();
      c.sendFrame({opcode: OP.close, payload: closePayload(1000, Buffer.from([0xff, 0xfe]))});
      await c.expectClose(1007);
    });
  });
});

// ======================================================================
// Protocol violations from a raw client (RFC 6455 section 5)
// ======================================================================

describe('protocol violations: close 1002', () => {
  const cases = [
    ['unmasked frame', [{opcode: OP.text, payload: Buffer.from('hi'), mask: false}]],
    ['reserved data opcode 3', [{opcode: 0x3, payload: Buffer.from('x')}]],
    ['reserved control opcode 0xB', [{opcode: 0xb}]],
    ['RSV1 without negotiated extension', [{opcode: OP.text, rsv: 4, payload: Buffer.from('x')}]],
    ['RSV2 set', [{opcode: OP.text, rsv: 2, payload: Buffer.from('x')}]],
    ['RSV3 set', [{opcode: OP.binary, rsv: 1, payload: Buffer.from('x')}]],
    ['ping with a 126-byte payload', [{opcode: OP.ping, payload: Buffer.alloc(126, 0x61)}]],
    ['fragmented control frame', [{opcode: OP.ping, fin: false, payload: Buffer.from('x')}]],
    ['continuation without a start', [{opcode: OP.cont, payload: Buffer.from('x')}]],
    [
      'new data frame inside a fragmented message',
      [
        {opcode: OP.text, fin: false, payload: Buffer.from('a')},
        {opcode: OP.text, fin: true, payload: Buffer.from('b')},
      ],
    ],
    ['close with code 1005', [{opcode: OP.close, payload: closePayload(1005)}]],
    ['close with code 1006', [{opcode: OP.close, payload: closePayload(1006)}]],
    ['close with code 1015', [{opcode: OP.close, payload: closePayload(1015)}]],
    ['close with code 999', [{opcode: OP.close, payload: closePayload(999)}]],
    ['close with code 5000', [{opcode: OP.close, payload: closePayload(5000)}]],
    ['close with a 1-byte payload', [{opcode: OP.close, payload: Buffer.from([0x03])}]],
  ];
  for (const [name, frames] of cases) {
    test(name, {timeout: TEST_MS}, async () => {
      await withServer({}, async (srv) => {
        const c = await srv.rawWebSocket();
        for (const f of frames) c.sendFrame(f);
        await c.expectClose(1002);
      });
    });
  }

  test(
      'valid raw traffic: unmasked text echo, ping inside a fragmented message', {timeout: TEST_MS},
      async () => {
        await withServer({}, async (srv) => {
          const c = await srv.rawWebSocket();
          c.sendFrame({opcode: OP.text, payload: Buffer.from('raw hello')});
          let f = await c.readFrame();
          assert.deepEqual(
              {
                fin: f.fin,
                rsv: f.rsv,
                opcode: f.opcode,
                masked: f.masked,
                text: f.payload.toString()
              },
              {fin: true, rsv: 0, opcode: OP.text, masked: false, text: 'raw hello'},
          );
          c.sendFrame({opcode: OP.text, fin: false, payload: Buffer.from('frag')});
          c.sendFrame({opcode: OP.ping, payload: Buffer.from('mid')});
          c.sendFrame({opcode: OP.cont, fin: true, payload: Buffer.from('ment')});
          f = await c.readFrame();
          assert.equal(f.opcode, OP.pong);
          assert.equal(f.payload.toString(), 'mid');
          const parts = [];
          do {
            f = await c.readFrame();
            parts.push(f.payload);
          } while (!f.fin);
          assert.equal(Buffer.concat(parts).toString(), 'fragment');
          // An unsolicited pong is allowed and ignored.
          c.sendFrame({opcode: OP.pong, payload: Buffer.from('unsolicited')});
          c.sendFrame({opcode: OP.binary, payload: Buffer.from([1, 2, 3])});
          f = await c.readFrame();
          assert.equal(f.opcode, OP.binary);
          assert.deepEqual([...f.payload], [1, 2, 3]);
          c.sendFrame({opcode: OP.close, payload: closePayload(1000, 'done')});
          f = await c.readFrame();
          assert.equal(f.opcode, OP.close);
          assert.equal(f.payload.readUInt16BE(0), 1000);
          await c.waitEnd();
        });
      });

  test('a bad client does not harm a good one', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const good = await srv.connect();
      await good.echoText('before');
      const bad = await srv.rawWebSocket();
      for (let i = 0; i < 100; i++) good.ws.send(`during ${i}`);
      bad.sendFrame({opcode: OP.text, payload: Buffer.from('unmasked'), mask: false});
      await bad.expectClose(1002);
      for (let i = 0; i < 100; i++) assert.equal(await good.recvText(), `during ${i}`);
      await good.echoText('after');
      // Garbage that is not even a frame header, then a hang-up.
      const rude = await srv.rawWebSocket();
      rude.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
      rude.destroy();
      await good.echoText('after rude');
    });
  });
});

// ======================================================================
// Opening handshake over raw HTTP
// ======================================================================

describe('handshake', () => {
  async function request(srv, spec) {
    const c = await srv.tcp();
    c.write(typeof spec === 'string' ? spec : handshakeRequest(srv.port, spec));
    return c.readHttpHead();
  }

  test('valid request: 101 with the RFC accept key', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const res = await request(srv, {});
      assert.equal(res.status, 101);
      assert.equal(res.headers['sec-websocket-accept'], RFC_ACCEPT);
      assert.match(res.headers.upgrade || '', /^websocket$/i);
      assert.match(res.headers.connection || '', /upgrade/i);
    });
  });

  test('version 12: 426 with Sec-WebSocket-Version: 13', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const res = await request(srv, {headers: {'Sec-WebSocket-Version': '12'}});
      assert.equal(res.status, 426, res.statusLine);
      assert.match(res.headers['sec-websocket-version'] || '', /\b13\b/);
    });
  });

  test('missing Sec-WebSocket-Key: 400', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const res = await request(srv, {headers: {'Sec-WebSocket-Key': null}});
      assert.equal(res.status, 400, res.statusLine);
    });
  });

  test('malformed Sec-WebSocket-Key (not 16 bytes base64): 400', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const res = await request(srv, {headers: {'Sec-WebSocket-Key': 'c2hvcnQ='}});
      assert.equal(res.status, 400, res.statusLine);
    });
  });

  test('POST: 405 (or 400)', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const res = await request(srv, {method: 'POST', extra: ['Content-Length: 0']});
      assert.ok([405, 400].includes(res.status), res.statusLine);
    });
  });

  test('missing Upgrade header: 400 or 426, never 101', {timeout: TEST_MS}, async () => {
    await withServer({}, async (srv) => {
      const res = await request(srv, {headers: {Upgrade: null}});
      assert.ok([400, 426].includes(res.status), res.statusLine);
    });
  });

  test('disallowed Origin: 403; allowed Origin: 101', {timeout: TEST_MS}, async () => {
    await withServer({WEBSOCKET_ALLOWED_ORIGINS: 'https://good.example'}, async (srv) => {
      const bad = await request(srv, {headers: {Origin: 'https://evil.example'}});
      assert.equal(bad.status, 403, bad.statusLine);
      const good = await request(srv, {headers: {Origin: 'https://good.example'}});
      assert.equal(good.status, 101, good.statusLine);
      await assert.rejects(
          srv.connect(undefined, {origin: 'https://evil.example'}),
          /403/,
          'ws client with a bad origin',
      );
    });
  });

  test(
      'request head over WEBSOCKET_MAX_HANDSHAKE_SIZE: 431; under it: 101', {timeout: TEST_MS},
      async () => {
        await withServer({WEBSOCKET_MAX_HANDSHAKE_SIZE: '1024'}, async (srv) => {
          const small = await request(srv, {extra: [`X-Padding: ${'a'.repeat(500)}`]});
          assert.equal(small.status, 101, small.statusLine);
          const big = await request(srv, {extra: [`X-Padding: ${'a'.repeat(2000)}`]});
          assert.equal(big.status, 431, big.statusLine);
        });
      });

  test(
      'slowloris: half a request head is cut off within a bounded time', {timeout: TEST_MS},
      async () => {
        await withServer({WEBSOCKET_HANDSHAKE_TIMEOUT_MS: '300'}, async (srv) => {
          const c = await srv.tcp();
          const t0 = Date.now();
          c.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nUpgrade: webs`);
          await c.waitEnd(3000);
          const took = Date.now() - t0;
          assert.ok(took < 3000, `closed after ${took} ms`);
          // A connection that sends nothing at all is cut off too.
          const silent = await srv.tcp();
          await silent.waitEnd(3000);
          // And the server still serves.
          const ok = await srv.connect();
          await ok.echoText('still serving');
        });
      });
});
