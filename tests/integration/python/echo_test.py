"""Integration tests: Python's `websockets` (Debian, 10.4, asyncio API)
against examples/echo_server, checked against RFC 6455, RFC 7692 and the
echo_server contract (Close 1001 and exit 0 on SIGTERM).

    ECHO_SERVER=build/integ/examples/echo_server \\
        /usr/bin/python3 -m unittest discover -v -s tests/integration/python -p echo_test.py

Every test starts its own server on a free port (WEBSOCKET_PORT=0) bound to
127.0.0.1, in an empty working directory (so no stray .env is read), and
stops it with SIGTERM, asserting a clean exit. Every await has a deadline.
"""

import asyncio
import contextlib
import os
import random
import re
import signal
import ssl
import subprocess
import tempfile
import unittest

import websockets
import websockets.frames

HERE = os.path.dirname(os.path.abspath(__file__))
# Absolute: the server runs in a scratch working directory.
ECHO_SERVER = os.path.abspath(
    os.environ.get("ECHO_SERVER")
    or os.path.join(HERE, "..", "..", "..", "build", "integ", "examples", "echo_server")
)
MiB = 1 << 20

# Deadlines (s). Generous enough for a Debug build on a shared 2-core box.
START_S = 10
STOP_S = 10
STEP_S = 5
BIG_S = 60


async def within(awaitable, seconds=STEP_S):
    """`awaitable`'s result, or asyncio.TimeoutError after `seconds`."""
    return await asyncio.wait_for(awaitable, seconds)


def pattern(n, seed=0):
    """Deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


def compressible_text(n):
    lines = (f"line {i % 1000}: the quick brown fox jumps over the lazy dog\n" for i in range(n))
    out, size = [], 0
    for line in lines:
        if size >= n:
            break
        out.append(line)
        size += len(line)
    return "".join(out)[:n]


def first_difference(a, b):
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


class EchoServer:
    """One echo_server process; `stop()` sends SIGTERM and returns the exit code."""

    def __init__(self, proc, workdir):
        self.proc = proc
        self.workdir = workdir
        self.port = None
        self.scheme = "ws"
        self.ssl = None  # client SSL context for wss://
        self.stderr = bytearray()
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())

    async def _drain_stderr(self):
        while chunk := await self.proc.stderr.read(4096):
            self.stderr += chunk
            del self.stderr[:-16384]

    def tail(self):
        return "\n--- server stderr (tail) ---\n" + self.stderr[-4000:].decode(errors="replace")

    @property
    def uri(self):
        return f"{self.scheme}://127.0.0.1:{self.port}/"

    async def wait_listening(self):
        pattern_ = re.compile(rb"echo_server listening on port (\d+)")
        seen = b""
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                await within(self.proc.wait(), STOP_S)
                raise AssertionError(
                    f"echo_server exited ({self.proc.returncode}) before listening" + self.tail()
                )
            seen += line
            m = pattern_.search(seen)
            if m:
                self.port = int(m.group(1))
                return

    def terminate(self):
        """SIGTERM once: a second one forces the drain (exit status 3)."""
        if self.proc.returncode is None and not getattr(self, "terminated", False):
            self.terminated = True
            self.proc.send_signal(signal.SIGTERM)

    async def stop(self):
        self.terminate()
        try:
            await within(self.proc.wait(), STOP_S)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError("echo_server did not exit within 10 s of SIGTERM" + self.tail())
        finally:
            await within(self._stderr_task, STEP_S)
        return self.proc.returncode


def server_env(overrides):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WEBSOCKET_") and not k.startswith("SERVER_")
    }
    env.update({"WEBSOCKET_PORT": "0", "WEBSOCKET_HOST": "127.0.0.1"})
    env.update(overrides)
    return env


async def start_server(env=None):
    if not os.access(ECHO_SERVER, os.X_OK):
        raise AssertionError(f"echo_server not found at {ECHO_SERVER} (set ECHO_SERVER)")
    workdir = tempfile.TemporaryDirectory(prefix="ebb-integ-py-")
    proc = await asyncio.create_subprocess_exec(
        ECHO_SERVER,
        cwd=workdir.name,
        env=server_env(env or {}),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    srv = EchoServer(proc, workdir)
    try:
        await within(srv.wait_listening(), START_S)
    except BaseException:
        proc.kill()
        await proc.wait()
        workdir.cleanup()
        raise
    return srv


@contextlib.asynccontextmanager
async def echo_server(test, env=None):
    """A running server; on leaving, SIGTERM and assert exit code 0.
    A failure inside the block wins over one in stopping."""
    srv = await start_server(env)
    try:
        yield srv
    except BaseException:
        with contextlib.suppress(BaseException):
            await srv.stop()
        srv.workdir.cleanup()
        raise
    code = await srv.stop()
    srv.workdir.cleanup()
    test.assertEqual(code, 0, "echo_server did not exit cleanly" + srv.tail())


def connect(srv, **kwargs):
    """websockets.connect with our defaults: no client heartbeat (it would
    hide the server's), no size limit below the server's, bounded timeouts."""
    options = dict(ping_interval=None, max_size=64 * MiB, open_timeout=STEP_S, close_timeout=STEP_S)
    if srv.ssl is not None:
        options["ssl"] = srv.ssl
    options.update(kwargs)
    return websockets.connect(srv.uri, **options)


@contextlib.asynccontextmanager
async def tls_echo_server(test, env=None):
    """echo_server serving wss:// with a fresh self-signed certificate given
    through WEBSOCKET_TLS_CERT/WEBSOCKET_TLS_KEY (the config path)."""
    with tempfile.TemporaryDirectory(prefix="ebb-integ-tls-") as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", key, "-out", cert],
            check=True, capture_output=True, timeout=60,
        )
        async with echo_server(test, {"WEBSOCKET_TLS_CERT": cert, "WEBSOCKET_TLS_KEY": key,
                                      **(env or {})}) as srv:
            srv.scheme = "wss"
            srv.ssl = ssl.create_default_context(cafile=cert)  # verifies chain and IP
            yield srv


class PingCountingProtocol(websockets.WebSocketClientProtocol):
    """Counts the server's pings (the library answers them itself)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.server_pings = 0
        self._ping_seen = asyncio.Event()

    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        if frame.opcode == websockets.frames.Opcode.PING:
            self.server_pings += 1
            self._ping_seen.set()
        return frame

    async def wait_pings(self, n):
        while self.server_pings < n:
            self._ping_seen.clear()
            await self._ping_seen.wait()


class EchoTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        # The runner enables asyncio debug mode, whose slow-callback warnings
        # about multi-megabyte sends are noise here.
        asyncio.get_running_loop().set_debug(False)

    async def echo(self, ws, message, seconds=STEP_S):
        await within(ws.send(message), seconds)
        got = await within(ws.recv(), seconds)
        self.assertIsInstance(got, type(message))
        self.assertSame(got, message)

    def assertSame(self, got, expected):
        """Equality that reports the first difference, not megabytes of diff."""
        if got != expected:
            i = first_difference(got, expected)
            self.fail(
                f"echo differs: length {len(got)} (expected {len(expected)}), first difference "
                f"at {i}: got {got[i:i + 24]!r}, expected {expected[i:i + 24]!r}"
            )

    async def expect_close(self, ws, code, seconds=STEP_S):
        """Waits for the connection to close and asserts the code the server sent."""
        await within(ws.wait_closed(), seconds)
        rcvd = ws.close_rcvd
        self.assertIsNotNone(rcvd, f"no Close frame from the server (close_code {ws.close_code})")
        self.assertEqual(rcvd.code, code, f"close code {rcvd.code} ({rcvd.reason!r})")

    # ------------------------------------------------------------- echo

    async def test_text_echo(self):
        async with echo_server(self) as srv, connect(srv) as ws:
            for text in ["hello", "héllo wörld — 日本語 🎉 \U0010ffff", "", "x" * 70000]:
                await self.echo(ws, text)

    async def test_binary_echo_sizes(self):
        async with echo_server(self) as srv, connect(srv) as ws:
            for size in [0, 1, 125, 126, 127, 65535, 65536, MiB]:
                await self.echo(ws, pattern(size, size), BIG_S)

    async def test_binary_echo_16_mib(self):
        async with echo_server(self) as srv, connect(srv) as ws:
            await self.echo(ws, pattern(16 * MiB, 16), BIG_S)

    async def test_many_messages_in_order(self):
        async with echo_server(self) as srv, connect(srv) as ws:
            n = 2000
            for i in range(n):
                await within(ws.send(f"m{i}" if i % 2 else f"b{i}".encode()))
            for i in range(n):
                expected = f"m{i}" if i % 2 else f"b{i}".encode()
                self.assertEqual(await within(ws.recv(), BIG_S), expected, f"message {i}")

    async def test_fragmented_send(self):
        async with echo_server(self) as srv, connect(srv) as ws:
            # A list is sent as one fragmented message.
            await within(ws.send(["frag", "mented ", "€uro"]))
            self.assertEqual(await within(ws.recv()), "fragmented €uro")
            chunks = [pattern(1000, k) for k in range(3)]
            await within(ws.send(chunks))
            self.assertSame(await within(ws.recv()), b"".join(chunks))

            async def fragments():
                for part in ["async ", "iterator ", "fragments"]:
                    yield part

            await within(ws.send(fragments()))
            self.assertEqual(await within(ws.recv()), "async iterator fragments")
            # Exactly one echo per message: the next one is the sentinel.
            await self.echo(ws, "sentinel")

    # -------------------------------------------------------- ping/pong

    async def test_client_ping_gets_pong(self):
        async with echo_server(self) as srv, connect(srv) as ws:
            for payload in [b"are you there?", b""]:
                pong = await within(ws.ping(payload))
                await within(pong)
            await self.echo(ws, "still open")

    async def test_server_heartbeat_keeps_compliant_client(self):
        env = {"WEBSOCKET_PING_INTERVAL_MS": "200", "WEBSOCKET_PONG_TIMEOUT_MS": "500"}
        async with echo_server(self, env) as srv:
            async with connect(srv, create_protocol=PingCountingProtocol) as ws:
                # websockets answers each ping itself; 6 pings span more than
                # the pong timeout, so answered pings must keep the session.
                await within(ws.wait_pings(6), STEP_S)
                self.assertTrue(ws.open, f"closed by the server: {ws.close_code}")
                await self.echo(ws, "alive after pings")

    # ------------------------------------------------------ compression

    async def test_compression_on(self):
        async with echo_server(self, {"WEBSOCKET_DEFLATE": "true"}) as srv:
            async with connect(srv) as ws:  # compression="deflate" is the default
                names = [e.name for e in ws.extensions]
                self.assertIn("permessage-deflate", names)
                await self.echo(ws, compressible_text(MiB), BIG_S)
                await self.echo(ws, compressible_text(MiB).encode(), BIG_S)
                await self.echo(ws, pattern(100000, 3), BIG_S)
                await self.echo(ws, "short")

    async def test_compression_off_on_client(self):
        async with echo_server(self, {"WEBSOCKET_DEFLATE": "true"}) as srv:
            async with connect(srv, compression=None) as ws:
                self.assertEqual(ws.extensions, [])
                await self.echo(ws, compressible_text(MiB), BIG_S)

    async def test_compression_off_on_server(self):
        async with echo_server(self, {"WEBSOCKET_DEFLATE": "false"}) as srv:
            async with connect(srv) as ws:
                self.assertEqual(ws.extensions, [])
                await self.echo(ws, compressible_text(MiB), BIG_S)

    # ------------------------------------------------------ subprotocol

    async def test_subprotocol(self):
        async with echo_server(self, {"WEBSOCKET_SUBPROTOCOLS": "chat,superchat"}) as srv:
            async with connect(srv, subprotocols=["superchat"]) as ws:
                self.assertEqual(ws.subprotocol, "superchat")
                await self.echo(ws, "proto")

    # ------------------------------------------------------------ close

    async def test_client_close_1000(self):
        async with echo_server(self) as srv, connect(srv) as ws:
            await self.echo(ws, "before close")
            await within(ws.close(1000, "bye"))
            self.assertEqual(ws.close_rcvd.code, 1000)
            self.assertEqual(ws.close_code, 1000)

    async def test_client_close_4000(self):
        async with echo_server(self) as srv, connect(srv) as ws:
            await within(ws.close(4000, "app specific"))
            self.assertEqual(ws.close_rcvd.code, 4000)

    async def test_sigterm_closes_clients_with_1001(self):
        srv = await start_server()
        try:
            clients = [await within(connect(srv)) for _ in range(3)]
            for ws in clients:
                await self.echo(ws, "hi")
            srv.terminate()
            for ws in clients:
                await self.expect_close(ws, 1001, STOP_S)
        finally:
            code = await srv.stop()
            srv.workdir.cleanup()
        self.assertEqual(code, 0, "echo_server did not exit cleanly" + srv.tail())

    # -------------------------------------------------------------- TLS

    async def test_tls_echo(self):
        async with tls_echo_server(self) as srv, connect(srv) as ws:
            await self.echo(ws, "hello over TLS")
            for size in [0, 125, 65536, MiB, 16 * MiB]:
                await self.echo(ws, pattern(size, size), BIG_S)

    async def test_tls_pipelined_messages_in_order(self):
        # Sent without waiting: the server echoes while its earlier TLS
        # writes (many records each) are still in flight.
        async with tls_echo_server(self) as srv, connect(srv) as ws:
            messages = [pattern(100_000 + i, i) for i in range(200)]
            for m in messages:
                await within(ws.send(m))
            for i, m in enumerate(messages):
                got = await within(ws.recv(), BIG_S)
                self.assertSame(got, m)

    async def test_tls_with_compression(self):
        async with tls_echo_server(self, {"WEBSOCKET_DEFLATE": "true"}) as srv:
            async with connect(srv) as ws:
                self.assertIn("permessage-deflate", [e.name for e in ws.extensions])
                await self.echo(ws, compressible_text(MiB), BIG_S)

    async def test_tls_sigterm_closes_with_1001(self):
        async with tls_echo_server(self) as srv, connect(srv) as ws:
            await self.echo(ws, "hi")
            srv.terminate()
            await self.expect_close(ws, 1001, STOP_S)

    async def test_oversize_message_1009(self):
        async with echo_server(self, {"WEBSOCKET_MAX_MESSAGE_SIZE": "1024"}) as srv:
            async with connect(srv) as ws:
                await self.echo(ws, pattern(1024))
                with contextlib.suppress(websockets.ConnectionClosed):
                    await within(ws.send(pattern(2000)))
                await self.expect_close(ws, 1009)
            async with connect(srv) as ws:  # the server still serves others
                await self.echo(ws, "next client")

    async def test_oversize_default_limit_1009(self):
        async with echo_server(self) as srv, connect(srv) as ws:
            with contextlib.suppress(websockets.ConnectionClosed):
                await within(ws.send(pattern(16 * MiB + 1)), BIG_S)
            await self.expect_close(ws, 1009, BIG_S)


if __name__ == "__main__":
    unittest.main(verbosity=2)
