// A Node `ws` server that ebb's client tests talk to.
//
// Usage: node ws_test_server.mjs <port> [--deflate] [--tls <cert.pem> <key.pem>] [--no-autopong]
//   port 0 picks a free port. Once listening on 127.0.0.1 it prints "PORT <n>".
//
// Every message is echoed (text as text, binary as binary), except these
// text commands:
//   close:<code>[:<reason>]  close the connection with that code
//   drop                     destroy the TCP socket (no Close frame)
//   ping[:<payload>]         send a ping; the pong that comes back is
//                            answered with the text "pong-seen:<payload>"
//   fragments:<text>         send <text> as a text message in 3 fragments
//   bin-fragments:<n>        send n bytes (i % 251) as a binary message in 4 fragments
//   target                   reply with the request target (path + query)
//   extensions               reply with the negotiated extensions ("" when none)
//   pings                    reply with "pings:<n>", pings received on this connection
//   stats                    reply with "stats:<connections accepted so far>"
//
// It exits on SIGTERM/SIGINT and when its stdin closes (so a crashed test
// leaves no stray server behind).
import fs from 'node:fs';
import https from 'node:https';
import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
const port = Number(args[0] ?? 0);
const deflate = args.includes('--deflate');
const autoPong = !args.includes('--no-autopong');
const tlsAt = args.indexOf('--tls');

const options = {
  perMessageDeflate: deflate ? { threshold: 0 } : false,
  autoPong,
  maxPayload: 64 * 1024 * 1024,
};

let httpsServer = null;
let wss;
if (tlsAt >= 0) {
  httpsServer = https.createServer({
    cert: fs.readFileSync(args[tlsAt + 1]),
    key: fs.readFileSync(args[tlsAt + 2]),
  });
  wss = new WebSocketServer({ ...options, server: httpsServer });
} else {
  wss = new WebSocketServer({ ...options, host: '127.0.0.1', port });
}

let accepted = 0;

function sendFragments(ws, buffer, binary, parts) {
  const step = Math.max(1, Math.ceil(buffer.length / parts));
  for (let at = 0; at < buffer.length; at += step) {
    const fin = at + step >= buffer.length;
    ws.send(buffer.subarray(at, at + step), { binary, fin, compress: false });
  }
}

function onCommand(ws, req, state, text) {
  if (text.startsWith('close:')) {
    const [, code, ...reason] = text.split(':');
    ws.close(Number(code), reason.join(':'));
  } else if (text === 'drop') {
    ws._socket.destroy();
  } else if (text === 'ping' || text.startsWith('ping:')) {
    ws.ping(text.slice(5));
  } else if (text.startsWith('fragments:')) {
    sendFragments(ws, Buffer.from(text.slice(10)), false, 3);
  } else if (text.startsWith('bin-fragments:')) {
    const n = Number(text.slice(14));
    const buffer = Buffer.alloc(n);
    for (let i = 0; i < n; ++i) buffer[i] = i % 251;
    sendFragments(ws, buffer, true, 4);
  } else if (text === 'target') {
    ws.send(req.url);
  } else if (text === 'extensions') {
    ws.send(ws.extensions);
  } else if (text === 'pings') {
    ws.send(`pings:${state.pings}`);
  } else if (text === 'stats') {
    ws.send(`stats:${accepted}`);
  } else {
    return false;
  }
  return true;
}

wss.on('connection', (ws, req) => {
  ++accepted;
  const state = { pings: 0 };
  ws.on('ping', () => ++state.pings);
  ws.on('pong', (data) => ws.send(`pong-seen:${data.toString()}`));
  ws.on('message', (data, isBinary) => {
    if (!isBinary && onCommand(ws, req, state, data.toString())) return;
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});

function announce(address) {
  process.stdout.write(`PORT ${address.port}\n`);
}

if (httpsServer) {
  httpsServer.listen(port, '127.0.0.1', () => announce(httpsServer.address()));
} else {
  wss.on('listening', () => announce(wss.address()));
}

const quit = () => process.exit(0);
process.on('SIGTERM', quit);
process.on('SIGINT', quit);
process.stdin.on('end', quit);
process.stdin.on('close', quit);
process.stdin.resume();
