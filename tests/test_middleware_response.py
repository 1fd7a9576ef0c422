"""middleware_response: one request, one response object; a cache that is safe."""

import asyncio
import inspect
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from packaging.version import Version

from middleware_response import cached_response
from middleware_response.app import BUILDS, CACHE, cache_middleware, create_app
from servers import listeners_opened_while

TIMEOUT = 5
SHORT = 0.3  # the client's timeout in the tests; the page's program waits 1 s
SNIPPETS = Path(__file__).resolve().parent.parent / "snippets"
EXPECTED = (SNIPPETS / "middleware_response/cached_response.txt").read_text("utf-8")


def access_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]


@pytest.mark.claim("服务器不抛异常，也不记任何错误")
@pytest.mark.claim("访问日志里这个请求记成了一次正常的 `200`")
async def test_the_script_prints_what_the_page_shows(capsys, caplog):
    """Two copies at once, each on a free loopback port of its own."""
    caplog.set_level(logging.INFO, logger="aiohttp")
    seen = await listeners_opened_while(
        asyncio.gather(*(cached_response.main(timeout=SHORT) for _ in range(2))),
        TIMEOUT,
    )
    out = capsys.readouterr().out
    assert sorted(out.splitlines()) == sorted(EXPECTED.splitlines() * 2), out
    assert {host for host, _ in seen} == {"127.0.0.1"}, seen
    server_errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert server_errors == [], server_errors
    access = access_lines(caplog)
    assert len(access) == 4, access
    assert all('"GET / HTTP/1.1" 200 ' in line for line in access), access


@pytest.fixture
async def misbehaved(aiohttp_client):
    """The page's misbehaving middleware in front of its handler, on 127.0.0.1."""
    app = web.Application(middlewares=[cached_response.misbehaved_middleware()])
    app.router.add_get("/", cached_response.hello)
    return await aiohttp_client(app)


@pytest.mark.claim("**第二个请求的响应一个字节也没有写出**")
async def test_the_second_client_receives_not_a_single_byte(misbehaved, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    resp = await misbehaved.get("/")
    assert await resp.text() == "Hi, I am cached!"
    reader, writer = await asyncio.open_connection("127.0.0.1", misbehaved.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    async with asyncio.timeout(TIMEOUT):  # the server has finished the request
        while len(access_lines(caplog)) < 2:
            await asyncio.sleep(0.005)
    # Whatever it had written is on the loopback already: wait briefly for it.
    with pytest.raises(asyncio.TimeoutError):  # TimeoutError's alias from 3.11 on
        async with asyncio.timeout(0.05):
            data = await reader.read(1)
            pytest.fail(f"got {data!r}")
    writer.close()
    await writer.wait_closed()


@pytest.mark.claim("这时得到 `ServerDisconnectedError`")
@pytest.mark.claim("客户端会在新连接上重发一次（CHANGES #7297）")
@pytest.mark.claim("所以一共要等两个 `keepalive_timeout`")
async def test_a_client_without_timeout_waits_for_the_idle_connection_to_close():
    keepalive = 0.2
    ports: list[int] = []  # the client's port of each request the server read

    @web.middleware
    async def count(request: web.Request, handler):
        ports.append(request.transport.get_extra_info("peername")[1])
        return await handler(request)

    middlewares = [count, cached_response.misbehaved_middleware()]
    app = web.Application(middlewares=middlewares)
    app.router.add_get("/", cached_response.hello)
    runner = web.AppRunner(app, keepalive_timeout=keepalive)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    no_timeout = aiohttp.ClientTimeout(total=None)
    try:
        async with aiohttp.ClientSession(timeout=no_timeout) as session:
            async with session.get(url) as resp:
                assert await resp.text() == "Hi, I am cached!"
            started = time.monotonic()
            with pytest.raises(aiohttp.ServerDisconnectedError):
                async with asyncio.timeout(TIMEOUT), session.get(url):
                    pytest.fail("the second request got a response")
            waited = time.monotonic() - started
    finally:
        await runner.cleanup()
    if Version(aiohttp.__version__) < Version("3.10"):  # no retry before #7297
        assert len(ports) == 2 and ports[0] == ports[1], ports
        assert waited >= keepalive - 0.05, waited
        return
    first, second, again = ports
    assert second == first and again != second, ports  # pooled, then a new one
    assert waited >= 2 * keepalive - 0.05, waited


@pytest.mark.claim("`run_app()` 默认是 75 秒")
@pytest.mark.claim("直接用 `AppRunner` 时默认是 3630 秒")
@pytest.mark.claim("aiohttp 3.11 把后者从 75 秒改成了大约一小时")
async def test_how_long_an_idle_connection_stays_open_by_default():
    assert inspect.signature(web.run_app).parameters["keepalive_timeout"].default == 75
    runner = web.AppRunner(web.Application())
    await runner.setup()
    try:
        expected = 3630 if Version(aiohttp.__version__) >= Version("3.11") else 75
        assert runner.server().keepalive_timeout == expected
    finally:
        await runner.cleanup()


@pytest.mark.claim("`aiohttp.ClientSession` 默认的总超时是 5 分钟")
async def test_client_session_waits_five_minutes_by_default():
    async with aiohttp.ClientSession() as session:
        assert session.timeout.total == 5 * 60


# --- the cache recipe -----------------------------------------------------------


@pytest.fixture
async def client(aiohttp_client):
    """The cache recipe's app on 127.0.0.1."""
    return await aiohttp_client(create_app())


async def fetch(client, path: str, method: str = "GET", **kwargs) -> tuple:
    resp = await client.request(method, path, **kwargs)
    body = await resp.text()
    return resp.status, resp.headers.get("X-Cache"), body


async def test_cache_builds_once_and_answers_every_request(client):
    seen = []
    for _ in range(3):
        resp = await client.get("/report?month=2026-11")
        body = await resp.text()
        assert resp.status == 200, body
        seen.append((resp.headers["X-Cache"], resp.content_type, body))
    assert seen == [
        ("MISS", "text/plain", "报表：2026-11（第 1 次生成）\n"),
        ("HIT", "text/plain", "报表：2026-11（第 1 次生成）\n"),
        ("HIT", "text/plain", "报表：2026-11（第 1 次生成）\n"),
    ], seen
    assert client.app[BUILDS] == {"2026-11": 1}


async def test_an_emptied_cache_builds_the_page_again(client):
    for count in (1, 2):
        client.app[CACHE].clear()
        expected = (200, "MISS", f"报表：本月（第 {count} 次生成）\n")
        assert await fetch(client, "/report") == expected


async def test_concurrent_clients_all_get_a_response(client):
    await client.get("/report")

    async def get() -> str:
        resp = await client.get("/report")
        return await resp.text()

    async with asyncio.timeout(TIMEOUT):
        bodies = await asyncio.gather(*(get() for _ in range(20)))
    assert set(bodies) == {"报表：本月（第 1 次生成）\n"}, bodies


async def show_path(request: web.Request) -> web.Response:
    return web.Response(text=request.path)


@pytest.mark.claim("缓存的键是方法加上完整的路径和查询字符串（`request.rel_url`）")
@pytest.mark.claim("会共用一份缓存")
@pytest.mark.claim("客户端换一个参数，缓存就多存一份")
async def test_each_query_string_has_its_own_entry(client, aiohttp_client):
    for month in ("2026-11", "2026-12", "2026-11"):
        _, _, body = await fetch(client, f"/report?month={month}")
        assert body == f"报表：{month}（第 1 次生成）\n", body
    assert client.app[BUILDS] == {"2026-11": 1, "2026-12": 1}
    assert len(client.app[CACHE]) == 2, client.app[CACHE].keys()
    # request.path leaves the query string out: a key made of it would be shared.
    app = web.Application()
    app.router.add_get("/report", show_path)
    plain = await aiohttp_client(app)
    for month in ("2026-11", "2026-12"):
        resp = await plain.get(f"/report?month={month}")
        assert await resp.text() == "/report"


CALLS = web.AppKey("calls", list[str])


def counting_app(handler) -> web.Application:
    """The cache middleware in front of ``handler`` on /, counting its calls."""
    calls = []

    async def counted(request: web.Request) -> web.StreamResponse:
        calls.append(request.method)
        return await handler(request)

    app = web.Application(middlewares=[cache_middleware])
    app[CACHE] = {}
    app[CALLS] = calls
    app.router.add_route("*", "/", counted)
    return app


async def numbered(request: web.Request) -> web.Response:
    calls = request.app[CALLS]
    return web.Response(text=f"{request.method} {len(calls)}")


@pytest.mark.claim("`POST` 这类请求每次都交给处理器，它们的响应也不存")
async def test_post_always_reaches_the_handler(aiohttp_client):
    client = await aiohttp_client(counting_app(numbered))
    assert await fetch(client, "/", "POST") == (200, None, "POST 1")
    assert await fetch(client, "/", "POST") == (200, None, "POST 2")
    assert await fetch(client, "/", "GET") == (200, "MISS", "GET 3")
    assert await fetch(client, "/", "POST") == (200, None, "POST 4")
    assert await fetch(client, "/", "GET") == (200, "HIT", "GET 3")


@pytest.mark.claim("只有 `GET` 和 `HEAD` 查缓存")
async def test_head_has_an_entry_of_its_own(aiohttp_client):
    client = await aiohttp_client(counting_app(numbered))
    assert await fetch(client, "/", "HEAD") == (200, "MISS", "")
    assert await fetch(client, "/", "HEAD") == (200, "HIT", "")
    assert await fetch(client, "/", "GET") == (200, "MISS", "GET 2")
    assert client.app[CALLS] == ["HEAD", "GET"]


@pytest.mark.claim("带 `Authorization` 或 `Cookie` 的请求可能得到只属于这个人的页面")
@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer alice"}, {"Cookie": "session=alice"}]
)
async def test_a_request_with_credentials_bypasses_the_cache(aiohttp_client, headers):
    client = await aiohttp_client(counting_app(numbered))
    assert await fetch(client, "/") == (200, "MISS", "GET 1")
    for count in (2, 3):  # neither served from the cache nor stored
        assert await fetch(client, "/", headers=headers) == (200, None, f"GET {count}")
    assert await fetch(client, "/") == (200, "HIT", "GET 1")


async def sets_a_cookie(request: web.Request) -> web.Response:
    resp = web.Response(text="yours")
    resp.set_cookie("session", "alice")
    return resp


def answer(status: int = 200, **headers: str):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, text="yours", headers=headers)

    return handler


async def streamed(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    await resp.write(b"yours")
    return resp


@pytest.mark.claim("只存状态码 200、响应体已经在内存里的 `web.Response`")
@pytest.mark.claim("而且响应不能设置 cookie")
@pytest.mark.claim("不能带 `Vary`（内容随请求头变化，而键里没有这些请求头）")
@pytest.mark.claim("`Cache-Control` 里不能有")
@pytest.mark.claim("原样交回去")
@pytest.mark.parametrize(
    ("handler", "status"),
    [
        (answer(201), 201),
        (streamed, 200),
        (sets_a_cookie, 200),
        (answer(**{"Set-Cookie": "session=alice"}), 200),
        (answer(Vary="Accept-Language"), 200),
        (answer(**{"Cache-Control": "private, max-age=60"}), 200),
        (answer(**{"Cache-Control": "No-Store"}), 200),
    ],
    ids=["201", "stream", "set_cookie", "Set-Cookie", "Vary", "private", "no-store"],
)
async def test_responses_it_must_not_store_pass_through(
    aiohttp_client, handler, status
):
    client = await aiohttp_client(counting_app(handler))
    for _ in range(2):
        assert await fetch(client, "/") == (status, None, "yours")
    assert client.app[CALLS] == ["GET", "GET"]
    assert client.app[CACHE] == {}


async def binary(request: web.Request) -> web.Response:
    return web.Response(body=b"\x00\x01 report")


@pytest.mark.claim("没有 `Content-Type` 的响应（`web.Response(body=...)`）也能缓存")
async def test_a_body_without_content_type_is_cached(aiohttp_client):
    client = await aiohttp_client(counting_app(binary))
    for state in ("MISS", "HIT"):
        resp = await client.get("/")
        assert (resp.status, resp.headers["X-Cache"]) == (200, state)
        assert resp.content_type == "application/octet-stream", resp.headers
        assert await resp.read() == b"\x00\x01 report"
    assert client.app[CALLS] == ["GET"]


async def decorated(request: web.Request) -> web.Response:
    resp = web.json_response({"report": 1})
    resp.headers["ETag"] = '"v1"'
    resp.headers["Content-Language"] = "zh-CN"
    resp.headers.add("Link", "</a.css>; rel=preload")
    resp.headers.add("Link", "</b.js>; rel=preload")
    return resp


@pytest.mark.claim("存下的是处理器设置的全部响应头")
async def test_every_header_the_handler_set_is_kept(aiohttp_client):
    client = await aiohttp_client(counting_app(decorated))
    for state in ("MISS", "HIT"):
        resp = await client.get("/")
        assert resp.headers["X-Cache"] == state
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        assert resp.headers["ETag"] == '"v1"'
        assert resp.headers["Content-Language"] == "zh-CN"
        assert resp.headers.getall("Link") == [
            "</a.css>; rel=preload",
            "</b.js>; rel=preload",
        ]
        assert await resp.json() == {"report": 1}
    assert client.app[CALLS] == ["GET"]


# --- @web.middleware and await --------------------------------------------------


CALLED_WITH: list[tuple[type, type]] = []


async def undecorated(request: web.Request, handler):
    CALLED_WITH.append((type(request), type(handler)))
    return await handler(request)


@pytest.mark.claim("应用启动时产生一条")
@pytest.mark.claim("再把返回值当作处理器去调用")
@pytest.mark.claim("请求以 500 告终，服务器日志里是一段")
async def test_without_the_decorator_it_is_an_old_style_factory(aiohttp_client, caplog):
    """aiohttp 3.x calls it as factory(app, handler): the request gets a 500."""
    app = web.Application(middlewares=[undecorated])
    app.router.add_get("/", cached_response.hello)
    with pytest.warns(DeprecationWarning, match="old-style middleware .* deprecated"):
        client = await aiohttp_client(app)
    resp = await client.get("/")
    assert resp.status == 500, await resp.text()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert errors[0].getMessage().startswith("Error handling request"), errors
    assert isinstance(errors[0].exc_info[1], TypeError), errors
    # middleware(app, handler): the handler answers the app; that answer is called
    assert CALLED_WITH[-1][0] is web.Application, CALLED_WITH
    assert str(errors[0].exc_info[1]) == "'Response' object is not callable"


OLD_STYLE = """
    import asyncio
    import sys

    from aiohttp import web


    async def undecorated(request, handler):
        return await handler(request)


    async def main():
        runner = web.AppRunner(web.Application(middlewares=[undecorated]))
        await runner.setup()
        await runner.cleanup()


    asyncio.run(main())
    print("-- now with -W default --", file=sys.stderr, flush=True)
    import warnings

    warnings.simplefilter("default")
    asyncio.run(main())
"""


@pytest.mark.claim("（普通的 `python` 默认不显示它）")
def test_python_hides_the_deprecation_warning_by_default(tmp_path):
    program = tmp_path / "old_style.py"
    program.write_text(textwrap.dedent(OLD_STYLE), "utf-8")
    env = {"PATH": "/usr/bin:/bin"}  # no PYTHONWARNINGS, no PYTHONDEVMODE
    result = subprocess.run(
        [sys.executable, program.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    hidden, _, shown = result.stderr.partition("-- now with -W default --")
    assert hidden == "", result.stderr
    assert "DeprecationWarning: old-style middleware" in shown, result.stderr


@web.middleware
async def not_awaiting(request: web.Request, handler):
    handler(request)  # the upstream FAQ's slip: the handler never runs
    return web.Response(text="not awaited")


@pytest.mark.claim("得到的是一个从未执行的协程：处理器根本没有运行")
async def test_calling_the_handler_without_await_never_runs_it(aiohttp_client):
    app = web.Application(middlewares=[not_awaiting])
    app.router.add_get("/", cached_response.hello)
    client = await aiohttp_client(app)
    with pytest.warns(RuntimeWarning, match="coroutine 'hello' was never awaited"):
        resp = await client.get("/")
        assert await resp.text() == "not awaited"
