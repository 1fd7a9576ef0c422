"""heartbeat: the server pings, drops a client that stops answering, and says why.

The page's blocks run the reader's ``python app.py`` (heartbeat=30) and
``python silent.py`` (heartbeat=2) once. Here the recipe's ``create_app()`` gets
short heartbeats; the clients are raw asyncio sockets that do exactly what the
page describes (answer pings or not), and aiohttp's own client.
"""

import asyncio
import base64
import hashlib
import itertools
import logging
import os
import re
import socket
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from packaging.version import Version

import pages
from heartbeat.app import create_app

FOLDER = pages.SNIPPETS / "heartbeat"
TIMEOUT = 10
HEARTBEAT = 0.2  # the tests' heartbeat: a ping after 0.2 s, given up 0.1 s later
EARLY = 0.03  # the server starts counting just before the client sees the 101
LATE = 0.15  # a loaded machine's delay in waking up a timer
CLOSE, PING, PONG = 0x8, 0x9, 0xA
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
AIOHTTP = Version(aiohttp.__version__)


def handshake(path: str = "/ws") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    ).encode()


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A frame as a client sends it: masked (with an all-zero key)."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + bytes(4) + payload


async def open_websocket(port: int):
    """A raw websocket: the handshake done, nothing else."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(handshake())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer


async def next_frame(reader) -> tuple[int, bytes] | None:
    """The server's next frame (opcode, payload), or None when it closes the TCP
    connection."""
    try:
        first, second = await reader.readexactly(2)
        return first & 0x0F, await reader.readexactly(second & 0x7F)
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return None


def handler_log(caplog) -> list[tuple[str, str]]:
    return [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == "heartbeat.app"
    ]


async def until_logged(caplog, words: str) -> list[tuple[str, str]]:
    """The handler's log, once a line with ``words`` is in it."""
    async with asyncio.timeout(TIMEOUT):
        while not any(words in line for _, line in handler_log(caplog)):
            await asyncio.sleep(0.01)
    return handler_log(caplog)


@pytest.fixture
def caplog(caplog):
    """caplog, recording the recipe's INFO lines too."""
    caplog.set_level(logging.INFO, logger="heartbeat.app")
    return caplog


@dataclass
class Served:
    runner: web.AppRunner
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def serve():
    """Serve an app on 127.0.0.1 with ``web.run_app()``'s runner settings
    (handlers are not cancelled when their connection goes); stop it after."""
    runners = []

    async def start(app: web.Application, **kwargs) -> Served:
        runner = web.AppRunner(app, shutdown_timeout=1, **kwargs)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return Served(runner, runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def server(serve):
    """The recipe's app with a short heartbeat."""
    return await serve(create_app(HEARTBEAT))


def no_pong(heartbeat: float) -> str:
    return f"TimeoutError('No PONG received after {heartbeat / 2} seconds')"


# --- a client that stops answering ------------------------------------------------


@pytest.mark.claim("服务器就发一个不带数据的 PING 帧")
@pytest.mark.claim("不发关闭帧，直接关闭 TCP 连接")
@pytest.mark.claim("`ws.close_code` 是 1006")
@pytest.mark.claim("`ws.exception()` 是一个 `asyncio.TimeoutError`")
@pytest.mark.claim("先收到一条 `WSMsgType.ERROR` 消息，`msg.data` 就是这个异常")
@pytest.mark.claim("下一轮循环就结束了")
@pytest.mark.claim("大约 1.5 倍的 `heartbeat` 之后，服务器断开它")
@pytest.mark.parametrize("heartbeat", [HEARTBEAT, 2 * HEARTBEAT])
async def test_a_client_that_never_answers_is_dropped(serve, caplog, heartbeat):
    server = await serve(create_app(heartbeat))
    loop = asyncio.get_running_loop()
    reader, writer = await open_websocket(server.port)
    start = loop.time()
    frames = []
    async with asyncio.timeout(TIMEOUT):
        while (frame := await next_frame(reader)) is not None:
            frames.append((loop.time() - start, frame))
    closed_at = loop.time() - start
    writer.close()

    assert [frame for _, frame in frames] == [(PING, b"")]  # no close frame
    ping_at = frames[0][0]
    assert heartbeat - EARLY <= ping_at <= heartbeat + LATE, ping_at
    assert heartbeat / 2 - EARLY <= closed_at - ping_at <= heartbeat / 2 + LATE
    assert await until_logged(caplog, "断开了") == [
        ("INFO", "127.0.0.1 连上了"),
        ("WARNING", f"127.0.0.1 出错：{no_pong(heartbeat)}"),
        ("INFO", f"127.0.0.1 断开了，关闭码 1006，异常 {no_pong(heartbeat)}"),
    ]


@pytest.mark.claim("清理要写在 `finally` 里")
@pytest.mark.claim("没有那条 ERROR 消息，`async for` 之后的代码也不运行")
async def test_with_handler_cancellation_only_finally_runs(serve, caplog):
    server = await serve(create_app(HEARTBEAT), handler_cancellation=True)
    reader, writer = await open_websocket(server.port)
    async with asyncio.timeout(TIMEOUT):
        while await next_frame(reader) is not None:
            pass
    writer.close()
    assert await until_logged(caplog, "断开了") == [
        ("INFO", "127.0.0.1 连上了"),
        ("INFO", f"127.0.0.1 断开了，关闭码 1006，异常 {no_pong(HEARTBEAT)}"),
    ]


@pytest.mark.claim("服务器的 `async for msg in ws` 随之结束")
async def test_a_client_that_answers_every_ping_stays(server, caplog):
    loop = asyncio.get_running_loop()
    reader, writer = await open_websocket(server.port)
    answered = []
    async with asyncio.timeout(TIMEOUT):
        while len(answered) < 3:  # the give-up time went by twice
            assert await next_frame(reader) == (PING, b"")
            writer.write(client_frame(PONG))
            answered.append(loop.time())
        writer.write(client_frame(CLOSE, (1000).to_bytes(2, "big")))
        assert await next_frame(reader) == (CLOSE, (1000).to_bytes(2, "big"))
        assert await next_frame(reader) is None
    writer.close()
    gaps = [b - a for a, b in itertools.pairwise(answered)]
    for gap in gaps:  # the next ping comes a heartbeat after the pong
        assert HEARTBEAT - EARLY <= gap <= HEARTBEAT + LATE, gaps
    assert await until_logged(caplog, "断开了") == [
        ("INFO", "127.0.0.1 连上了"),
        ("INFO", "127.0.0.1 断开了，关闭码 1000，异常 None"),
    ]


@pytest.mark.claim("这段时间里收到了 PONG，就从收到的时刻起重新计时")
async def test_the_next_ping_counts_from_the_pong(serve):
    """PONGs sent `delay` late: the next PING comes a heartbeat after the PONG,
    not a heartbeat after the PING (apart by more than the timers' slack)."""
    heartbeat, delay = 0.6, 0.25  # delay < heartbeat / 2: the server waits that long
    assert delay > EARLY + LATE
    server = await serve(create_app(heartbeat))
    loop = asyncio.get_running_loop()
    reader, writer = await open_websocket(server.port)
    pings = []
    async with asyncio.timeout(TIMEOUT):
        while len(pings) < 3:
            assert await next_frame(reader) == (PING, b"")
            pings.append(loop.time())
            await asyncio.sleep(delay)
            writer.write(client_frame(PONG))
    writer.close()
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    for gap in gaps:
        assert delay + heartbeat - EARLY <= gap <= delay + heartbeat + LATE, gaps


async def test_the_handler_echoes_text(server):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.url("/ws")) as ws:
            await ws.send_str("你好")
            async with asyncio.timeout(TIMEOUT):
                assert await ws.receive_str() == "你好"


async def plain_echo(request: web.Request) -> web.WebSocketResponse:
    """The handler without heartbeat: aiohttp's default."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        await ws.send_str(msg.data)
    return ws


@pytest.mark.claim("处理器会一直停在 `async for` 里等下一条消息")
@pytest.mark.claim("aiohttp 默认给服务器的每个连接打开 TCP keepalive")
async def test_without_heartbeat_nothing_notices(serve):
    app = web.Application()
    app.router.add_get("/ws", plain_echo)
    server = await serve(app)
    reader, writer = await open_websocket(server.port)
    # Twice as long as the recipe needs to notice: not a byte, no close.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.read(1), 2 * 1.5 * HEARTBEAT)
    [connection] = server.runner.server.connections
    sock = connection.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    writer.close()


# --- aiohttp's client ----------------------------------------------------------------


@pytest.mark.claim("一直用 `async for` 读消息的客户端，连接会一直保持")
async def test_an_aiohttp_client_that_reads_stays(server, caplog):
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.url("/ws"))
        echoed = asyncio.get_running_loop().create_future()

        async def read() -> None:
            async for msg in ws:
                echoed.set_result(msg.data)

        reading = asyncio.create_task(read())
        await asyncio.sleep(2 * 1.5 * HEARTBEAT)  # twice the give-up time
        assert not ws.closed and not reading.done()
        await ws.send_str("还在")
        async with asyncio.timeout(TIMEOUT):
            assert await echoed == "还在"
            await ws.close()
            await reading
    assert ws.close_code == 1000
    assert (await until_logged(caplog, "断开了"))[-1] == (
        "INFO",
        "127.0.0.1 断开了，关闭码 1000，异常 None",
    )


@pytest.mark.claim("连上以后不调用 `receive()` 的 aiohttp 客户端不回 PONG")
async def test_an_aiohttp_client_that_does_not_read_is_dropped(server, caplog):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.url("/ws")):
            log = await until_logged(caplog, "断开了")  # never reads
    assert log[-1] == (
        "INFO",
        f"127.0.0.1 断开了，关闭码 1006，异常 {no_pong(HEARTBEAT)}",
    )


async def push_only(request: web.Request) -> web.WebSocketResponse:
    """Sends 10 messages, 0.05 s apart, and never reads."""
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT)
    await ws.prepare(request)
    for n in range(10):
        if ws.closed:
            break
        await ws.send_str(str(n))
        await asyncio.sleep(0.05)
    await ws.close()
    return ws


@pytest.mark.claim("一个只往外发、从不读的处理器，即使客户端按时回了 PONG")
@pytest.mark.claim("也会在大约 1.5 倍的 `heartbeat` 之后把它断开")
@pytest.mark.claim("3.14.0 起，收到任何数据都会让心跳重新计时")
async def test_a_handler_that_never_reads(serve):
    app = web.Application()
    app.router.add_get("/ws", push_only)
    server = await serve(app)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.url("/ws")) as ws:
            opened = loop.time()
            async with asyncio.timeout(TIMEOUT):
                got = [msg.data async for msg in ws]  # answers every ping
            took = loop.time() - opened
    if AIOHTTP >= Version("3.14"):
        assert got == [str(n) for n in range(10)]
        assert ws.close_code == 1000
    else:  # dropped after about 1.5 heartbeats: the pongs were never read
        assert len(got) < 10, got
        assert ws.close_code == 1006
        assert 1.5 * HEARTBEAT - EARLY <= took <= 1.5 * HEARTBEAT + LATE, took


async def silent_server(reader, writer) -> None:
    """Accepts the websocket handshake, then never answers anything."""
    head = await reader.readuntil(b"\r\n\r\n")
    key = re.search(rb"(?i)\r\nSec-WebSocket-Key: *(\S+)", head).group(1)
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    await reader.read()  # until the client goes
    writer.close()


@pytest.mark.claim("`msg.data` 是 `aiohttp.ServerTimeoutError`")
@pytest.mark.claim("然后结束，`ws.close_code` 是 1006")
async def test_the_client_heartbeat_notices_a_silent_server():
    listener = await asyncio.start_server(silent_server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/"
            async with session.ws_connect(url, heartbeat=HEARTBEAT) as ws:
                start = loop.time()
                async with asyncio.timeout(TIMEOUT):
                    messages = [msg async for msg in ws]
                took = loop.time() - start
    finally:
        listener.close()
        await listener.wait_closed()
    [msg] = messages
    assert msg.type is aiohttp.WSMsgType.ERROR
    assert isinstance(msg.data, aiohttp.ServerTimeoutError), msg.data
    assert ws.close_code == 1006
    assert 1.5 * HEARTBEAT - EARLY <= took <= 1.5 * HEARTBEAT + LATE, took


# --- receive_timeout -----------------------------------------------------------------

RECEIVE_TIMEOUT = web.AppKey("receive_timeout", float)
HEARTBEAT_KEY = web.AppKey("heartbeat", float)
OUTCOME = web.AppKey("outcome", asyncio.Future)


async def reader_with_timeout(request: web.Request) -> web.WebSocketResponse:
    """Reads with receive_timeout (and a heartbeat if the app has one); tells the
    test what ended the read, and keeps the connection open a moment longer."""
    ws = web.WebSocketResponse(
        heartbeat=request.app.get(HEARTBEAT_KEY),
        receive_timeout=request.app[RECEIVE_TIMEOUT],
    )
    await ws.prepare(request)
    try:
        async for msg in ws:
            await ws.send_str(msg.data)
    except asyncio.TimeoutError as exc:
        request.app[OUTCOME].set_result((exc, ws.closed))
        await asyncio.sleep(0.1)  # the client would see a close here, if any
        raise  # not caught: aiohttp logs it
    request.app[OUTCOME].set_result(None)
    return ws


def timeout_app(receive_timeout: float, heartbeat: float | None = None):
    app = web.Application()
    app[RECEIVE_TIMEOUT] = receive_timeout
    if heartbeat is not None:
        app[HEARTBEAT_KEY] = heartbeat
    app[OUTCOME] = asyncio.get_running_loop().create_future()
    app.router.add_get("/ws", reader_with_timeout)
    return app


@pytest.mark.claim("它不发 PING，也不关闭连接")
@pytest.mark.claim(
    "`receive()` 抛出 `asyncio.TimeoutError`，`async for` 也一样抛出，连接仍然开着"
)
@pytest.mark.claim(
    "aiohttp 就记一条 `Error handling request` 的错误日志，直接断开连接，不发关闭帧"
)
async def test_receive_timeout_raises_and_leaves_the_connection_open(serve, caplog):
    app = timeout_app(receive_timeout=HEARTBEAT)
    server = await serve(app)
    loop = asyncio.get_running_loop()
    reader, writer = await open_websocket(server.port)
    start = loop.time()
    async with asyncio.timeout(TIMEOUT):
        exc, closed = await app[OUTCOME]
        raised_at = loop.time() - start
        assert not closed
        assert await next_frame(reader) is None  # no close frame, no ping
    writer.close()
    assert type(exc) is asyncio.TimeoutError
    assert HEARTBEAT - EARLY <= raised_at <= HEARTBEAT + LATE, raised_at
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["Error handling request from 127.0.0.1"]
    caplog.clear()  # logged on purpose


@pytest.mark.claim("回 PONG 的客户端\n  即使从不发消息，也不会触发它")
@pytest.mark.claim("本站的测试用的是 `heartbeat` 的两倍")
async def test_pongs_end_each_wait_of_receive_timeout(serve):
    app = timeout_app(receive_timeout=2 * HEARTBEAT, heartbeat=HEARTBEAT)
    server = await serve(app)
    reader, writer = await open_websocket(server.port)
    async with asyncio.timeout(TIMEOUT):
        for _ in range(3):  # 3 heartbeats: 1.5 times the receive_timeout
            assert await next_frame(reader) == (PING, b"")
            writer.write(client_frame(PONG))
        assert not app[OUTCOME].done()
        writer.write(client_frame(CLOSE, (1000).to_bytes(2, "big")))
        assert await app[OUTCOME] is None  # the loop ended on the close frame
    writer.close()


# --- silent.py, as the page runs it ----------------------------------------------


@pytest.fixture
def silent():
    """silent.py imported as a reader runs it: from a folder that holds app.py."""
    with pages.imported(FOLDER, "app", "silent") as modules:
        yield modules["silent"]
    logging.getLogger("app").handlers.clear()


def whole_seconds_and_rest(output: str) -> tuple[list[int], str]:
    seconds = [int(s) for s in re.findall(r"^(\d+) 秒：", output, re.M)]
    rest = re.sub(r"^\d+ 秒：", "N 秒：", output, flags=re.M)
    return seconds, re.sub(r"after [\d.]+ seconds", "after T seconds", rest)


async def test_silent_py_prints_what_the_page_shows(silent, capsys):
    """The page block waits the reader's 3 s; here heartbeat=0.6: a ping after
    0.6 s and the end 0.3 s later, both printed as 1 s."""
    async with asyncio.timeout(TIMEOUT):
        await silent.main(heartbeat=0.6)
    printed, printed_rest = whole_seconds_and_rest(capsys.readouterr().out)
    shown, shown_rest = whole_seconds_and_rest(
        (FOLDER / "silent.txt").read_text("utf-8")
    )
    assert printed_rest == shown_rest, printed_rest
    assert printed == [1, 1] and shown == [2, 3], (printed, shown)
