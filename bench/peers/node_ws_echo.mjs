// Node `ws` echo server: the "node-ws" peer of bench/run_echo.sh.
//
//   node bench/peers/node_ws_echo.mjs --port N [--address A]   (default 127.0.0.1)
//
// `ws` comes from tests/node_modules (installed by scripts/setup.sh). No
// permessage-deflate; ws itself sets TCP_NODELAY on every socket. Echo keeps the
// text/binary flag.
//
// Shutdown (SIGINT/SIGTERM): wss.close() stops accepting (ws 8 leaves open clients
// alone), then every client gets close(1001); the process exits when the last
// socket is gone. A second signal exits at once.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/node_modules/', import.meta.url));
const { WebSocketServer } = require('ws');

function parseArgs(argv) {
  const opts = { address: '127.0.0.1', port: 0 };
  for (let i = 0; i + 1 < argv.length; i += 2) {
    if (argv[i] === '--port') opts.port = Number(argv[i + 1]);
    else if (argv[i] === '--address') opts.address = argv[i + 1];
    else return null;
  }
  return argv.length % 2 === 0 && opts.port > 0 ? opts : null;
}

const opts = parseArgs(process.argv.slice(2));
if (!opts) {
  console.error('usage: node node_ws_echo.mjs --port N [--address A]');
  process.exit(1);
}

const wss = new WebSocketServer({
  host: opts.address,
  port: opts.port,
  perMessageDeflate: false,
  backlog: 4096,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});  // a reset peer must not crash the server
});
wss.on('listening', () => console.log(`node_ws_echo listening on ${opts.address}:${opts.port}`));

let stopping = false;
function goAway() {
  if (stopping) process.exit(1);
  stopping = true;
  wss.close();
  for (const client of wss.clients) client.close(1001);
}
process.on('SIGTERM', goAway);
process.on('SIGINT', goAway);
