"""server_disconnected: a pooled connection the server closed, aiohttp's own retry,
a retry middleware for idempotent methods, and two connector settings.

Every server here is the page's idle_server.py (raw asyncio sockets on 127.0.0.1,
in its own thread) or a real aiohttp server; nothing is mocked.
"""

import logging
import sys
import time
from types import ModuleType

import aiohttp
import pytest
from aiohttp import web

import pages
import servers

FOLDER = pages.SNIPPETS / "server_disconnected"
MODULES = ("idle_server", "reuse", "mitigate", "retry")
# Short times for the tests; the reader's defaults are on the page.
IDLE = 0.1
PAUSE = 0.3


@pytest.fixture
def snippets() -> dict[str, ModuleType]:
    """The page's programs imported as a reader runs them: from their folder."""
    with pages.imported(FOLDER, *MODULES) as modules:
        yield modules


def shown(name: str) -> str:
    return (FOLDER / name).read_text("utf-8")


# --- the server and the pooled connection ---------------------------------------


@pytest.mark.claim("回答之后保持连接")
@pytest.mark.claim("`recv()` 返回空字节串，这是对方关闭了连接")
def test_the_server_closes_an_idle_connection(snippets, capsys):
    snippets["idle_server"].main()
    assert capsys.readouterr().out == shown("idle_server.txt")


@pytest.mark.claim("第二个 POST 立刻复用了连接 1")
@pytest.mark.claim("新建了连接 2，没有出错")
@pytest.mark.claim(
    "下一个 POST 从池里取出连接 2，请求写进去，得到 `ServerDisconnectedError`"
)
@pytest.mark.claim("aiohttp 新建连接 4，把请求又发了一次")
async def test_reuse_prints_what_the_page_shows(snippets, capsys):
    await snippets["reuse"].main(idle_timeout=IDLE, pause=PAUSE)
    printed = capsys.readouterr().out.replace(f"({PAUSE})", "(1.0)")
    assert printed == shown("reuse.txt")


@pytest.mark.claim("`keepalive_timeout` 比服务器的空闲时限短")
@pytest.mark.claim("每个请求都新建连接，连接池里什么也不留")
async def test_mitigate_prints_what_the_page_shows(snippets, capsys):
    await snippets["mitigate"].main(idle_timeout=IDLE, pause=PAUSE)
    printed = capsys.readouterr().out
    printed = printed.replace(f"({PAUSE})", "(1.0)").replace(
        f": {IDLE / 2}}}", ": 0.25}"
    )
    assert printed == shown("mitigate.txt")


@pytest.mark.claim(
    "它是 `aiohttp.ServerConnectionError` 的子类，也是 `aiohttp.ClientError`"
)
@pytest.mark.claim("客户端分不出这两种")
async def test_the_error_does_not_say_whether_the_server_read_the_request(snippets):
    assert issubclass(aiohttp.ServerDisconnectedError, aiohttp.ServerConnectionError)
    assert issubclass(aiohttp.ServerDisconnectedError, aiohttp.ClientError)
    errors = []
    # never read: the server closed the pooled connection before the POST came
    with snippets["idle_server"].IdleServer(IDLE) as unread:
        async with aiohttp.ClientSession(unread.url) as session:
            async with session.post("/", data=b"1") as resp:
                assert resp.status == 200
            snippets["reuse"].hold_the_loop(PAUSE)
            with pytest.raises(aiohttp.ClientError) as raised:
                await session.post("/", data=b"2")
            errors.append(raised.value)
    assert unread.log == ["POST /，1 字节，连接 1"]
    # read in full, then the connection closed without an answer
    with snippets["idle_server"].IdleServer(drop=1) as read:
        async with aiohttp.ClientSession(read.url) as session:
            with pytest.raises(aiohttp.ClientError) as raised:
                await session.post("/", data=b"2")
            errors.append(raised.value)
    assert read.log == ["POST /，1 字节，连接 1"]
    assert [(type(e), e.args) for e in errors] == 2 * [
        (aiohttp.ServerDisconnectedError, ("Server disconnected",))
    ]


# --- aiohttp's own retry ----------------------------------------------------------

IDEMPOTENT = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]


@pytest.mark.claim("即 GET、HEAD、OPTIONS、TRACE、PUT、DELETE")
@pytest.mark.claim("在新建的连接上断开，也一样重发一次")
@pytest.mark.parametrize("method", IDEMPOTENT)
async def test_aiohttp_sends_an_idempotent_request_again_once(snippets, method):
    with snippets["idle_server"].IdleServer(drop=1) as server:
        async with aiohttp.ClientSession(server.url) as session:
            async with session.request(method, "/") as resp:
                assert resp.status == 200
    assert server.log == [f"{method} /，0 字节，连接 {n}" for n in (1, 2)]


@pytest.mark.claim("重发的一次也失败，异常才交给调用者")
async def test_the_second_failure_reaches_the_caller(snippets):
    with snippets["idle_server"].IdleServer(drop=2) as server:
        async with aiohttp.ClientSession(server.url) as session:
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await session.get("/")
    assert len(server.log) == 2


@pytest.mark.claim("POST、PATCH 从不自动重发")
@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_aiohttp_never_sends_post_or_patch_again(snippets, method):
    with snippets["idle_server"].IdleServer(drop=1) as server:
        async with aiohttp.ClientSession(server.url) as session:
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await session.request(method, "/", data=b"x")
    assert server.log == [f"{method} /，1 字节，连接 1"]


# --- the retry middleware -----------------------------------------------------------


class Stdout:
    """Writes to whatever sys.stdout is when a record is logged (capsys's)."""

    def write(self, text: str) -> None:
        sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def logged_to_stdout():
    """retry.py's warnings on stdout, as its ``logging.basicConfig`` shows them."""
    handler = logging.StreamHandler(Stdout())
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logger = logging.getLogger("retry")
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)


@pytest.mark.claim("GET 第三次成功，服务器一共收到 3 个请求")
@pytest.mark.claim("服务器三次都收到 1000 字节")
@pytest.mark.claim("服务器只收到 1 个请求")
@pytest.mark.claim("GET 一共发了 6 次，不是 3 次")
async def test_retry_prints_what_the_page_shows(snippets, capsys, logged_to_stdout):
    await snippets["retry"].main(backoff=0.01)
    printed = capsys.readouterr().out
    printed = printed.replace("0.01 秒后", "0.2 秒后").replace("0.02 秒后", "0.4 秒后")
    assert printed == shown("retry.txt")


@pytest.mark.claim("两次重试之间分别等了 0.2 秒和 0.4 秒")
async def test_the_waits_double(snippets, caplog):
    caplog.set_level(logging.WARNING, logger="retry")
    middleware = snippets["retry"].retry_idempotent(attempts=4, backoff=0.05)
    with snippets["idle_server"].IdleServer(drop=3) as server:
        async with aiohttp.ClientSession(server.url, middlewares=[middleware]) as s:
            started = time.monotonic()
            async with s.get("/") as resp:
                assert resp.status == 200
            waited = time.monotonic() - started
    said = [r.getMessage().split("，")[1] for r in caplog.records]
    assert said == ["0.05 秒后重试", "0.1 秒后重试", "0.2 秒后重试"]
    assert waited >= 0.35
    assert len(server.log) == 4


@pytest.mark.claim("`attempts=3` 时，一个幂等请求最多发 6 次")
@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_the_session_runs_the_middleware_again(snippets, attempts):
    middleware = snippets["retry"].retry_idempotent(attempts=attempts, backoff=0)
    with snippets["idle_server"].IdleServer(drop=99) as server:
        async with aiohttp.ClientSession(server.url, middlewares=[middleware]) as s:
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await s.delete("/")
    assert len(server.log) == 2 * attempts


@pytest.mark.claim("`ClientOSError` 的子类，所以服务器还没起来时")
async def test_a_refused_connection_is_retried_too(snippets, caplog):
    assert issubclass(aiohttp.ClientConnectorError, aiohttp.ClientOSError)
    caplog.set_level(logging.WARNING, logger="retry")
    middleware = snippets["retry"].retry_idempotent(attempts=3, backoff=0)
    url = f"http://127.0.0.1:{servers.free_port()}"
    async with aiohttp.ClientSession(url, middlewares=[middleware]) as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get("/")
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.post("/")
    # GET: two failures logged, the third raised; POST: not retried
    failures = [r.getMessage() for r in caplog.records]
    assert [m.split("（")[1].split("）")[0] for m in failures] == 2 * [
        "ClientConnectorError"
    ]
    assert all(m.startswith("GET / ") for m in failures)


# --- force_close ---------------------------------------------------------------


async def connection_header(request: web.Request) -> web.Response:
    return web.Response(text=request.headers.get("Connection", "（没有）"))


@pytest.mark.claim("请求头里带上 `Connection: close`")
async def test_force_close_sends_connection_close(aiohttp_server):
    app = web.Application()
    app.router.add_get("/", connection_header)
    server = await aiohttp_server(app)
    url = str(server.make_url("/"))
    for force_close, header in [(True, "close"), (False, "（没有）")]:
        connector = aiohttp.TCPConnector(force_close=force_close)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(url) as resp:
                assert await resp.text() == header
