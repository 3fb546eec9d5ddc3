// Process-level lifecycle of examples/attached_runtime: an ebb::App and a
// WebSocket server under one AttachedRuntime, stopped by SIGTERM, observed
// from outside with clients nobody here wrote (Node's http, net and ws).
// Checks DESIGN.md §2: readiness turns 503 at once while the listener stays
// open for the readiness grace, then new connections are refused; in-flight
// requests finish with Connection: close; every WebSocket client gets Close
// 1001; the exit status says whether the drain was clean (0) or forced (3);
// a second SIGTERM forces at once.
//
//   ATTACHED_RUNTIME=build/x/examples/attached_runtime node --test attached_runtime_test.mjs
//   EBB_WS_ON_APP_PORT=1 ...   # single-port model: WebSocket at ws://127.0.0.1:<SERVER_PORT>/ws
import assert from 'node:assert/strict';
import {describe, test} from 'node:test';

import {RawConn, STEP_MS, TEST_MS} from './harness.mjs';
import {
  httpGet,
  httpRequest,
  programPath,
  startApp,
  stubbornClient,
  tcpProbe,
  waitFor,
  withProgram,
} from './programs.mjs';

const BIN = programPath('ATTACHED_RUNTIME');
const SINGLE_PORT = process.env.EBB_WS_ON_APP_PORT === '1';
const MODE = SINGLE_PORT ? 'single port (/ws on the app)' : 'two ports';
const GRACE_MS = 600;
/**
 * attached_runtime on free ports, ready. HTTP_IO_THREADS=1 makes "a later
 * request on another connection was answered" prove that an earlier one was
 * read (one epoll loop, in order).
 */
async function start(env = {}) {
  const p = await startApp(
      BIN, {HTTP_IO_THREADS: '1', ...(SINGLE_PORT ? {EBB_WS_ON_APP_PORT: '1'} : {}), ...env},
      {wsOnAppPort: SINGLE_PORT});
  p.wsUrl = SINGLE_PORT ? `ws://127.0.0.1:${p.httpPort}/ws` : `ws://127.0.0.1:${p.wsPort}/`;
  return p;
}

/** n open WebSocket clients, each proven to work by an echo. */
async function connectClients(p, n) {
  const clients = await Promise.all(Array.from({length: n}, () => p.connect(p.wsUrl)));
  await Promise.all(clients.map((c, i) => c.echoText(`hello from client ${i}`)));
  return clients;
}

/**
 * GET /slow?ms=... on its own connection, in flight on the server when this
 * returns: a later request on another connection has been answered.
 * Returns {outcome}: a promise of {response} or {error} (wrapped, so that
 * awaiting this function does not wait for the slow response itself).
 */
async function startSlowRequest(p, ms, deadlineMs) {
  const slow = httpRequest(p.httpPort, `/slow?ms=${ms}`, {ms: deadlineMs, keepAlive: true});
  // Settled either way; inspected by the caller (no unhandled rejection).
  const outcome = slow.response.then((r) => ({response: r}), (error) => ({error}));
  await slow.sent;
  assert.equal((await httpGet(p.httpPort, '/health/ready')).status, 200, 'ready before the drain');
  return {outcome};
}

/** Polls new connections until the listener refuses them; returns when. */
async function waitRefused(port, ms) {
  await waitFor(
      async () => (await tcpProbe(port)) === 'ECONNREFUSED', ms,
      `new connections to ${port} to be refused`);
  return Date.now();
}

describe(`attached_runtime, ${MODE}`, () => {
  test(
      'SIGTERM: readiness 503 during the grace, then refused; slow request ' +
          'finishes with Connection: close; 20 clients get 1001; exit 0',
      {timeout: TEST_MS}, async () => {
        const p = await start({SHUTDOWN_READINESS_GRACE_MS: String(GRACE_MS)});
        await withProgram(p, async () => {
          const clients = await connectClients(p, 20);
          const slow = await startSlowRequest(p, 1500, 10000);

          const t0 = Date.now();
          p.signal('SIGTERM');

          // A NEW connection during the grace: served, but not ready. A
          // connection accepted just before the drain began may be cut
          // unanswered (the race pinned by the last test below): poll on
          // past such a reset, but not past a refused connection.
          let ready;
          await waitFor(async () => {
            try {
              ready = await httpGet(p.httpPort, '/health/ready', {keepAlive: true});
            } catch (e) {
              if (e.code === 'ECONNRESET') return false;
              throw e;
            }
            return ready.status === 503;
          }, GRACE_MS, `/health/ready to answer 503 within the ${GRACE_MS} ms grace`);
          assert.equal(ready.headers.connection, 'close', 'drain responses end the connection');
          assert.ok(Date.now() - t0 < GRACE_MS, 'the 503 came after the grace');

          // New WebSocket upgrades are refused during the drain.
          // (On the app port the listener is open during the grace, so the
          // upgrade must be answered 503 unless the grace is already over.)
          const late = await p.connect(p.wsUrl).then(() => 'opened', (e) => e.code || e.message);
          const graceOver = Date.now() - t0 >= GRACE_MS;
          if (SINGLE_PORT && !graceOver)
            assert.match(String(late), /503/, `late upgrade on the app port: ${late}`);
          else
            assert.match(String(late), /ECONNREFUSED|503/, `late upgrade: ${late}`);

          // After the grace: the HTTP listener is closed.
          const refusedAt = await waitRefused(p.httpPort, 5000);
          assert.ok(
              refusedAt - t0 >= GRACE_MS - 50,
              `listener closed ${refusedAt - t0} ms after SIGTERM, grace ${GRACE_MS} ms`);

          // Every WebSocket client got Close 1001 (Going Away).
          const infos = await Promise.all(clients.map((c) => c.waitClosed(STEP_MS)));
          for (const [i, info] of infos.entries())
            assert.equal(info.code, 1001, `client ${i}: close ${info.code} '${info.reason}'`);

          // The in-flight request finished, and told the client to go.
          const {response, error} = await slow.outcome;
          assert.ok(!error, `slow request failed: ${error && error.message}`);
          assert.equal(response.status, 200);
          assert.equal(response.headers.connection, 'close');
          assert.match(response.body, /slept 1500 ms/);

          const exit = await p.exitWithin(8000);
          assert.deepEqual(exit, {code: 0, signal: null}, `not a clean exit${p.tail()}`);
          assert.ok(Date.now() - t0 < 1500 + 4000, `exit ${Date.now() - t0} ms after SIGTERM`);
        });
      });

  test(
      'a request past SHUTDOWN_TIMEOUT is cut at the deadline; exit 3 within ~2 s',
      {timeout: TEST_MS}, async () => {
        const p = await start({SHUTDOWN_TIMEOUT: '1'});
        await withProgram(p, async () => {
          const clients = await connectClients(p, 2);
          const slow = await startSlowRequest(p, 5000, 10000);
          const t0 = Date.now();
          p.signal('SIGTERM');
          for (const c of clients) await c.expectClose(1001);

          const {response, error} = await slow.outcome;
          const cutAfter = Date.now() - t0;
          assert.ok(
              error,
              `the slow request was answered (${response && response.status}), ` +
                  'expected its connection cut at the deadline');
          assert.match(String(error.code || error.message), /ECONNRESET|socket hang up|aborted/);
          assert.ok(cutAfter >= 900 && cutAfter < 2500, `cut ${cutAfter} ms after SIGTERM`);

          const exit = await p.exitWithin(5000);
          const took = Date.now() - t0;
          assert.deepEqual(exit, {code: 3, signal: null}, `expected the forced status${p.tail()}`);
          assert.ok(took < 3000, `exit ${took} ms after SIGTERM, SHUTDOWN_TIMEOUT 1 s`);
        });
      });

  test('SIGINT (Ctrl-C) drains like SIGTERM: slow request 200, clients get 1001, exit 0',
       {timeout: TEST_MS}, async () => {
         const p = await start({});
         await withProgram(p, async () => {
           const clients = await connectClients(p, 3);
           const slow = await startSlowRequest(p, 500, 10000);
           p.signal('SIGINT');
           await waitRefused(p.httpPort, 5000);
           const infos = await Promise.all(clients.map((c) => c.waitClosed(STEP_MS)));
           for (const [i, info] of infos.entries())
             assert.equal(info.code, 1001, `client ${i}: close ${info.code} '${info.reason}'`);
           const {response, error} = await slow.outcome;
           assert.ok(!error, `slow request failed: ${error && error.message}`);
           assert.equal(response.status, 200);
           const exit = await p.exitWithin(8000);
           assert.deepEqual(exit, {code: 0, signal: null}, `not a clean exit${p.tail()}`);
         });
       });

  test(
      'a second SIGTERM forces at once: slow request cut, exit 3', {timeout: TEST_MS}, async () => {
        const p = await start({SHUTDOWN_TIMEOUT: '60'});
        await withProgram(p, async () => {
          const clients = await connectClients(p, 2);
          const slow = await startSlowRequest(p, 5000, 15000);
          p.signal('SIGTERM');
          // The drain has begun once the listener is closed (no grace here).
          await waitRefused(p.httpPort, 5000);
          for (const c of clients) await c.expectClose(1001);
          const t0 = Date.now();
          p.signal('SIGTERM');
          const {error} = await slow.outcome;
          assert.ok(error, 'the slow request was answered; expected it cut by the force');
          const exit = await p.exitWithin(5000);
          const took = Date.now() - t0;
          assert.deepEqual(exit, {code: 3, signal: null}, `expected the forced status${p.tail()}`);
          assert.ok(took < 1500, `forced exit took ${took} ms`);
        });
      });

  test(
      'a second SIGTERM forces while only a WebSocket client holds the drain', {timeout: TEST_MS},
      async () => {
        const p = await start({SHUTDOWN_TIMEOUT: '60', WEBSOCKET_CLOSE_WAIT_MS: '60000'});
        await withProgram(p, async () => {
          const port = SINGLE_PORT ? p.httpPort : p.wsPort;
          const stubborn = await stubbornClient(port, SINGLE_PORT ? '/ws' : '/');
          p.signal('SIGTERM');
          await waitFor(stubborn.sawClose1001, STEP_MS, 'Close 1001 to the stubborn client');
          // The HTTP side has nothing in flight: it is done long before the
          // WebSocket drain, which waits for the stubborn client.
          await waitRefused(p.httpPort, 5000);
          const t0 = Date.now();
          p.signal('SIGTERM');
          const exit = await p.exitWithin(5000);
          const took = Date.now() - t0;
          stubborn.destroy();
          assert.deepEqual(
              exit, {code: 3, signal: null},
              `expected the forced status, not death by signal${p.tail()}`);
          assert.ok(took < 1500, `forced exit took ${took} ms`);
        });
      });

  // A client that connected just before SIGTERM and sends its request a
  // moment later must be answered (during the readiness grace the app still
  // serves), not cut: it cannot know the drain began, and from outside this
  // looks like a failed request. Deterministic form of the race that
  // sending a request right after the signal hits now and then.
  test(
      'a connection accepted before the drain gets its request answered during the grace',
      {timeout: TEST_MS}, async () => {
        const p = await start({SHUTDOWN_READINESS_GRACE_MS: '3000'});
        await withProgram(p, async () => {
          const early = await RawConn.connect(p.httpPort);
          // Answered after `early` was accepted: it is on the server's books.
          assert.equal((await httpGet(p.httpPort, '/health/ready')).status, 200);
          p.signal('SIGTERM');
          await waitFor(
              async () => (await httpGet(p.httpPort, '/health/ready')).status === 503, 2000,
              'the drain to begin (readiness 503)');
          early.write('GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
          const head = await early.readHttpHead().catch(
              (e) => assert.fail(`the connection accepted before the drain was cut: ${e.message}`));
          assert.equal(head.status, 503);
          assert.equal(head.headers.connection, 'close');
          early.destroy();
          await p.stopClean();
        });
      });
});
