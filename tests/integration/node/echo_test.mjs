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

import {
  WebSocket,
  HERE,
  ECHO_SERVER,
  MiB,
  RFC_KEY,
  RFC_ACCEPT,
  START_MS,
  STOP_MS,
  STEP_MS,
  BIG_MS,
  TEST_MS,
  withDeadline,
  AsyncQueue,
  pattern,
  assertSameBytes,
  assertSameText,
  compressibleText,
  workDir,
  liveServers,
  serverEnv,
  EchoServer,
  startServer,
  withServer,
  Client,
  OP,
  buildFrame,
  closePayload,
  MessageInflater,
  parseFrame,
  handshakeRequest,
  RawConn,
} from './harness.mjs';

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
        srv.terminate();
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
          srv.terminate();
          await c.expectClose(1001, STOP_MS);
        } finally {
          const exit = await srv.stop();
          assert.deepEqual(exit, {code: 0, signal: null}, `unclean exit${srv.tail()}`);
        }
      });

  test(
      'SIGTERM: a client that never answers the Close is cut off after WEBSOCKET_CLOSE_WAIT_MS',
      {timeout: TEST_MS}, async () => {
        // The server half-closes an unanswered Close after a quarter of the
        // close wait; this raw socket then ends its side (Node's default), and
        // has the other three quarters to do so even on a loaded machine.
        const srv = await startServer({WEBSOCKET_CLOSE_WAIT_MS: '1000'});
        try {
          const c = await srv.rawWebSocket();
          srv.terminate();
          // echo_server's default shutdown notice comes first, then Close 1001.
          const notice = await c.readFrame(STOP_MS);
          assert.equal(notice.opcode, OP.text);
          assert.equal(JSON.parse(notice.payload.toString()).type, 'server.shutdown');
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
