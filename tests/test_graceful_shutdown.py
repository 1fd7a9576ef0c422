"""graceful_shutdown: websockets closed with 1001, in-flight requests finish.

The page's own block runs the reader's ``python app.py`` with its real times (a
3 s report, ``shutdown_timeout=4``) once. The processes started here run the
same ``create_app()`` from a copy of app.py through a small launcher that passes
a short step and a short ``shutdown_timeout`` to ``run_app()``.
"""

import asyncio
import shutil
import signal
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from graceful_shutdown import ctrl_c
from graceful_shutdown.app import WEBSOCKETS, close_websockets, create_app
from servers import python_program

APP = (
    Path(__file__).resolve().parent.parent / "snippets" / "graceful_shutdown" / "app.py"
)
TIMEOUT = 15
STEP = 0.05  # the report's step: 3 steps, 0.15 s
SHUTDOWN_TIMEOUT = 2.0  # long enough for a 0.15 s report
# Not waiting takes milliseconds (1.15 s once, with this machine's two cores
# running five test processes); what these checks rule out takes 10 s or more.
PROMPTLY = 5.0
FULL_REPORT = "第 1 段\n第 2 段\n第 3 段\n"
SIGNALS = [signal.SIGINT, signal.SIGTERM]
CTRL_C_LINES = [
    "WebSocket 收到：CLOSE 1001 server shutdown",
    "WebSocket 收到：CLOSE 1001 server shutdown",
    "新的连接：被拒绝",
    f"/report: 200 {FULL_REPORT!r}",
    "服务器退出码：0",
]
CLEANUP_LINES = ["on_cleanup ran", "cleanup_ctx ran"]
LAUNCHER = '''\
"""The recipe's create_app() under run_app() with the test's times."""

import os

from aiohttp import web

from recipe import create_app


async def on_cleanup(app):
    print("on_cleanup ran", flush=True)


async def context(app):
    yield
    print("cleanup_ctx ran", flush=True)


app = create_app({step})
app.on_cleanup.append(on_cleanup)
app.cleanup_ctx.append(context)
web.run_app(
    app,
    host="127.0.0.1",
    port=int(os.environ["PORT"]),
    shutdown_timeout={shutdown_timeout},
)
'''


def launcher(folder: Path, step: float, shutdown_timeout: float) -> Path:
    """``folder/app.py``: runs a copy of the recipe (``recipe.py``) with these times."""
    shutil.copy(APP, folder / "recipe.py")
    path = folder / "app.py"
    path.write_text(
        LAUNCHER.format(step=step, shutdown_timeout=shutdown_timeout), "utf-8"
    )
    return path


@pytest.fixture
def app_py(tmp_path) -> Path:
    """A quick app.py (0.15 s report) in a folder of the test's own."""
    return launcher(tmp_path, STEP, SHUTDOWN_TIMEOUT)


@pytest.fixture
async def client(aiohttp_client):
    """The recipe's app with a fast report, served on 127.0.0.1."""
    return await aiohttp_client(create_app(STEP))


async def close_message(ws) -> tuple[aiohttp.WSMsgType, object, object]:
    async with asyncio.timeout(TIMEOUT):
        msg = await ws.receive()
    return msg.type, msg.data, msg.extra


CLOSED_1001 = (aiohttp.WSMsgType.CLOSE, 1001, "server shutdown")


async def test_websocket_echoes_text(client):
    async with client.ws_connect("/ws") as ws:
        await ws.send_bytes(b"\x00")  # ignored
        await ws.send_str("hello")
        async with asyncio.timeout(TIMEOUT):
            assert await ws.receive_str() == "hello"


async def test_report_arrives_in_three_parts(client):
    resp = await client.get("/report")
    body = await resp.text()
    assert resp.status == 200, body
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8", body
    assert body == FULL_REPORT


async def test_closing_the_server_closes_websockets_and_finishes_the_report(
    aiohttp_server, aiohttp_client
):
    server = await aiohttp_server(create_app(STEP), shutdown_timeout=TIMEOUT)
    client = await aiohttp_client(server)
    sockets = [await client.ws_connect("/ws") for _ in range(3)]
    report = await client.get("/report")  # headers are in: the handler is running

    closing = asyncio.create_task(server.close())  # what run_app does on Ctrl+C
    for ws in sockets:
        assert await close_message(ws) == CLOSED_1001
    assert await report.text() == FULL_REPORT
    async with asyncio.timeout(TIMEOUT):
        await closing
    assert server.app[WEBSOCKETS] == set()


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 response with a Content-Length, read off a bare socket."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


@pytest.mark.claim("空闲的 keep-alive 连接立即关闭；正在处理请求的连接，请求做完后关闭")
async def test_idle_connections_close_at_once_busy_ones_after_their_request(
    aiohttp_server,
):
    # A 0.3 s report: time enough to see the idle connection go first.
    server = await aiohttp_server(create_app(0.1), shutdown_timeout=TIMEOUT)
    idle, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
    busy, busy_writer = await asyncio.open_connection("127.0.0.1", server.port)
    async with asyncio.timeout(TIMEOUT):
        idle_writer.write(b"GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await read_response(idle)).startswith(b"HTTP/1.1 404 ")
        busy_writer.write(b"GET /report HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        busy_head = await busy.readuntil(b"\r\n\r\n")  # the handler is running

        closing = asyncio.create_task(server.close())
        assert await idle.read() == b""  # closed by the server, request or not
        assert not closing.done()  # ... while the report is still being written
        rest = await busy.read()  # the rest of the report, then the server closes
        await closing
    for writer in (idle_writer, busy_writer):
        writer.close()
    assert busy_head.startswith(b"HTTP/1.1 200 OK\r\n"), busy_head
    assert b"Transfer-Encoding: chunked" in busy_head, busy_head
    assert "第 3 段".encode() in rest and rest.endswith(b"0\r\n\r\n"), rest


@pytest.mark.claim("不读 socket 的客户端也不会延长停机")
@pytest.mark.claim("会读到 1001 的关闭帧，但它的 `close_code` 是 1006")
async def test_a_client_that_does_not_read_does_not_hold_shutdown(
    aiohttp_server, aiohttp_client
):
    server = await aiohttp_server(create_app(STEP), shutdown_timeout=TIMEOUT)
    client = await aiohttp_client(server)
    ws = await client.ws_connect("/ws")  # never read until the server is gone

    started = time.monotonic()
    async with asyncio.timeout(TIMEOUT):
        await server.close()
    took = time.monotonic() - started
    # close() waiting for this client's close frame would take 10 s.
    assert took < PROMPTLY, took

    async with asyncio.timeout(TIMEOUT):
        while ws.get_extra_info("peername") is not None:  # the server dropped it
            await asyncio.sleep(0.01)
    assert await close_message(ws) == CLOSED_1001
    assert ws.close_code == 1006, ws.exception()


@pytest.mark.claim("后台任务不在等待之列")
async def test_shutdown_does_not_wait_for_background_tasks(aiohttp_server):
    app = create_app(STEP)
    background: list[asyncio.Task] = []

    async def start_background(app: web.Application) -> None:
        background.append(asyncio.create_task(asyncio.sleep(3600)))

    app.on_startup.append(start_background)
    server = await aiohttp_server(app, shutdown_timeout=TIMEOUT)
    started = time.monotonic()
    await server.close()
    took = time.monotonic() - started
    try:
        # Waiting for every task (3.9) would take shutdown_timeout, 15 s.
        assert took < PROMPTLY, took
        assert not background[0].done()
    finally:
        background[0].cancel()


@pytest.mark.claim("把它传给 `TCPSite` 会得到 `DeprecationWarning`")
async def test_shutdown_timeout_belongs_to_the_runner():
    runner = web.AppRunner(create_app(STEP), shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        with pytest.warns(DeprecationWarning, match="should be set on BaseRunner"):
            web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=SHUTDOWN_TIMEOUT)
    finally:
        await runner.cleanup()


@pytest.mark.claim("就是一个做不完的请求")
@pytest.mark.claim("客户端收不到关闭帧，看到的关闭码是 1006")
@pytest.mark.claim("停机要一直等到大约两倍的 `shutdown_timeout`")
async def test_without_on_shutdown_a_websocket_holds_shutdown_then_drops(
    aiohttp_server, aiohttp_client
):
    app = create_app(STEP)
    app.on_shutdown.remove(close_websockets)
    shutdown_timeout = 0.5  # long enough that 3 waits (1.5 s) are told from 2
    server = await aiohttp_server(app, shutdown_timeout=shutdown_timeout)
    client = await aiohttp_client(server)
    ws = await client.ws_connect("/ws")

    started = time.monotonic()
    closing = asyncio.create_task(server.close())
    msg_type, _, _ = await close_message(ws)
    waited = time.monotonic() - started
    async with asyncio.timeout(TIMEOUT):
        await closing
    assert msg_type is aiohttp.WSMsgType.CLOSED
    assert ws.close_code == 1006  # no close frame: the connection was dropped
    assert 2 * shutdown_timeout - 0.05 <= waited < 3 * shutdown_timeout, waited


@pytest.mark.claim("最坏要等到大约**两倍**的 `shutdown_timeout` 才被取消")
@pytest.mark.claim("会得到 `aiohttp.ClientPayloadError`，只拿到截断的内容")
async def test_a_handler_longer_than_twice_the_timeout_is_cut(
    aiohttp_server, aiohttp_client
):
    shutdown_timeout = 0.5  # long enough that 3 waits (1.5 s) are told from 2
    # Parts at 0.7 s, 1.4 s, 2.1 s: the first is written before the cut at 1 s
    server = await aiohttp_server(create_app(0.7), shutdown_timeout=shutdown_timeout)
    client = await aiohttp_client(server)
    report = await client.get("/report")

    started = time.monotonic()
    async with asyncio.timeout(TIMEOUT):
        await server.close()
    waited = time.monotonic() - started
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in report.content.iter_any():
            received += chunk
    assert received.decode() == "第 1 段\n", received  # truncated
    # First wait for the handler, then cancel it and wait again: about 2x.
    assert 2 * shutdown_timeout - 0.05 <= waited < 3 * shutdown_timeout, waited


async def wait_for_exit(server) -> int:
    async with asyncio.timeout(TIMEOUT):
        while server.proc.poll() is None:
            await asyncio.sleep(0.02)
    return server.proc.returncode


@pytest.mark.claim("不会立刻退出，而是按固定的顺序停机")
@pytest.mark.claim("两种信号的效果一样")
@pytest.mark.claim("之后的新连接被拒绝")
@pytest.mark.claim("进程退出码是 0")
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
async def test_signal_closes_websockets_and_lets_the_report_finish(tmp_path, sig):
    # A report of 1.2 s: still running, under any load, when the sockets are closed
    app_py = launcher(tmp_path, 0.4, SHUTDOWN_TIMEOUT)
    with python_program(app_py, stop_signal=sig) as server:
        async with aiohttp.ClientSession(server.url) as session:
            sockets = [await session.ws_connect("/ws") for _ in range(3)]
            report = await session.get("/report")
            server.proc.send_signal(sig)

            for ws in sockets:
                assert await close_message(ws) == CLOSED_1001
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get("/report")
            # the order: on_shutdown is done, the report still runs, no cleanup yet
            assert not report.content.at_eof()
            assert not set(CLEANUP_LINES) & set(server.output().splitlines())
            async with asyncio.timeout(TIMEOUT):
                assert await report.text() == FULL_REPORT
        assert await wait_for_exit(server) == 0, server.output()
    # running() has also checked: exit status 0 and no traceback in the output
    assert set(CLEANUP_LINES) <= set(server.output().splitlines()), server.output()


@pytest.mark.claim("进程立刻以退出码 1 结束，进行中的请求被截断")
@pytest.mark.claim(
    "剩下的停机步骤（包括 `on_cleanup` 和 `cleanup_ctx` 的清理部分）也不再执行"
)
async def test_a_second_ctrl_c_stops_waiting(tmp_path):
    # Without the second Ctrl+C this report would hold shutdown for 2 x 60 s.
    app_py = launcher(tmp_path, step=60.0, shutdown_timeout=60.0)
    with python_program(app_py, expect_clean_exit=False) as server:
        async with aiohttp.ClientSession(server.url) as session:
            ws = await session.ws_connect("/ws")
            report = await session.get("/report")
            server.proc.send_signal(signal.SIGINT)
            await close_message(ws)  # the first Ctrl+C is being handled
            server.proc.send_signal(signal.SIGINT)
            started = time.monotonic()
            assert await wait_for_exit(server) == 1, server.output()
            took = time.monotonic() - started
            with pytest.raises(aiohttp.ClientPayloadError):
                await report.text()
    assert took < PROMPTLY, took
    for line in CLEANUP_LINES:
        assert line not in server.output(), server.output()


@pytest.mark.claim("换成 SIGTERM 结果一样")
async def test_ctrl_c_script_as_a_reader_runs_it(app_py, capsys, monkeypatch):
    """Next to app.py, with its defaults, in a shell without PYTHONUNBUFFERED;
    two copies at once, as each finds a free port of its own. The page runs it
    with SIGINT; one copy here sends SIGTERM (docker stop, systemd)."""
    monkeypatch.chdir(app_py.parent)
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    async with asyncio.timeout(TIMEOUT):
        await asyncio.gather(ctrl_c.main(), ctrl_c.main(sig=signal.SIGTERM))
    out = capsys.readouterr().out
    assert sorted(out.splitlines()) == sorted(CTRL_C_LINES * 2), out
