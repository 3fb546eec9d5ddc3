// Process-level tests of the small example programs, each one idea
// (examples/README.md), driven by Node's ws and http clients:
//   manual_stop     runs to completion without signals; its client gets 1001
//   rooms           join / leave / say: a broadcast reaches members only
//   typed_messages  typed JSON replies; malformed JSON answered, session kept
//   close_client    GET /sessions, POST /sessions/:id/close → Close 1000 to one
// Every server is then stopped with SIGTERM and must exit 0 (clean drain).
//
//   MANUAL_STOP=build/x/examples/manual_stop ROOMS=... TYPED_MESSAGES=... CLOSE_CLIENT=... \
//     node --test tests/integration/node/examples_test.mjs
import assert from 'node:assert/strict';
import {describe, test} from 'node:test';

import {STEP_MS, TEST_MS} from './harness.mjs';
import {
  httpJson,
  httpRequest,
  Program,
  programPath,
  startApp,
  waitFor,
  withProgram,
} from './programs.mjs';

// Each program's path from its environment variable: MANUAL_STOP, ROOMS, ...
const bin = (name) => programPath(name.toUpperCase());

/** Starts a WebSocket-only example (port 0) and reads its port from stdout. */
async function startWs(name, args = []) {
  const p = new Program(bin(name), {args});
  const m = await p.waitStdout(new RegExp(`${name} listening on port (\\d+)`));
  p.url = `ws://127.0.0.1:${m[1]}/`;
  return p;
}

/** The next text message, parsed as JSON. */
async function recvJson(c) {
  const text = await c.recvText();
  try {
    return JSON.parse(text);
  } catch {
    assert.fail(`not JSON: ${text}`);
  }
}

describe('manual_stop', () => {
  test(
      '--run-for-ms: stops itself, the client gets 1001, exit 0 with a clean report',
      {timeout: TEST_MS}, async () => {
        const p = await startWs('manual_stop', ['--run-for-ms', '1500']);
        await withProgram(p, async () => {
          const c = await p.connect(p.url);
          await c.echoText('still there?');
          await c.expectClose(1001, 5000);
          const exit = await p.exitWithin(5000);
          assert.deepEqual(exit, {code: 0, signal: null}, p.tail());
          assert.match(p.stdout, /stopping: time is up/);
          assert.match(
              p.stdout,
              /drain clean in \d+ ms: 1 sessions at start, 1 closed cleanly, 0 .*, 0 forced/);
        });
      });

  test(
      'a client sending "stop" ends it; every client gets 1001, exit 0', {timeout: TEST_MS},
      async () => {
        const p = await startWs('manual_stop');
        await withProgram(p, async () => {
          const a = await p.connect(p.url);
          const b = await p.connect(p.url);
          await b.echoText('b here');
          await a.send('stop');
          await a.expectClose(1001, 5000);
          await b.expectClose(1001, 5000);
          const exit = await p.exitWithin(5000);
          assert.deepEqual(exit, {code: 0, signal: null}, p.tail());
          assert.match(p.stdout, /stopping: a client sent stop/);
          assert.match(p.stdout, /drain clean .*: 2 sessions at start, 2 closed cleanly/);
        });
      });
});

describe('rooms', () => {
  test('a broadcast reaches the members of the room only', {timeout: TEST_MS}, async () => {
    const p = await startWs('rooms');
    await withProgram(p, async () => {
      const [a, b, c] = await Promise.all([p.connect(p.url), p.connect(p.url), p.connect(p.url)]);
      const id = {};
      for (const [name, client] of Object.entries({a, b, c})) {
        const m = /^hello (\d+)$/.exec(await client.recvText());
        assert.ok(m, `${name}: no greeting`);
        id[name] = m[1];
      }
      const command = async (client, line, reply) => {
        await client.send(line);
        assert.equal(await client.recvText(), reply);
      };
      await command(a, 'join lobby', 'joined lobby');
      await command(b, 'join lobby', 'joined lobby');
      await command(c, 'join kitchen', 'joined kitchen');

      await a.send('say lobby hello everyone');
      assert.equal(await a.recvText(), `lobby ${id.a}: hello everyone`);
      assert.equal(await b.recvText(), `lobby ${id.a}: hello everyone`);
      // c's next message is its own, so the lobby message never reached it
      // (had it been queued to c, it would have come first).
      await c.send('say kitchen marker');
      assert.equal(await c.recvText(), `kitchen ${id.c}: marker`);
      // Only members may speak.
      await command(c, 'say lobby let me in', 'error: join lobby first');

      // After leaving, b no longer gets lobby messages.
      await command(b, 'leave lobby', 'left lobby');
      await a.send('say lobby anyone?');
      assert.equal(await a.recvText(), `lobby ${id.a}: anyone?`);
      await command(b, 'join kitchen', 'joined kitchen');
      await b.send('say kitchen marker b');
      assert.equal(await b.recvText(), `kitchen ${id.b}: marker b`);
      assert.equal(await c.recvText(), `kitchen ${id.b}: marker b`);

      await command(a, 'dance', 'error: expected join <room>, leave <room> or say <room> <text>');
      p.signal('SIGTERM');
      for (const client of [a, b, c]) await client.expectClose(1001);
      await p.stopClean();
    });
  });
});

describe('typed_messages', () => {
  test(
      'typed replies; malformed messages get an error reply and the session stays open',
      {timeout: TEST_MS}, async () => {
        const p = await startWs('typed_messages');
        await withProgram(p, async () => {
          const c = await p.connect(p.url);
          const send = (obj) => c.send(typeof obj === 'string' ? obj : JSON.stringify(obj));

          await send({type: 'chat.send', payload: {room: 'lobby', text: 'hi'}});
          const first = await recvJson(c);
          assert.equal(first.type, 'chat.sent');
          assert.deepEqual(
              {room: first.payload.room, text: first.payload.text}, {room: 'lobby', text: 'hi'});
          assert.equal(typeof first.payload.seq, 'number');

          await send('{"type": "chat.send", "payload": ');  // not JSON
          let err = await recvJson(c);
          assert.equal(err.type, 'error');
          assert.equal(err.payload.code, 'bad_json');
          assert.equal(typeof err.payload.message, 'string');

          await send({type: 42, payload: {}});  // JSON, wrong envelope
          assert.equal((await recvJson(c)).payload.code, 'bad_json');
          await send({type: 'chat.send', payload: 'not an object'});
          assert.equal((await recvJson(c)).payload.code, 'bad_json');

          await send({type: 'chat.send', payload: {room: 'lobby'}});
          assert.equal((await recvJson(c)).payload.code, 'bad_payload');
          await send({type: 'dance', payload: {}});
          err = await recvJson(c);
          assert.deepEqual([err.type, err.payload.code], ['error', 'unknown_type']);

          // Still open, still served; sequence numbers grow.
          await send({type: 'chat.send', payload: {room: 'lobby', text: 'again'}});
          const second = await recvJson(c);
          assert.equal(second.type, 'chat.sent');
          assert.equal(second.payload.text, 'again');
          assert.ok(second.payload.seq > first.payload.seq);
          await send({type: 'ping', payload: {n: 7}});
          assert.deepEqual(await recvJson(c), {type: 'pong', payload: {n: 7}});

          p.signal('SIGTERM');
          await c.expectClose(1001);
          await p.stopClean();
        });
      });
});

describe('close_client', () => {
  test(
      'an operator lists sessions and closes one by id; the other stays open', {timeout: TEST_MS},
      async () => {
        const p = await startApp(bin('close_client'));
        await withProgram(p, async () => {
          const httpPort = p.httpPort;
          const url = `ws://127.0.0.1:${p.wsPort}/`;
          const a = await p.connect(url);
          const b = await p.connect(url);
          const idOf = async (c) => {
            const greeting = /^session (\d+)$/.exec(await c.recvText());
            assert.ok(greeting, 'no "session <id>" greeting');
            return Number(greeting[1]);
          };
          const [idA, idB] = [await idOf(a), await idOf(b)];
          const listed = async () =>
              (await httpJson(httpPort, '/sessions')).json.sessions.map((s) => s.id).sort();

          const list = await httpJson(httpPort, '/sessions');
          assert.equal(list.status, 200);
          assert.deepEqual(await listed(), [idA, idB].sort());
          for (const s of list.json.sessions) assert.match(s.remote, /^127\.0\.0\.1:\d+$/);

          const closing =
              await httpRequest(httpPort, `/sessions/${idA}/close`, {method: 'POST'}).response;
          assert.equal(closing.status, 202, closing.body);
          const info = await a.expectClose(1000);
          assert.equal(info.reason, 'closed by operator');

          await b.echoText('b is still here');
          // on_close unregisters it (after the close handshake).
          await waitFor(
              async () => (await listed()).join() === String(idB), STEP_MS,
              `/sessions to list only ${idB}`);

          const again =
              await httpRequest(httpPort, `/sessions/${idA}/close`, {method: 'POST'}).response;
          assert.equal(again.status, 404, again.body);
          const bad = await httpRequest(httpPort, '/sessions/abc/close', {method: 'POST'}).response;
          assert.equal(bad.status, 400, bad.body);

          p.signal('SIGTERM');
          await b.expectClose(1001);
          await p.stopClean();
        });
      });
});
