"""graceful_shutdown: websockets closed with 1001, in-flight requests finish."""

import asyncio
import shutil
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from graceful_shutdown import ctrl_c
from graceful_shutdown.app import WEBSOCKETS, close_websockets, create_app
from servers import python_program

APP = (
    Path(__file__).resolve().parent.parent / "snippets" / "graceful_shutdown" / "app.py"
)
TIMEOUT = 15
STEP = 0.1
FULL_REPORT = "第 1 段\n第 2 段\n第 3 段\n"
SIGNALS = [signal.SIGINT, signal.SIGTERM]
CTRL_C_LINES = [
    "websocket: CLOSE 1001 server shutdown",
    "websocket: CLOSE 1001 server shutdown",
    "新的连接：被拒绝",
    f"/report: 200 {FULL_REPORT!r}",
    "服务器退出码：0",
]


@pytest.fixture
def app_py(tmp_path) -> Path:
    """app.py saved in a folder of the test's own, where its log is written too."""
    return Path(shutil.copy(APP, tmp_path / "app.py"))


@pytest.fixture
async def client(aiohttp_client):
    """The recipe's app with a fast report, served on 127.0.0.1."""
    return await aiohttp_client(create_app(STEP))


async def close_message(ws) -> tuple[aiohttp.WSMsgType, object, object]:
    async with asyncio.timeout(TIMEOUT):
        msg = await ws.receive()
    return msg.type, msg.data, msg.extra


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
        assert await close_message(ws) == (
            aiohttp.WSMsgType.CLOSE,
            1001,
            "server shutdown",
        )
    assert await report.text() == FULL_REPORT
    async with asyncio.timeout(TIMEOUT):
        await closing
    assert server.app[WEBSOCKETS] == set()


async def test_a_handler_longer_than_twice_the_timeout_is_cut(
    aiohttp_server, aiohttp_client
):
    shutdown_timeout = 0.3
    server = await aiohttp_server(create_app(60.0), shutdown_timeout=shutdown_timeout)
    client = await aiohttp_client(server)
    report = await client.get("/report")

    started = time.monotonic()
    async with asyncio.timeout(TIMEOUT):
        await server.close()
    waited = time.monotonic() - started
    with pytest.raises(aiohttp.ClientPayloadError):
        await report.text()
    # First wait for the handler, then cancel it and wait again: about 2x.
    assert 2 * shutdown_timeout - 0.05 <= waited < 5, waited


async def test_without_on_shutdown_a_websocket_holds_shutdown_then_drops(
    aiohttp_server, aiohttp_client
):
    app = create_app(STEP)
    app.on_shutdown.remove(close_websockets)
    shutdown_timeout = 0.3
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
    assert 2 * shutdown_timeout - 0.05 <= waited < 5, waited


async def wait_for_exit(server) -> int:
    async with asyncio.timeout(TIMEOUT):
        while server.proc.poll() is None:
            await asyncio.sleep(0.05)
    return server.proc.returncode


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
async def test_signal_closes_websockets_and_lets_the_report_finish(app_py, sig):
    with python_program(app_py, stop_signal=sig) as server:
        async with aiohttp.ClientSession(server.url) as session:
            sockets = [await session.ws_connect("/ws") for _ in range(3)]
            report = await session.get("/report")
            server.proc.send_signal(sig)

            for ws in sockets:
                assert await close_message(ws) == (
                    aiohttp.WSMsgType.CLOSE,
                    1001,
                    "server shutdown",
                )
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get("/report")
            async with asyncio.timeout(TIMEOUT):
                assert await report.text() == FULL_REPORT
        assert await wait_for_exit(server) == 0, server.output()
    # running() has also checked: exit status 0 and no traceback in the output


async def test_a_second_ctrl_c_stops_waiting(app_py):
    with python_program(app_py, expect_clean_exit=False) as server:
        async with aiohttp.ClientSession(server.url) as session:
            ws = await session.ws_connect("/ws")
            report = await session.get("/report")
            server.proc.send_signal(signal.SIGINT)
            await close_message(ws)  # the first Ctrl+C is being handled
            server.proc.send_signal(signal.SIGINT)
            assert await wait_for_exit(server) == 1, server.output()
            with pytest.raises(aiohttp.ClientPayloadError):
                await report.text()


async def test_ctrl_c_script_shows_what_clients_see(app_py, capsys):
    # The page runs it with SIGINT; SIGTERM (docker stop, systemd) looks the same.
    async with asyncio.timeout(TIMEOUT):
        await ctrl_c.main(str(app_py), signal.SIGTERM)
    out = capsys.readouterr().out
    assert out.splitlines() == CTRL_C_LINES, out


async def test_ctrl_c_script_as_a_reader_runs_it(app_py, capsys, monkeypatch):
    """Next to app.py, with its defaults, in a shell without PYTHONUNBUFFERED;
    two copies at once, as each finds a free port of its own."""
    monkeypatch.chdir(app_py.parent)
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    async with asyncio.timeout(TIMEOUT):
        await asyncio.gather(ctrl_c.main(), ctrl_c.main())
    out = capsys.readouterr().out
    assert sorted(out.splitlines()) == sorted(CTRL_C_LINES * 2), out
