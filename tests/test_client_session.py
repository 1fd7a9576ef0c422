"""client_session: one ClientSession for the server's lifetime, connections reused."""

import asyncio
import contextlib
import dataclasses
import importlib
import importlib.metadata
import json
import re
import shutil
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import attrs
import pytest
from aiohttp import web

import pages
from client_session import reuse
from client_session.app import SESSION, UPSTREAM_TIMEOUT, create_app
from servers import free_port, listeners_opened_while, python_program

FOLDER = pages.SNIPPETS / "client_session"
WAIT = 10  # seconds: an upper bound for any wait in these tests
# Short limits for the tests; the reader's defaults are UPSTREAM_TIMEOUT.
SHORT = aiohttp.ClientTimeout(total=0.6, sock_connect=0.3, sock_read=0.3)
TRICKLE_CHUNKS = 16  # the trickling upstream sends one byte every 0.05 s

COOKIES = web.AppKey("cookies", list)  # the Cookie header of each upstream request


async def upstream_handler(request: web.Request) -> web.Response:
    request.app[reuse.CONNECTIONS].add(request.transport)
    request.app[COOKIES].append(request.headers.get("Cookie"))
    resp = web.Response(text="来自上游")
    resp.set_cookie("sid", "42")
    return resp


@pytest.fixture
async def upstream(aiohttp_server):
    """An upstream server that counts connections and sets a cookie on every answer."""
    app = web.Application()
    app[reuse.CONNECTIONS] = set()
    app[COOKIES] = []
    app.router.add_get("/", upstream_handler)
    return await aiohttp_server(app)


@pytest.fixture
async def client(aiohttp_client, upstream):
    """The recipe's app on 127.0.0.1, calling the test's upstream."""
    return await aiohttp_client(create_app(str(upstream.make_url(""))))


def connections(upstream) -> int:
    return len(upstream.app[reuse.CONNECTIONS])


async def test_handler_answers_with_the_upstream_response(client):
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 200, body
    assert await resp.json() == {"upstream_status": 200, "upstream_text": "来自上游"}


@pytest.mark.claim("下一个请求直接复用")
async def test_requests_reuse_one_upstream_connection(client, upstream):
    for _ in range(10):
        resp = await client.get("/")
        assert resp.status == 200, await resp.text()
    assert connections(upstream) == 1, upstream.app[reuse.CONNECTIONS]


@pytest.mark.claim("许多处理器可以同时使用同一个会话")
async def test_handlers_use_the_session_at_the_same_time(client, upstream):
    responses = await asyncio.gather(*(client.get("/") for _ in range(20)))
    for resp in responses:
        assert resp.status == 200, await resp.text()
    assert len(upstream.app[COOKIES]) == 20


async def test_upstream_cookies_are_not_kept(client, upstream):
    """The page's app (an IP host, which the default jar refuses too)."""
    for _ in range(3):
        resp = await client.get("/")
        assert resp.status == 200, await resp.text()
    assert upstream.app[COOKIES] == [None, None, None]
    jar = client.app[SESSION].cookie_jar
    assert isinstance(jar, aiohttp.DummyCookieJar), jar
    assert len(jar) == 0


@pytest.mark.claim("于服务器停止时运行，会话随之关闭，池里的连接也一起关闭")
async def test_one_session_for_the_server_lifetime(client, upstream):
    session = client.app[SESSION]
    assert not session.closed
    await client.get("/")
    assert client.app[SESSION] is session
    [pooled] = upstream.app[reuse.CONNECTIONS]  # the upstream's end of it
    assert not pooled.is_closing()
    await client.close()  # stops the server: cleanup_ctx closes the session
    assert session.closed
    async with asyncio.timeout(WAIT):
        while not pooled.is_closing():  # the upstream sees the other end close
            await asyncio.sleep(0.01)


@pytest.mark.claim("设置环境变量 `UPSTREAM` 可以换成别的地址")
async def test_app_program_calls_the_upstream_in_its_environment(upstream, tmp_path):
    """app.py run as a reader runs it, as a process, answering through an upstream."""
    program = Path(shutil.copy(FOLDER / "app.py", tmp_path))

    def call() -> tuple[int, str]:
        env = {"UPSTREAM": str(upstream.make_url(""))}
        with python_program(program, env=env) as server:
            with urllib.request.urlopen(f"{server.url}/", timeout=WAIT) as resp:
                return resp.status, resp.read().decode()

    status, body = await asyncio.to_thread(call)
    assert status == 200, body
    assert json.loads(body) == {"upstream_status": 200, "upstream_text": "来自上游"}
    assert len(upstream.app[COOKIES]) == 1


@pytest.mark.claim("aiohttp 抛出 `aiohttp.ClientConnectorError`")
async def test_upstream_down_is_a_502(aiohttp_client):
    """Connection refused: nothing listens on the upstream's port."""
    client = await aiohttp_client(create_app(f"http://127.0.0.1:{free_port()}"))
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 502, body
    assert body == "上游不可用：ClientConnectorError\n", body


@pytest.mark.claim("它是 `aiohttp.ClientError` 的子类")
@pytest.mark.claim("三种超时的异常都是 `asyncio.TimeoutError` 的子类（或它本身）")
@pytest.mark.claim("前两种同时也是 `ClientError` 的子类")
@pytest.mark.claim("必须写在 `except aiohttp.ClientError` **之前**")
def test_exception_classes():
    assert issubclass(aiohttp.ClientConnectorError, aiohttp.ClientError)
    for timeout_error in (aiohttp.ConnectionTimeoutError, aiohttp.SocketTimeoutError):
        assert issubclass(timeout_error, aiohttp.ServerTimeoutError)
        assert issubclass(timeout_error, aiohttp.ClientError)
        assert issubclass(timeout_error, asyncio.TimeoutError)


@dataclasses.dataclass
class Silent:
    """A real upstream on loopback that reads requests and never answers."""

    url: str
    requests: list[bytes]


@pytest.fixture
async def silent_upstream() -> Silent:
    """A server that accepts, reads the whole request head, then stays silent."""
    release = asyncio.Event()
    handlers: set[asyncio.Task] = set()
    requests: list[bytes] = []

    async def handle(reader, writer) -> None:
        handlers.add(asyncio.current_task())
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        await release.wait()  # never set while the test runs
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield Silent(f"http://127.0.0.1:{port}", requests)
    release.set()
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*handlers)
    server.close()
    await server.wait_closed()


@pytest.fixture
async def hanging_up_upstream() -> str:
    """A server that reads the whole request head, then closes the connection."""

    async def handle(reader, writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    await server.wait_closed()


@pytest.fixture
def overloaded_upstream() -> Iterator[str]:
    """A listening socket whose accept queue is full: new connections never complete."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        with contextlib.ExitStack() as stack:
            for _ in range(3):  # fill the queue; later SYNs are dropped
                filler = stack.enter_context(socket.socket())
                filler.setblocking(False)
                filler.connect_ex(address)
            yield f"http://127.0.0.1:{address[1]}"


async def trickle(request: web.Request) -> web.StreamResponse:
    """Answer at once, then send the body one byte every 0.05 s."""
    resp = web.StreamResponse()
    await resp.prepare(request)
    for _ in range(TRICKLE_CHUNKS):
        await asyncio.sleep(0.05)
        if request.transport is None or request.transport.is_closing():
            break  # the client gave up
        await resp.write(b".")
    return resp


@pytest.fixture
async def trickling_upstream(aiohttp_server) -> str:
    """A real upstream that never pauses long, but takes 0.8 s in total."""
    app = web.Application()
    app.router.add_get("/", trickle)
    server = await aiohttp_server(app)
    return str(server.make_url("/"))


async def get_through_app(aiohttp_client, upstream: str) -> tuple[int, str]:
    client = await aiohttp_client(create_app(upstream, timeout=SHORT))
    async with asyncio.timeout(WAIT):
        resp = await client.get("/")
        return resp.status, await resp.text()


@pytest.mark.claim("这个会话发出的每个请求都受它限制")
async def test_silent_upstream_is_a_504(aiohttp_client, silent_upstream):
    """sock_read: the upstream has the request but sends nothing back."""
    status, body = await get_through_app(aiohttp_client, silent_upstream.url)
    assert (status, body) == (504, "上游超时：SocketTimeoutError\n"), body
    assert silent_upstream.requests[0].startswith(b"GET / HTTP/1.1\r\n")


@pytest.mark.claim("上游中途断开等其他网络错误也都是 `ClientError`")
@pytest.mark.claim("上游收下请求后断开连接（502，`ServerDisconnectedError`）")
async def test_upstream_hanging_up_is_a_502(aiohttp_client, hanging_up_upstream):
    status, body = await get_through_app(aiohttp_client, hanging_up_upstream)
    assert (status, body) == (502, "上游不可用：ServerDisconnectedError\n"), body
    assert issubclass(aiohttp.ServerDisconnectedError, aiohttp.ClientError)


@pytest.mark.claim("收到数据就重新计时")
@pytest.mark.claim("整个请求（连接、发送、读完响应）最多多久")
@pytest.mark.claim("`sock_read` 就一直不到期，只有 `total` 能让请求结束")
@pytest.mark.claim("一直一个字节一个字节地慢慢发（504，`TimeoutError`，来自 `total`）")
async def test_trickling_upstream_is_a_504(aiohttp_client, trickling_upstream):
    """total: data keeps coming, so only the limit on the whole request stops it."""
    started = time.monotonic()
    status, body = await get_through_app(aiohttp_client, trickling_upstream)
    assert (status, body) == (504, "上游超时：TimeoutError\n"), body
    assert time.monotonic() - started >= SHORT.total


@pytest.mark.claim("建立 TCP 连接（握手）最多等多久")
@pytest.mark.claim("连接队列已满所以握手完成不了（504，`ConnectionTimeoutError`）")
@pytest.mark.claim("处理器把它们转成 **504 Gateway Timeout**")
async def test_overloaded_upstream_is_a_504(aiohttp_client, overloaded_upstream):
    """sock_connect: the TCP handshake itself never completes."""
    status, body = await get_through_app(aiohttp_client, overloaded_upstream)
    assert (status, body) == (504, "上游超时：ConnectionTimeoutError\n"), body


@pytest.mark.claim("只设 `total` 则要等满整个时限才知道上游根本没有回答")
async def test_with_only_total_a_silent_upstream_takes_all_of_it(silent_upstream):
    only_total = aiohttp.ClientTimeout(total=SHORT.total)
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=only_total) as session:
        with pytest.raises(asyncio.TimeoutError) as raised:
            async with session.get(silent_upstream.url):
                pass
    assert time.monotonic() - started >= SHORT.total
    assert type(raised.value) is asyncio.TimeoutError, raised.value
    assert len(silent_upstream.requests) == 1


@pytest.fixture
def upstreams():
    """upstreams.py imported as a reader runs it: from a folder that holds app.py."""
    with pages.imported(FOLDER, "app", "upstreams") as modules:
        yield modules["upstreams"]


def seconds_and_rest(output: str) -> tuple[list[int], str]:
    """The whole seconds each line reports, and the output without them."""
    seconds = [int(s) for s in re.findall(r"用时 (\d+) 秒", output)]
    return seconds, re.sub(r"用时 \d+ 秒", "用时 N 秒", output)


async def test_upstreams_script_prints_the_page_output(upstreams, capsys):
    """The page block waits the reader's 5 s; here the same run with SHORT."""
    await upstreams.main(SHORT)
    printed, printed_rest = seconds_and_rest(capsys.readouterr().out)
    shown = (FOLDER / "upstreams.txt").read_text("utf-8")
    shown_seconds, shown_rest = seconds_and_rest(shown)
    assert printed_rest == shown_rest, printed_rest
    assert printed == [0, 0, int(SHORT.sock_read)], printed
    assert shown_seconds == [0, 0, int(UPSTREAM_TIMEOUT.sock_read)], shown


@pytest.mark.claim("默认都是 `None`，`None` 表示不做这一项检查")
def test_client_timeout_fields_default_to_none():
    timeout = aiohttp.ClientTimeout()
    for field in ("total", "connect", "sock_connect", "sock_read"):
        assert getattr(timeout, field) is None, (field, timeout)


async def answer_late(request: web.Request) -> web.Response:
    await asyncio.sleep(0.4)
    return web.Response(text="迟到的回答")


@pytest.mark.claim("`None` 表示不做这一项检查")
async def test_none_waits_as_long_as_it_takes(aiohttp_server):
    app = web.Application()
    app.router.add_get("/", answer_late)
    url = str((await aiohttp_server(app)).make_url("/"))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout()) as session:
        async with session.get(url) as resp:  # no check: 0.4 s is fine
            assert await resp.text() == "迟到的回答"
        for field in ("total", "sock_read"):  # a 0.1 s check of the same fails
            with pytest.raises(asyncio.TimeoutError):
                timeout = aiohttp.ClientTimeout(**{field: 0.1})
                await session.get(url, timeout=timeout)


@pytest.mark.claim("是 attrs 类而不是 dataclass")
@pytest.mark.claim("`dataclasses.replace()` 用在它上面会抛出")
def test_client_timeout_is_not_a_dataclass():
    """So dataclasses.replace() cannot copy it with one field changed."""
    assert attrs.has(aiohttp.ClientTimeout)
    assert not dataclasses.is_dataclass(aiohttp.ClientTimeout)
    with pytest.raises(TypeError, match="dataclass instances"):
        dataclasses.replace(SHORT, sock_read=1)


@pytest.mark.claim("`attrs` 是 aiohttp 3.14 的依赖")
def test_attrs_is_a_dependency_of_aiohttp():
    requires = importlib.metadata.requires("aiohttp") or []
    assert any(re.match(r"attrs\b", r) for r in requires), requires


@pytest.mark.claim("默认超时是 `ClientTimeout(total=300, sock_connect=30)`")
async def test_session_default_timeout_is_five_minutes():
    async with aiohttp.ClientSession() as session:
        assert session.timeout == aiohttp.ClientTimeout(total=300, sock_connect=30)


@pytest.mark.claim("会话里有一个连接池（一个 `TCPConnector`）")
@pytest.mark.claim("连接器默认最多同时开 100 个连接（`limit=100`）")
@pytest.mark.claim("对单个主机不另设上限（`limit_per_host=0`）")
async def test_session_pools_connections_in_a_tcp_connector():
    async with aiohttp.ClientSession() as session:
        connector = session.connector
        assert type(connector) is aiohttp.TCPConnector, connector
        assert (connector.limit, connector.limit_per_host) == (100, 0)


@pytest.mark.claim("创建时就抛出 `RuntimeError: no running event loop`")
def test_a_session_needs_a_running_loop():
    """A sync test: no event loop runs, as at a module's top level."""
    with pytest.raises(RuntimeError, match=r"^no running event loop$"):
        aiohttp.ClientSession()


def test_reader_defaults_are_explicit():
    assert UPSTREAM_TIMEOUT == aiohttp.ClientTimeout(
        total=10, sock_connect=3, sock_read=5
    )


@pytest.mark.claim("这个请求就不再有 `total` 的限制了")
@pytest.mark.claim("用 `attrs.evolve(session.timeout, sock_read=30)`")
async def test_timeout_of_a_request_replaces_the_sessions(trickling_upstream):
    """A per-request ClientTimeout drops the session's total; attrs.evolve keeps it."""
    async with aiohttp.ClientSession(timeout=SHORT) as session:
        only_read = aiohttp.ClientTimeout(sock_read=SHORT.sock_read)
        assert only_read.total is None
        async with asyncio.timeout(WAIT):
            async with session.get(trickling_upstream, timeout=only_read) as resp:
                assert await resp.text() == "." * TRICKLE_CHUNKS  # > SHORT.total
            kept = attrs.evolve(session.timeout, sock_read=SHORT.sock_read)
            assert kept.total == SHORT.total
            with pytest.raises(asyncio.TimeoutError) as raised:
                async with session.get(trickling_upstream, timeout=kept) as resp:
                    await resp.text()
    assert type(raised.value) is asyncio.TimeoutError, raised.value


@pytest.mark.parametrize(
    ("way", "expected"),
    [
        (reuse.shared_session, 1),
        (reuse.session_per_request, reuse.N),
        (reuse.shared_connector, 1),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
async def test_connections_per_way(upstream, way, expected):
    await way(str(upstream.make_url("/")))
    assert connections(upstream) == expected, upstream.app[reuse.CONNECTIONS]
    assert len(upstream.app[COOKIES]) == reuse.N


@pytest.mark.claim("同时发出的请求会用上更多连接")
@pytest.mark.claim("但最多到连接器的上限，用完的连接回到池里，之后的请求接着复用")
async def test_requests_at_the_same_time_open_connections_up_to_the_limit(
    aiohttp_server,
):
    limit = 2
    seen: set[asyncio.Transport] = set()
    waiting: list[web.Request] = []
    all_in = asyncio.Event()

    async def held(request: web.Request) -> web.Response:
        """The first ``limit`` requests wait for each other: all in flight at once."""
        seen.add(request.transport)
        waiting.append(request)
        if len(waiting) >= limit:
            all_in.set()
        await all_in.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", held)
    url = str((await aiohttp_server(app)).make_url("/"))

    async def get(session: aiohttp.ClientSession) -> str:
        async with session.get(url) as resp:
            return await resp.text()

    connector = aiohttp.TCPConnector(limit=limit)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with asyncio.timeout(WAIT):
            assert await asyncio.gather(*(get(session) for _ in range(6))) == ["ok"] * 6
            assert len(seen) == limit, seen
            assert await get(session) == "ok"
    assert len(seen) == limit, seen


async def test_reuse_script_prints_the_page_output(capsys):
    await reuse.main()
    out = capsys.readouterr().out
    assert out == (FOLDER / "reuse.txt").read_text("utf-8"), out


async def test_reuse_script_listens_on_a_free_loopback_port(capsys):
    """Two copies at once, each on a free loopback port of its own."""
    seen = await listeners_opened_while(
        asyncio.gather(reuse.main(), reuse.main()), WAIT
    )
    out = capsys.readouterr().out
    shown = (FOLDER / "reuse.txt").read_text("utf-8")
    assert sorted(out.splitlines()) == sorted(shown.splitlines() * 2), out
    assert {host for host, _ in seen} == {"127.0.0.1"}, seen


@pytest.mark.claim("上游响应里的 `Set-Cookie` 会被存下来")
@pytest.mark.claim("不接受来自 **IP 地址** 主机的 cookie")
@pytest.mark.claim("即使不用 `DummyCookieJar`，cookie 也不会被保存")
@pytest.mark.claim("要用 `aiohttp.CookieJar(unsafe=True)`")
@pytest.mark.claim("把 `sid=42` 送回去，`DummyCookieJar` 不会")
@pytest.mark.claim("它什么都不存，也什么都不发")  # localhost: the default jar keeps
@pytest.mark.parametrize(
    ("jar", "host", "sent_back"),
    [
        (aiohttp.DummyCookieJar, "localhost", None),
        (lambda: None, "localhost", "sid=42"),  # None: the session's default jar
        (lambda: None, "127.0.0.1", None),  # the default jar refuses IP hosts
        (lambda: aiohttp.CookieJar(unsafe=True), "127.0.0.1", "sid=42"),
    ],
    ids=["dummy", "default", "default-ip-host", "unsafe-ip-host"],
)
async def test_cookie_jar_decides_what_is_sent_back(upstream, jar, host, sent_back):
    url = f"http://{host}:{upstream.port}/"
    connector = aiohttp.TCPConnector(family=socket.AF_INET)  # localhost is 127.0.0.1
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar()) as session:
        for _ in range(2):
            async with session.get(url) as resp:
                assert resp.cookies["sid"].value == "42", resp.headers
        assert len(session.cookie_jar) == (sent_back is not None)
    assert upstream.app[COOKIES] == [None, sent_back]


@pytest.mark.claim("会话关闭时不碰连接器，连接留在池里给别的会话用")
async def test_session_without_ownership_leaves_the_connector_open(upstream):
    url = str(upstream.make_url("/"))
    connector = aiohttp.TCPConnector()
    for _ in range(2):
        async with aiohttp.ClientSession(
            connector=connector, connector_owner=False
        ) as session:
            async with session.get(url) as resp:
                assert resp.status == 200, await resp.text()
        assert session.closed
        assert not connector.closed
    assert connections(upstream) == 1, upstream.app[reuse.CONNECTIONS]
    await connector.close()  # the code that made the connector closes it
    await assert_unusable(connector, url)


@pytest.mark.claim("会话关闭时 **连带关闭连接器**")
@pytest.mark.claim("其他用它的会话立刻变成 `closed`")
@pytest.mark.claim("再发请求会得到 `RuntimeError: Session is closed`")
async def test_owning_session_closes_the_shared_connector(upstream):
    url = str(upstream.make_url("/"))
    connector = aiohttp.TCPConnector()
    other = aiohttp.ClientSession(connector=connector, connector_owner=False)
    async with aiohttp.ClientSession(connector=connector) as first:
        async with first.get(url) as resp:
            assert resp.status == 200, await resp.text()
        assert not other.closed
    assert connector.closed
    assert other.closed
    with pytest.raises(RuntimeError, match=r"^Session is closed$"):
        await other.get(url)
    await assert_unusable(connector, url)


async def assert_unusable(connector: aiohttp.TCPConnector, url: str) -> None:
    """A session on a closed connector is closed from the start."""
    session = aiohttp.ClientSession(connector=connector, connector_owner=False)
    assert session.closed
    with pytest.raises(RuntimeError, match=r"^Session is closed$"):
        await session.get(url)


@pytest.mark.claim(
    "`TypeError: ClientSession.__init__() got an unexpected keyword argument "
    "'own_connector'`"
)
def test_there_is_no_own_connector_argument():
    message = "ClientSession.__init__() got an unexpected keyword argument"
    with pytest.raises(TypeError, match=re.escape(f"{message} 'own_connector'")):
        aiohttp.ClientSession(own_connector=False)
