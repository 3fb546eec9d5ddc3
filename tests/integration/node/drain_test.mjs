// Process-level drain tests: echo_server with live clients that nobody here
// wrote (Node's `ws`) and ebb's own client (examples/ws_client), stopped by
// SIGTERM. Checks the lifecycle contract of DESIGN.md §2: every client gets
// the shutdown notice and then Close 1001, the process exits 0 promptly; a
// client that ignores the Close is forced and the exit status says the drain
// was not clean (3); a second SIGTERM forces at once.
//
//   ECHO_SERVER=... WS_CLIENT=... node --test tests/integration/node/drain_test.mjs
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import {describe, test} from 'node:test';

import {
  handshakeRequest,
  startServer,
  STEP_MS,
  TEST_MS,
  withDeadline,
} from './harness.mjs';

const WS_CLIENT = process.env.WS_CLIENT ? path.resolve(process.env.WS_CLIENT) : null;

/** echo_server's exit, with a deadline measured from `t0`. */
async function exitWithin(srv, ms) {
  return withDeadline(srv.exited, ms, `echo_server to exit within ${ms} ms`);
}

/** examples/ws_client as a child process; resolves once it printed "open". */
async function startEbbClient(port) {
  assert.ok(WS_CLIENT, 'WS_CLIENT not set');
  const proc = spawn(WS_CLIENT, [`ws://127.0.0.1:${port}/`], {stdio: ['ignore', 'pipe', 'pipe']});
  const c = {proc, lines: [], exited: new Promise((r) => proc.once('exit', (code) => r(code)))};
  proc.stdout.setEncoding('utf8');
  let buf = '';
  let onLine = () => {};
  proc.stdout.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0;) {
      c.lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      onLine();
    }
  });
  await withDeadline(new Promise((resolve) => {
    onLine = () => c.lines.includes('open') && resolve();
    onLine();
  }), STEP_MS, 'ws_client to open');
  return c;
}

/**
 * A client that completes the upgrade, then ignores everything: it never
 * answers the Close and keeps its side of the TCP connection open after the
 * server's FIN (allowHalfOpen), so only a forced end can finish it.
 */
async function startStubbornClient(port) {
  const socket = net.connect({host: '127.0.0.1', port, allowHalfOpen: true});
  const c = {socket, bytes: Buffer.alloc(0), ended: false};
  let wake = () => {};
  socket.on('data', (d) => {
    c.bytes = Buffer.concat([c.bytes, d]);
    wake();
  });
  socket.on('error', () => {});
  c.closed = new Promise((resolve) => socket.once('close', () => {
    c.ended = true;
    resolve();
  }));
  await withDeadline(new Promise((r) => socket.once('connect', r)), STEP_MS, 'connect');
  socket.write(handshakeRequest(port));
  c.waitFor = (pred, what, ms = STEP_MS) => withDeadline(new Promise((resolve) => {
    wake = () => pred() && resolve();
    wake();
  }), ms, what);
  await c.waitFor(() => c.bytes.includes('\r\n\r\n'), '101 response');
  assert.match(c.bytes.toString('latin1'), /^HTTP\/1\.1 101/);
  c.bytes = c.bytes.subarray(c.bytes.indexOf('\r\n\r\n') + 4);
  // A Close frame from the server: 0x88, 7-bit length, code 1001 (0x03e9).
  c.sawClose1001 = () => {
    for (let i = 0; i + 3 < c.bytes.length; ++i)
      if (c.bytes[i] === 0x88 && c.bytes.readUInt16BE(i + 2) === 1001) return true;
    return false;
  };
  return c;
}

describe('drain on SIGTERM', () => {
  test('ws and ebb clients get the notice, then Close 1001; exit 0 promptly', {timeout: TEST_MS},
       async () => {
         const srv = await startServer({});
         const wsClients = await Promise.all([srv.connect(), srv.connect(), srv.connect()]);
         for (const c of wsClients) await c.echoText('before');
         const ebbClient = await startEbbClient(srv.port);
         const t0 = Date.now();
         srv.terminate();
         for (const c of wsClients) {
           const {data, isBinary} = await c.messages.next();
           assert.equal(isBinary, false);
           const notice = JSON.parse(data.toString());
           assert.equal(notice.type, 'server.shutdown');
           assert.equal(typeof notice.payload.reconnect_ms, 'number');
           assert.equal((await c.waitClosed()).code, 1001);
         }
         assert.equal(await withDeadline(ebbClient.exited, STEP_MS, 'ws_client exit'), 0);
         assert.ok(ebbClient.lines.some((l) => l.startsWith('message {"type":"server.shutdown"')),
                   ebbClient.lines.join('\n'));
         assert.ok(ebbClient.lines.some((l) => l.startsWith('close 1001')),
                   ebbClient.lines.join('\n'));
         const exit = await exitWithin(srv, 3000);
         assert.deepEqual(exit, {code: 0, signal: null}, srv.tail());
         assert.ok(Date.now() - t0 < 3000, `drain took ${Date.now() - t0} ms`);
         assert.match(srv.tail(), /drain clean .* 4 sessions at start, 4 closed cleanly/);
       });

  test('a client that ignores the Close is forced at the deadline; exit status 3',
       {timeout: TEST_MS}, async () => {
         const srv = await startServer({SHUTDOWN_TIMEOUT: '1', WEBSOCKET_CLOSE_WAIT_MS: '20000'});
         const good = await srv.connect();
         const stubborn = await startStubbornClient(srv.port);
         const t0 = Date.now();
         srv.terminate();
         await good.messages.next();  // the notice
         assert.equal((await good.waitClosed()).code, 1001);
         await stubborn.waitFor(stubborn.sawClose1001, 'Close 1001 to the stubborn client');
         const exit = await exitWithin(srv, 5000);
         const took = Date.now() - t0;
         assert.deepEqual(exit, {code: 3, signal: null}, srv.tail());
         assert.ok(took >= 900 && took < 4000, `exit after ${took} ms, deadline 1000 ms`);
         assert.match(srv.tail(), /drain NOT clean .* 1 closed cleanly, .* 1 forced/);
         stubborn.socket.destroy();
       });

  test('a second SIGTERM forces at once', {timeout: TEST_MS}, async () => {
    const srv = await startServer({SHUTDOWN_TIMEOUT: '60', WEBSOCKET_CLOSE_WAIT_MS: '60000'});
    const stubborn = await startStubbornClient(srv.port);
    srv.terminate();
    await stubborn.waitFor(stubborn.sawClose1001, 'Close 1001');
    const t0 = Date.now();
    srv.proc.kill('SIGTERM');  // the second signal
    const exit = await exitWithin(srv, 3000);
    assert.deepEqual(exit, {code: 3, signal: null}, srv.tail());
    assert.ok(Date.now() - t0 < 2000, `forced exit took ${Date.now() - t0} ms`);
    assert.match(srv.tail(), /drain NOT clean .* 1 forced/);
    stubborn.socket.destroy();
  });
});
