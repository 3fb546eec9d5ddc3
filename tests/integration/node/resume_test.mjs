// Process-level resume (docs/PROTOCOL.md) across a server restart, seen by
// three kinds of subscriber at once: ebb's C++ Client (resume_client), a
// Node `ws` client and a long-poll client (node:http), each implementing the
// room protocol on its own. A Node `ws` publisher sends ~1000 messages/s
// with ids, keeps every unacknowledged one and, after a reconnect, sends
// again those its own replay did not show. Mid-stream the server
// (resume_server) is stopped with SIGTERM (it must exit 0) or kill -9, then
// started again on the same port and data directory. Afterwards every
// subscriber must hold seq 1..L (L = what the store holds) in order, without
// gap or duplicate, and every published id exactly once, at the seq its
// room.ack named. The time each client took to resume is reported.
//
//   RESUME_SERVER=build/x/tests/integration/resume_server \
//   RESUME_CLIENT=build/x/tests/integration/resume_client \
//     node --test tests/integration/node/resume_test.mjs
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {describe, test} from 'node:test';

import {liveServers, START_MS, WebSocket, withDeadline, workDir} from './harness.mjs';
import {freePort, httpJson, isReady, Program, programPath, waitFor} from './programs.mjs';

const SERVER = programPath('RESUME_SERVER');
const CLIENT = programPath('RESUME_CLIENT');
const ROOM = 'resume';
const PER_TICK = 10;           // messages every 10 ms: ~1000/s
const STOP_AFTER_MS = 1500;    // when the server is stopped, after publishing started
const BURST = 200;             // publishes sent just before the stop: in flight when it lands
// Subscribers retry this long after losing the server (it is back well
// before), so they miss ~1 s of publishing and the resume has work to do.
const SUBSCRIBER_RETRY_MS = 1000;
const TARGET_ACKED = 4000;     // publishing ends once this many were acknowledged
const STEP_MS = 10000;         // one condition (start, exit, join)
const CATCH_UP_MS = 60000;     // publishing to the target, subscribers catching up
const TEST_MS = 180000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Reconnect delays: `initial` ms doubling to max(initial, 1 s) (no jitter). */
class Backoff {
  constructor(initial = 50) {
    this.initial = initial;
    this.reset();
  }
  reset() {
    this.ms = this.initial;
  }
  next() {
    const d = this.ms;
    this.ms = Math.min(this.ms * 2, Math.max(this.initial, 1000));
    return d;
  }
}

/** What one subscriber received, in arrival order, as it came off the wire. */
class SeqLog {
  constructor(name) {
    this.name = name;
    this.seqs = [];
    this.ids = [];
    this.opens = [];  // every (re)open: {t: Date.now(), max: highest seq received before it}
    this.joins = [];  // every room.joined: {t, last, replayed, gap}
    this.max = 0;
  }
  get joined() {
    return this.joins.length;
  }
  opened() {
    this.opens.push({t: Date.now(), max: this.max});
  }
  joinedRoom(last, replayed, gap = false) {
    this.joins.push({t: Date.now(), last, replayed, gap});
  }
  record(seq, id) {
    this.max = Math.max(this.max, seq);
    this.seqs.push(seq);
    this.ids.push(id);
  }
  get maxSeq() {
    return this.max;
  }
}

function roomMessage(log, text) {
  const m = JSON.parse(text);
  if (m.type === 'room.message' && m.payload.room === ROOM) {
    log.record(m.payload.seq, m.payload.id ?? '-');
  } else if (m.type === 'room.joined' && m.payload.room === ROOM) {
    log.joinedRoom(m.payload.last_seq, m.payload.replayed, m.payload.gap);
  } else if (m.type === 'error' || m.type === 'room.nack') {
    log.errors = (log.errors ?? []).concat(text);
  }
  return m;
}

/** Node `ws` subscriber: room.join first, room.resume {room: last seq} after every reconnect. */
class WsSubscriber {
  constructor(url) {
    this.url = url;
    this.log = new SeqLog('node ws');
    this.backoff = new Backoff(SUBSCRIBER_RETRY_MS);
    this.last = 0;
    this.everOpen = false;
    this.stopped = false;
  }
  start() {
    if (this.stopped) return;
    const ws = new WebSocket(this.url, {handshakeTimeout: 5000});
    this.ws = ws;
    ws.on('open', () => {
      this.backoff.reset();
      this.log.opened();
      const msg = this.everOpen ? {type: 'room.resume', payload: {rooms: {[ROOM]: this.last}}} :
                                  {type: 'room.join', payload: {room: ROOM, after: 0}};
      this.everOpen = true;
      ws.send(JSON.stringify(msg));
    });
    ws.on('message', (data) => {
      const m = roomMessage(this.log, data.toString());
      if (m.type === 'room.message' && m.payload.room === ROOM)
        this.last = Math.max(this.last, m.payload.seq);
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      if (!this.stopped) setTimeout(() => this.start(), this.backoff.next());
    });
  }
  stop() {
    this.stopped = true;
    this.ws?.terminate();
  }
}

/** One HTTP request; resolves {status, body}, rejects with the socket error. */
function request(agent, port, method, target, body, ms) {
  const p = new Promise((resolve, reject) => {
    const req = http.request({host: '127.0.0.1', port, method, path: target, agent}, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.once('end', () => resolve({status: res.statusCode, body: text}));
      res.once('error', reject);
      res.once('aborted', () => reject(new Error('response aborted')));
    });
    req.once('error', reject);
    req.setTimeout(ms, () => req.destroy(new Error(`${method} ${target}: no answer in ${ms} ms`)));
    req.end(body);
  });
  return p;
}

/**
 * Long-poll subscriber (docs/PROTOCOL.md): open, send room.join, then poll
 * with ack=next. A 404 (unknown session), a "closed" answer or a refused
 * connection opens a new session, which sends room.resume with the last seq.
 */
class LpSubscriber {
  constructor(port) {
    this.port = port;
    this.agent = new http.Agent({keepAlive: true, maxSockets: 2});
    this.log = new SeqLog('long-poll');
    this.backoff = new Backoff(SUBSCRIBER_RETRY_MS);
    this.last = 0;
    this.everOpen = false;
    this.sid = null;
    this.next = 0;
    this.stopped = false;
  }
  req(method, target, body = undefined, ms = STEP_MS) {
    return request(this.agent, this.port, method, target, body, ms);
  }
  start() {
    this.done = this.loop();
  }
  async loop() {
    while (!this.stopped) {
      try {
        if (!this.sid) await this.open();
        await this.pollOnce();
        this.backoff.reset();
      } catch (e) {
        if (this.stopped) break;
        if (e.code === 'ECONNREFUSED') this.sid = null;  // a new server: a new session
        await sleep(this.backoff.next());
      }
    }
  }
  async open() {
    const r = await this.req('POST', '/lp/open');
    if (r.status !== 200) throw new Error(`POST /lp/open: ${r.status}`);
    const sid = JSON.parse(r.body).sid;
    const msg = this.everOpen ? {type: 'room.resume', payload: {rooms: {[ROOM]: this.last}}} :
                                {type: 'room.join', payload: {room: ROOM, after: 0}};
    const s = await this.req('POST', `/lp/send?sid=${sid}`, JSON.stringify(msg));
    if (s.status !== 204) throw new Error(`POST /lp/send: ${s.status}`);
    this.sid = sid;  // only now: a session without its join is useless
    this.next = 0;
    this.everOpen = true;
    this.log.opened();
  }
  async pollOnce() {
    const r = await this.req('GET', `/lp/poll?sid=${this.sid}&ack=${this.next}`, undefined, 30000);
    if (r.status === 404) {
      this.sid = null;
      return;
    }
    if (r.status !== 200) throw new Error(`GET /lp/poll: ${r.status}`);
    const b = JSON.parse(r.body);
    for (const text of b.messages) {
      const m = roomMessage(this.log, text);
      if (m.type === 'room.message' && m.payload.room === ROOM)
        this.last = Math.max(this.last, m.payload.seq);
    }
    this.next = b.next;
    if (b.closed) this.sid = null;  // the session ended (the drain): open another
  }
  async stop() {
    this.stopped = true;
    this.agent.destroy();  // fails the held poll at once
    await withDeadline(this.done, STEP_MS, 'the long-poll loop to end').catch(() => {});
  }
}

/** ebb's C++ Client in a child process: stdout "seq id" lines and "# open n". */
class CppSubscriber {
  constructor(url) {
    this.log = new SeqLog('C++ Client');
    this.proc = spawn(CLIENT, [url, ROOM], {
      cwd: workDir,
      env: {...process.env, RECONNECT_INITIAL_MS: String(SUBSCRIBER_RETRY_MS)},
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.entry = {proc: this.proc};
    liveServers.add(this.entry);  // SIGKILLed by the harness if still alive at the end
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => {
      liveServers.delete(this.entry);
      resolve({code, signal});
    }));
    this.stderr = '';
    this.partial = '';
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => (this.stderr = (this.stderr + d).slice(-8000)));
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => {
      const lines = (this.partial + d).split('\n');
      this.partial = lines.pop();
      for (const line of lines) {
        if (line.startsWith('# open')) {
          this.log.opened();
        } else if (line.startsWith('# joined')) {
          const [, , last, replayed] = line.split(' ');
          this.log.joinedRoom(Number(last), Number(replayed));
        } else if (line) {
          const [seq, id] = line.split(' ');
          this.log.record(Number(seq), id);
        }
      }
    });
  }
  /** stdin EOF: the client stops and must exit 0. */
  async stop() {
    this.proc.stdin.end();
    const exit = await withDeadline(this.exited, STEP_MS, 'resume_client to exit');
    assert.deepEqual(exit, {code: 0, signal: null}, `resume_client exit\n${this.stderr}`);
  }
  kill() {
    this.proc.kill('SIGKILL');
  }
}

/**
 * Node `ws` publisher: ~1000 room.publish/s with ids p-1, p-2, ... Every
 * publish stays pending until its room.ack or its id in a room.message.
 * It joins the room itself: after a reconnect it resumes, and once
 * room.joined ends the replay it sends again what is still pending.
 * Reconnects wait for `gate` (the test holds it while the server is down).
 */
class Publisher {
  constructor(url) {
    this.url = url;
    this.pending = new Map();  // id -> text, in publish order
    this.acked = new Map();    // id -> seq from room.ack
    this.published = [];
    this.n = 0;
    this.last = 0;
    this.ready = false;  // joined (replay done): publishing allowed
    this.publishing = true;
    this.everOpen = false;
    this.foundInReplay = 0;
    this.resent = 0;
    this.errors = [];
    this.gate = Promise.resolve();
    this.backoff = new Backoff();
    this.stopped = false;
  }
  start() {
    this.connect();
    this.timer = setInterval(() => this.tick(), 10);
  }
  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(this.url, {handshakeTimeout: 5000});
    this.ws = ws;
    ws.on('open', () => {
      this.backoff.reset();
      const msg = this.everOpen ? {type: 'room.resume', payload: {rooms: {[ROOM]: this.last}}} :
                                  {type: 'room.join', payload: {room: ROOM, after: 0}};
      this.everOpen = true;
      ws.send(JSON.stringify(msg));
    });
    ws.on('message', (data) => this.onText(ws, data.toString()));
    ws.on('error', () => {});
    ws.on('close', () => {
      this.ready = false;
      if (this.stopped) return;
      this.gate.then(() => setTimeout(() => this.connect(), this.backoff.next()));
    });
  }
  onText(ws, text) {
    const m = JSON.parse(text);
    const p = m.payload ?? {};
    if (m.type === 'room.message' && p.room === ROOM) {
      this.last = Math.max(this.last, p.seq);
      if (this.pending.delete(p.id) && !this.ready) this.foundInReplay++;
    } else if (m.type === 'room.joined' && p.room === ROOM) {
      this.ready = true;
      for (const t of this.pending.values()) {  // stored ones were deleted by the replay
        ws.send(t);
        this.resent++;
      }
    } else if (m.type === 'room.ack') {
      this.pending.delete(p.id);
      this.acked.set(p.id, p.seq);
    } else if (m.type === 'room.nack' || m.type === 'error') {
      this.errors.push(text);
    }
  }
  tick(count = PER_TICK) {
    if (!this.ready || !this.publishing || this.ws.readyState !== WebSocket.OPEN) return;
    for (let i = 0; i < count; i++) {
      const id = `p-${++this.n}`;
      const text = JSON.stringify({type: 'room.publish', payload: {room: ROOM, id, body: {n: this.n}}});
      this.pending.set(id, text);
      this.published.push(id);
      this.ws.send(text);
    }
  }
  get maxAckedSeq() {
    let m = 0;
    for (const s of this.acked.values()) m = Math.max(m, s);
    return m;
  }
  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    this.ws?.terminate();
  }
}

/** resume_server on `port` with `dataDir`, ready (GET /health/ready is 200). */
async function startServer(port, dataDir) {
  const p = new Program(SERVER, {env: {SERVER_PORT: String(port), DATA_DIR: dataDir}});
  await waitFor(async () => !p.running || (await isReady(port)), START_MS,
                `resume_server to be ready on ${port}`)
      .catch((e) => {
        p.kill();
        e.message += p.tail();
        throw e;
      });
  if (!p.running) {
    const exit = await p.exited;
    throw new Error(`resume_server exited at start-up (${JSON.stringify(exit)})${p.tail()}`);
  }
  return p;
}

/** The first start, on a free port (another one if someone took it meanwhile). */
async function startOnFreePort(dataDir) {
  for (let attempt = 1;; attempt++) {
    const port = await freePort();
    try {
      return {port, server: await startServer(port, dataDir)};
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

async function lastSeq(port) {
  const r = await httpJson(port, `/rooms/${ROOM}/last_seq`);
  assert.equal(r.status, 200);
  return r.json.last_seq;
}

/** seq 1..total in order, each once; every published id exactly once, acked ids at their seq. */
function checkLog(log, total, publisher) {
  assert.deepEqual(log.errors ?? [], [], `${log.name}: error messages`);
  for (let i = 0; i < log.seqs.length; i++) {
    if (log.seqs[i] !== i + 1) {
      assert.fail(`${log.name}: message #${i} has seq ${log.seqs[i]}, expected ${i + 1} ` +
                  `(${log.seqs[i] <= i ? 'duplicate or out of order' : 'gap'}); ` +
                  `around: ${log.seqs.slice(Math.max(0, i - 3), i + 4).join(',')}`);
    }
  }
  assert.equal(log.seqs.length, total, `${log.name}: message count`);
  const count = new Map();
  for (const id of log.ids) count.set(id, (count.get(id) ?? 0) + 1);
  for (const id of publisher.published) {
    assert.equal(count.get(id) ?? 0, 1, `${log.name}: id ${id} seen ${count.get(id) ?? 0} times`);
  }
  for (const [id, seq] of publisher.acked) {
    assert.equal(log.ids[seq - 1], id, `${log.name}: room.ack said ${id} is seq ${seq}`);
  }
}

async function scenario(t, how) {
  const dataDir = fs.mkdtempSync(path.join(workDir, `resume-${how}-`));
  let server = null;
  const subs = [];
  let publisher = null;
  try {
    const first = await startOnFreePort(dataDir);
    server = first.server;
    const port = first.port;
    const url = `ws://127.0.0.1:${port}/ws`;
    const cpp = new CppSubscriber(url);
    const wsSub = new WsSubscriber(url);
    const lp = new LpSubscriber(port);
    subs.push(cpp, wsSub, lp);
    wsSub.start();
    lp.start();
    await waitFor(() => cpp.log.joined > 0 && wsSub.log.joined > 0 && lp.log.joined > 0,
                  STEP_MS, 'the subscribers to join');

    publisher = new Publisher(url);
    publisher.start();
    await waitFor(() => publisher.ready, STEP_MS, 'the publisher to join');
    await sleep(STOP_AFTER_MS);  // mid-stream by design, not a wait for a condition
    assert.ok(publisher.acked.size > 0, 'nothing acknowledged before the stop');

    // Stop the server mid-stream; the publisher reconnects only once it is back.
    let openGate;
    publisher.gate = new Promise((r) => (openGate = r));
    // A burst right before the signal, in the same turn: when it lands some
    // of these are unsent, some in flight, some stored without an ack.
    publisher.tick(BURST);
    const pendingAtStop = publisher.pending.size;
    const tStop = Date.now();
    server.signal(how === 'SIGTERM' ? 'SIGTERM' : 'SIGKILL');
    const exit = await server.exitWithin(STEP_MS);
    if (how === 'SIGTERM')
      assert.deepEqual(exit, {code: 0, signal: null}, `drain not clean${server.tail()}`);
    else
      assert.equal(exit.signal, 'SIGKILL');
    const tDown = Date.now();
    // Every ack so far came from the old process (the publisher is held);
    // checkLog also finds each acknowledged id at its seq afterwards.
    const ackedBefore = new Map(publisher.acked);

    server = await startServer(port, dataDir);
    const tReady = Date.now();
    // Everything stored before the stop; what a resuming client must catch up to.
    const before = await lastSeq(port);
    let maxAckedBefore = 0;
    for (const s of ackedBefore.values()) maxAckedBefore = Math.max(maxAckedBefore, s);
    assert.ok(before >= maxAckedBefore,
              `acknowledged seq ${maxAckedBefore} but the restarted store ends at ${before}`);
    openGate();

    await waitFor(() => publisher.acked.size >= TARGET_ACKED, CATCH_UP_MS,
                  `${TARGET_ACKED} acknowledged publishes`);
    publisher.publishing = false;
    await waitFor(() => publisher.pending.size === 0, STEP_MS,
                  `the publisher's pending publishes to settle`);
    assert.deepEqual(publisher.errors, [], 'publisher got errors');
    const total = await lastSeq(port);
    assert.equal(total, publisher.published.length,
                 'each published id stored exactly once (store size = publishes)');
    assert.ok(total >= publisher.maxAckedSeq);
    await waitFor(() => subs.every((s) => s.log.maxSeq >= total), CATCH_UP_MS,
                  `every subscriber at seq ${total}`);
    for (const s of subs) checkLog(s.log, total, publisher);

    const lines = [
      `${how}: ${publisher.published.length} published, ${publisher.acked.size} acked; ` +
          `${pendingAtStop} pending at the stop: ${publisher.foundInReplay} then found in the ` +
          `publisher's replay, ${publisher.resent} sent again; store at seq ${before} after the ` +
          `restart; server gone ${tDown - tStop} ms and ready again ${tReady - tStop} ms after ` +
          `the signal`,
    ];
    for (const s of subs) {
      // The resume: the first open after the stop, and the room.joined that
      // ended its replay, which must hold exactly what the client missed.
      const open = s.log.opens.find((o) => o.t >= tStop);
      assert.ok(open, `${s.log.name} never reconnected`);
      const join = s.log.joins.find((j) => j.t >= open.t);
      assert.ok(join, `${s.log.name}: no room.joined after reconnecting`);
      assert.equal(join.gap, false, `${s.log.name}: gap in the resume`);
      assert.equal(join.replayed, join.last - open.max,
                   `${s.log.name}: resumed after seq ${open.max}, replay should be ` +
                       `${open.max + 1}..${join.last}`);
      lines.push(`${s.log.name}: reconnected ${open.t - tReady} ms after the server was ready ` +
                 `(retry delay ${SUBSCRIBER_RETRY_MS} ms); resumed from seq ${open.max}: ` +
                 `replay of ${join.replayed} messages (to seq ${join.last}) complete ` +
                 `${join.t - open.t} ms after reconnecting`);
    }
    for (const l of lines) {
      t.diagnostic(l);
      console.log(`# ${l}`);
    }

    await cpp.stop();
    wsSub.stop();
    await lp.stop();
    publisher.stop();
    await server.stopClean(STEP_MS);
  } finally {
    publisher?.stop();
    for (const s of subs) {
      if (s instanceof CppSubscriber) s.kill();
      else s.stop();
    }
    server?.kill();
  }
}

describe('resume across a server restart (C++ Client, Node ws, long-poll)', () => {
  test('SIGTERM mid-stream: drain exits 0; every subscriber gets 1..N exactly once',
       {timeout: TEST_MS}, (t) => scenario(t, 'SIGTERM'));
  test('kill -9 mid-stream: every acknowledged message survives; 1..N exactly once',
       {timeout: TEST_MS}, (t) => scenario(t, 'SIGKILL'));
});
