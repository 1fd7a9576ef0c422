"""server_sent_events: an event stream written by hand and one by aiohttp-sse.

The recipes run on real loopback servers started here with ``web.AppRunner``,
which handles a client going away as ``web.run_app`` does (pytest-aiohttp's
``aiohttp_server`` does not: TestServer always turns on handler cancellation,
which one test shows). Clients are aiohttp's and headless Chromium, whose
``EventSource`` is driven over the DevTools protocol with aiohttp's WebSocket
client.
"""

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

import pages
import servers
from server_sent_events import app as sse_app
from server_sent_events import app_sse, listen

FOLDER = pages.SNIPPETS / "server_sent_events"
LISTEN_OUTPUT = "server_sent_events/listen.txt"
DISCONNECTED = (
    "客户端断开：ClientConnectionResetError('Cannot write to closing transport')"
)
TIMEOUT = 10
CHROMIUM_START = 60  # seconds: as long as a whole page block may take


@contextlib.asynccontextmanager
async def served(app: web.Application, **runner_args):
    """``app`` on a free port of 127.0.0.1, run as web.run_app runs it."""
    runner = web.AppRunner(app, **runner_args)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def sse_log(caplog) -> pytest.LogCaptureFixture:
    """The recipes' INFO records (logger "sse") and everyone's errors."""
    caplog.set_level(logging.INFO, logger="sse")
    return caplog


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def disconnects(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sse"]


async def wait_until(condition, what: str, timeout: float = TIMEOUT) -> float:
    """Seconds until ``condition()`` holds, checked every 10 ms."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"still not {what}"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def next_block(resp: aiohttp.ClientResponse, end: bytes = b"\n\n") -> bytes:
    """The stream up to the next blank line: one event, comment or retry field."""
    async with asyncio.timeout(TIMEOUT):
        return await resp.content.readuntil(end)


# --- the stream written by hand -------------------------------------------------


@pytest.mark.claim("`Content-Type: text/event-stream`")
@pytest.mark.claim("每次 `write()` 的数据马上作为一块发出去")
@pytest.mark.claim("数据里的每一行各占一个 `data:` 字段")
@pytest.mark.claim("先发一行 `retry:`")
async def test_each_event_arrives_when_it_is_published():
    app = sse_app.create_app()
    broker = app[sse_app.BROKER]
    async with served(app) as url, aiohttp.ClientSession() as session:
        async with session.get(f"{url}/events") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert resp.headers["Cache-Control"] == "no-cache"
            assert resp.headers["Transfer-Encoding"] == "chunked"
            assert "Content-Length" not in resp.headers
            assert await next_block(resp) == b"retry: 3000\n\n"
            broker.publish("你好")
            assert await next_block(resp) == "id: 1\ndata: 你好\n\n".encode()
            broker.publish("一\r\n二\r三\n四")
            expected = "id: 2\ndata: 一\ndata: 二\ndata: 三\ndata: 四\n\n"
            assert await next_block(resp) == expected.encode()


@pytest.mark.claim("没有消息的时候，每隔 `ping_interval` 秒发一行注释 `: ping`")
@pytest.mark.claim("（默认 15 秒）")
async def test_an_idle_stream_gets_a_comment_line():
    default = inspect.signature(sse_app.create_app).parameters["ping_interval"]
    assert default.default == 15
    interval = 0.2
    app = sse_app.create_app(ping_interval=interval)
    loop = asyncio.get_running_loop()
    async with served(app) as url, aiohttp.ClientSession() as session:
        async with session.get(f"{url}/events") as resp:
            assert await next_block(resp) == b"retry: 3000\n\n"
            times = [loop.time()]
            for _ in range(3):
                assert await next_block(resp) == b": ping\n\n"
                times.append(loop.time())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(interval - 0.03 <= gap <= interval + 0.15 for gap in gaps), gaps


@pytest.mark.claim("过了 `stream_seconds` 秒，处理器正常结束响应")
async def test_a_stream_ends_after_stream_seconds():
    app = sse_app.create_app(stream_seconds=0.2)
    async with served(app) as url, aiohttp.ClientSession() as session:
        async with session.get(f"{url}/events") as resp:
            started = time.monotonic()
            body = await resp.read()  # the whole response: it ends
            assert time.monotonic() - started >= 0.15, body
    assert body.startswith(b"retry: 3000\n\n"), body
    assert app[sse_app.BROKER].queues == set()


@pytest.mark.claim("带着 `Last-Event-ID` 来的连接，先补发 id 比它大的历史消息")
@pytest.mark.claim("没有这个请求头（或者它不是数字）的连接只收新消息")
@pytest.mark.parametrize(
    ("last_event_id", "first_ids"),
    [(None, [4]), ("1", [2, 3, 4]), ("3", [4]), ("abc", [4])],
    ids=["new-client", "after-1", "after-3", "not-a-number"],
)
async def test_a_reconnecting_client_gets_what_it_missed(last_event_id, first_ids):
    app = sse_app.create_app()
    broker = app[sse_app.BROKER]
    for text in ["一", "二", "三"]:
        broker.publish(text)
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    async with served(app) as url, aiohttp.ClientSession() as session:
        async with session.get(f"{url}/events", headers=headers) as resp:
            await next_block(resp)  # retry
            await wait_until(lambda: broker.queues, "subscribed")
            broker.publish("四")
            ids = []
            while not ids or ids[-1] != 4:
                block = (await next_block(resp)).decode()
                ids.append(int(block.split("\n")[0].removeprefix("id: ")))
    assert ids == first_ids


@pytest.mark.claim("不是 UTF-8 的请求体得到 400")
async def test_publish_takes_utf8_text(aiohttp_client):
    client = await aiohttp_client(sse_app.create_app())
    resp = await client.post("/publish", data="好".encode("gbk"))
    assert resp.status == 400, await resp.text()
    resp = await client.post("/publish", data="好".encode())
    assert await resp.json() == {"id": 1}


async def test_the_page_lists_the_events_it_receives(aiohttp_client):
    client = await aiohttp_client(sse_app.create_app())
    resp = await client.get("/")
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'new EventSource("/events")' in await resp.text()


@pytest.fixture
def listen_url(monkeypatch):
    """Point listen.py, which talks to the reader's 127.0.0.1:8080, at ``url``."""

    def point(url: str) -> None:
        monkeypatch.setattr(listen, "URL", url)

    return point


@pytest.mark.claim("第一条连接断开之后发布的那一条，也在重连时补发了")
async def test_listen_prints_what_the_page_shows(listen_url, capsys):
    async with served(sse_app.create_app()) as url:
        listen_url(url)
        await listen.main()
    shown = (pages.SNIPPETS / LISTEN_OUTPUT).read_text("utf-8")
    assert capsys.readouterr().out == shown


async def test_listen_reads_comments_and_fields_it_does_not_know():
    """read_events() skips ": ping" lines, keeps event:, joins data: lines."""

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(
            b": ping\n\nretry: 10\n\nevent: done\ndata:a\r\ndata: b\r\n\r\n"
        )
        return resp

    app = web.Application()
    app.router.add_get("/", stream)
    async with served(app) as url, aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            events = [event async for event in listen.read_events(resp)]
    assert events == [{"event": "done", "data": "a\nb"}]


# --- a client going away ----------------------------------------------------------


@pytest.mark.claim("等到下一次 `write()`，才会得到 `ConnectionResetError`")
@pytest.mark.claim("`aiohttp.ClientConnectionResetError`")
@pytest.mark.claim("“Cannot write to closing transport”")
@pytest.mark.claim("`finally` 里退订")
@pytest.mark.claim("一个走掉的客户端的队列要等到下一条消息才会被清掉")
async def test_a_client_going_away_is_noticed_at_the_next_write(sse_log):
    app = sse_app.create_app(ping_interval=30.0)
    broker = app[sse_app.BROKER]
    async with served(app) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/events") as resp:
                await next_block(resp)  # retry
        await asyncio.sleep(0.2)  # gone, and nothing written since
        assert len(broker.queues) == 1
        assert disconnects(sse_log) == []
        broker.publish("没人收")
        await wait_until(lambda: not broker.queues, "unsubscribed")
    assert disconnects(sse_log) == [DISCONNECTED]
    assert errors(sse_log) == []


@pytest.mark.claim("心跳让处理器最迟在 `ping_interval` 秒后发现客户端走了")
async def test_the_ping_finds_a_client_that_went_away(sse_log):
    interval = 0.5
    app = sse_app.create_app(ping_interval=interval)
    broker = app[sse_app.BROKER]
    async with served(app) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/events") as resp:
                await next_block(resp)
        took = await wait_until(lambda: not broker.queues, "unsubscribed")
    assert took <= interval + 0.15, took  # counted from when the client went
    assert disconnects(sse_log) == [DISCONNECTED]
    assert errors(sse_log) == []


@pytest.mark.claim("aiohttp 会以 ERROR 级别记下 “Error handling request from")
async def test_an_uncaught_disconnect_is_logged_as_an_error(caplog):
    """The same stream without the except clause: aiohttp logs it."""
    wrote = asyncio.Event()

    async def careless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: 1\n\n")
        wrote.set()
        while True:
            await asyncio.sleep(0.05)
            await resp.write(b": ping\n\n")

    app = web.Application()
    app.router.add_get("/", careless)
    async with served(app) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as resp:
                await next_block(resp)
        await wait_until(lambda: errors(caplog), "logged")
    record = next(r for r in caplog.records if r.levelno >= logging.ERROR)
    assert record.name == "aiohttp.server"
    assert record.getMessage() == "Error handling request from 127.0.0.1"
    assert isinstance(record.exc_info[1], aiohttp.ClientConnectionResetError)


async def stream_with_pytest_aiohttp(app, aiohttp_server):
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


@pytest.mark.claim("处理器在它正等着的那个 `await` 上收到 `CancelledError`")
@pytest.mark.claim("`aiohttp_server`、`aiohttp_client` 启动的测试服务器总是这样")
@pytest.mark.parametrize("how", ["run_app(handler_cancellation=True)", "TestServer"])
async def test_handler_cancellation_ends_the_handler_at_once(
    how, aiohttp_server, sse_log
):
    app = sse_app.create_app(ping_interval=30.0)
    broker = app[sse_app.BROKER]
    async with contextlib.AsyncExitStack() as stack:
        if how == "TestServer":
            url = await stream_with_pytest_aiohttp(app, aiohttp_server)
        else:
            url = await stack.enter_async_context(
                served(app, handler_cancellation=True)
            )
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/events") as resp:
                await next_block(resp)
        took = await wait_until(lambda: not broker.queues, "unsubscribed")
    assert took < 5  # long before the next ping, 30 s away
    assert disconnects(sse_log) == []  # no ConnectionResetError: a cancellation
    assert errors(sse_log) == []


@pytest.mark.claim(
    "`on_shutdown` 里的 `close_streams()` 让每个连着的处理器马上结束响应"
)
@pytest.mark.claim(
    "推送事件的处理器不读请求体，\n所以要等满大约两倍的 `shutdown_timeout`"
)
@pytest.mark.claim("客户端收到的是一个没有正常结束的响应")
@pytest.mark.parametrize("close_streams", [True, False], ids=["recipe", "without"])
async def test_stopping_the_server_ends_the_streams(close_streams):
    shutdown_timeout = 0.5  # long enough that 3 waits (1.5 s) are told from 2
    app = sse_app.create_app()
    if not close_streams:
        app.on_shutdown.remove(sse_app.close_streams)
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{host}:{port}/events") as resp:
            await next_block(resp)
            started = time.monotonic()
            await runner.cleanup()  # what Ctrl+C runs
            took = time.monotonic() - started
            if close_streams:
                assert await resp.read() == b""  # the stream ended cleanly
            else:
                with pytest.raises(aiohttp.ClientPayloadError):
                    await resp.read()
    if close_streams:
        assert took < shutdown_timeout, took
    else:
        assert 2 * shutdown_timeout - 0.02 <= took < 3 * shutdown_timeout, took


@pytest.mark.claim("打开压缩以后，事件会被压缩器攒着")
async def test_compression_holds_events_back():
    more = asyncio.Event()

    async def compressed(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_compression()
        await resp.prepare(request)
        await resp.write(b"id: 1\ndata: 1\n\n")
        await more.wait()
        await resp.write(b"id: 2\ndata: 2\n\n")
        return resp

    app = web.Application()
    app.router.add_get("/", compressed)
    async with served(app) as url, aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.headers["Content-Encoding"] in {"gzip", "deflate", "br"}
            with pytest.raises(asyncio.TimeoutError):
                async with asyncio.timeout(0.5):
                    await resp.content.readuntil(b"\n\n")
            more.set()
            assert await resp.read() == b"id: 1\ndata: 1\n\nid: 2\ndata: 2\n\n"


# --- the browser ------------------------------------------------------------------


class Page:
    """A Chromium tab, driven over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.numbers = itertools.count(1)

    async def call(self, method: str, until: str | None = None, **params) -> dict:
        """Chromium's answer to ``method``, after the event ``until`` if given."""
        number = next(self.numbers)
        await self.ws.send_json({"id": number, "method": method, "params": params})
        answer = None
        async with asyncio.timeout(TIMEOUT):
            async for message in self.ws:
                reply = json.loads(message.data)
                if reply.get("id") == number:
                    assert "error" not in reply, reply
                    answer = reply["result"]
                elif reply.get("method") == until:
                    until = None
                if answer is not None and until is None:
                    return answer
        raise AssertionError(f"Chromium closed the connection during {method}")

    async def open(self, url: str) -> None:
        """Load ``url`` in the tab and wait for its load event."""
        await self.call("Page.enable")
        await self.call("Page.navigate", until="Page.loadEventFired", url=url)

    async def close(self) -> None:
        """Close the tab, as a reader closes it (Chromium may not answer first)."""
        await self.ws.send_json({"id": next(self.numbers), "method": "Page.close"})

    async def when(self, expression: str):
        """The value of ``expression`` once it is truthy, computed in the page."""
        script = f"""new Promise((resolve, reject) => {{
            const deadline = Date.now() + {TIMEOUT * 1000};
            const check = () => {{
                const value = {expression};
                if (value) resolve(value);
                else if (Date.now() > deadline) reject(new Error("timed out"));
                else setTimeout(check, 10);
            }};
            check();
        }})"""
        result = await self.call(
            "Runtime.evaluate", expression=script, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result
        return result["result"]["value"]


@pytest.fixture
async def chromium_page(tmp_path):
    """A tab of a headless Chromium started for the test, stopped after it."""
    profile = tmp_path / "chromium"
    proc = await asyncio.create_subprocess_exec(
        servers.require_program("chromium"),
        "--headless",
        "--no-sandbox",  # the tests run as root
        "--disable-gpu",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        active = profile / "DevToolsActivePort"  # "<port>\n<path>\n" once it listens
        # A browser starts slowly on a busy machine: waiting is not a claim.
        listening = lambda: len(read_lines(active)) == 2  # noqa: E731
        await wait_until(listening, "listening", timeout=CHROMIUM_START)
        port = int(read_lines(active)[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            tab = next(t for t in targets if t["type"] == "page")
            url = tab["webSocketDebuggerUrl"]
            async with session.ws_connect(url, max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        proc.terminate()
        await proc.wait()


def read_lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


ITEMS = "[...document.querySelectorAll('#events li')].map(li => li.textContent)"


@pytest.mark.claim("浏览器的 `EventSource` 会自动重连")
@pytest.mark.claim("请求头 `Last-Event-ID` 里带着它收到的最后一个 id")
@pytest.mark.claim("等 `retry:` 给的毫秒数之后")
@pytest.mark.claim("浏览器收到的每条消息都显示在页面上")
async def test_chromium_receives_reconnects_and_leaves(chromium_page, sse_log):
    app = sse_app.create_app(ping_interval=0.1, retry_ms=300)
    broker = app[sse_app.BROKER]
    requests: list[tuple[str | None, float]] = []  # (Last-Event-ID, when)
    ended: list[float] = []

    @web.middleware
    async def record(request: web.Request, handler):
        if request.path != "/events":
            return await handler(request)
        requests.append((request.headers.get("Last-Event-ID"), time.monotonic()))
        resp = await handler(request)
        ended.append(time.monotonic())
        return resp

    app.middlewares.append(record)
    async with served(app) as url:
        await chromium_page.open(f"{url}/")
        status = "document.getElementById('status').textContent"
        assert await chromium_page.when(f"{status} === '已连接' && {status}")
        broker.publish("一")
        assert await chromium_page.when(f"{ITEMS}.length === 1 && {ITEMS}") == ["1：一"]
        broker.close_all()  # the stream ends, as when the server stops
        broker.publish("二")  # published while the browser is away
        items = await chromium_page.when(f"{ITEMS}.length === 2 && {ITEMS}")
        assert items == ["1：一", "2：二"]
        assert [last for last, _ in requests] == [None, "1"]
        assert 0.3 <= requests[1][1] - ended[0] < 0.3 + 1  # not a default of seconds
        # the tab is closed: the server notices at its next ping
        await chromium_page.close()
        await wait_until(lambda: not broker.queues, "unsubscribed")
    assert disconnects(sse_log) == [DISCONNECTED]
    assert errors(sse_log) == []


# --- aiohttp-sse ------------------------------------------------------------------


async def progress(url: str, headers: dict[str, str] | None = None):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/progress", headers=headers) as resp:
            return resp.headers, (await resp.read()).decode()


def progress_events(*steps: int) -> str:
    lines = [f"id: {s}\r\ndata: 已完成 {s * 25}%\r\n\r\n" for s in steps]
    return "".join(lines) + "event: done\r\ndata: 全部完成\r\n\r\n"


@pytest.mark.claim("`Cache-Control: no-cache`、`Connection: keep-alive`")
@pytest.mark.claim("`X-Accel-Buffering: no`")
@pytest.mark.claim("用 `\\r\\n` 换行")
async def test_aiohttp_sse_sets_the_headers_and_sends_the_events():
    async with served(app_sse.create_app(step_seconds=0.01)) as url:
        headers, body = await progress(url)
    assert headers["Content-Type"] == "text/event-stream"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Connection"] == "keep-alive"
    assert headers["X-Accel-Buffering"] == "no"
    assert body == progress_events(1, 2, 3, 4)


@pytest.mark.claim("`resp.last_event_id` 是请求头 `Last-Event-ID` 的值")
@pytest.mark.parametrize(
    ("last_event_id", "steps"),
    [("2", (3, 4)), ("4", ()), ("99", ()), ("-1", (1, 2, 3, 4)), ("x", (1, 2, 3, 4))],
)
async def test_aiohttp_sse_resumes_after_the_last_event_id(last_event_id, steps):
    async with served(app_sse.create_app(step_seconds=0.01)) as url:
        _, body = await progress(url, {"Last-Event-ID": last_event_id})
    assert body == progress_events(*steps)


@pytest.mark.claim("没有这个请求头时是 `None`")
@pytest.mark.parametrize("headers", [{}, {"Last-Event-ID": "7"}], ids=["none", "7"])
async def test_last_event_id_is_the_header_or_none(headers):
    seen = []

    async def handler(request: web.Request) -> web.StreamResponse:
        async with sse_response(request) as resp:
            seen.append(resp.last_event_id)
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    async with served(app) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/", headers=headers) as resp:
                await resp.read()
    assert seen == [headers.get("Last-Event-ID")]


@pytest.mark.claim("`send()` 同样在客户端走了之后抛出 `ConnectionResetError`")
async def test_aiohttp_sse_send_raises_when_the_client_is_gone(sse_log):
    async with served(app_sse.create_app(step_seconds=0.05)) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/progress") as resp:
                await next_block(resp, b"\r\n\r\n")  # the first step
        await wait_until(lambda: disconnects(sse_log), "noticed")
    assert disconnects(sse_log) == [DISCONNECTED]
    assert errors(sse_log) == []


@pytest.mark.claim("对它调用 `enable_compression()` 会抛出 `NotImplementedError`")
def test_aiohttp_sse_refuses_compression():
    with pytest.raises(NotImplementedError):
        EventSourceResponse().enable_compression()
