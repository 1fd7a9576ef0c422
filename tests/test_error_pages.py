"""error_pages: a middleware for HTML and JSON error pages, real sockets."""

import asyncio
import contextlib
import json
import logging
import re
import sys
from http import HTTPStatus

import aiohttp
import pytest
from aiohttp import web
from packaging.version import Version

import pages
import servers
from error_pages.app import MESSAGES, create_app, error_pages

TIMEOUT = 10
FOLDER = pages.SNIPPETS / "error_pages"
AIOHTTP_VERSION = Version(aiohttp.__version__)
SECRET = "secret-token-8c1f"  # an exception message that must never reach a client
# aiohttp's own ERROR line for a failed handler; the client's address since 3.11.12
DEFAULT_LOG_MESSAGE = "Error handling request" + (
    " from 127.0.0.1" if AIOHTTP_VERSION >= Version("3.11.12") else ""
)


def api_error(status: int, error: str, message: str) -> dict:
    return {"status": status, "error": error, "message": message}


@pytest.fixture
async def client(aiohttp_client):
    """The page's app, served on 127.0.0.1."""
    return await aiohttp_client(create_app())


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError(SECRET)


def app_with(*routes, middlewares=(error_pages,)) -> web.Application:
    app = web.Application(middlewares=list(middlewares))
    for path, handler in routes:
        app.router.add_route("*", path, handler)
    return app


# --- what aiohttp does without the middleware ----------------------------------------


@pytest.mark.claim(
    "事件循环处于调试模式时（`python -X dev`、`PYTHONASYNCIODEBUG=1`）例外"
)
@pytest.mark.claim("把完整的回溯放进响应体，异常的类型和消息都在里面")
@pytest.mark.claim("调试模式下也只有通用的说明")
@pytest.mark.parametrize("accept", ["text/plain", "text/html"])
@pytest.mark.parametrize("middlewares", [(), (error_pages,)], ids=["aiohttp", "page"])
async def test_debug_mode_and_the_500_body(aiohttp_client, middlewares, accept):
    loop = asyncio.get_running_loop()
    loop.set_debug(True)  # what -X dev and PYTHONASYNCIODEBUG=1 turn on
    try:
        client = await aiohttp_client(
            app_with(("/boom", boom), middlewares=middlewares)
        )
        async with client.get("/boom", headers={"Accept": accept}) as resp:
            assert resp.status == 500
            text = await resp.text()
    finally:
        loop.set_debug(False)
    if middlewares:
        assert SECRET not in text and "RuntimeError" not in text, text
        assert MESSAGES[500] in text, text
    else:
        assert "Traceback" in text and f"RuntimeError: {SECRET}" in text, text


@pytest.mark.claim("`404: Not Found`、`405: Method Not Allowed`")
@pytest.mark.claim("405 带响应头 `Allow`，列出这个地址接受的方法")
async def test_aiohttp_default_404_and_405(aiohttp_client):
    app = web.Application()
    app.router.add_get("/items", boom)
    client = await aiohttp_client(app)
    async with client.get("/nothing") as resp:
        assert resp.status == 404
        assert resp.content_type == "text/plain"
        assert await resp.text() == "404: Not Found"
    async with client.post("/items") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET,HEAD"
        assert await resp.text() == "405: Method Not Allowed"


@pytest.mark.claim("以 ERROR 级别在日志器 `aiohttp.server` 上记下")
@pytest.mark.claim("`Error handling request` 和完整的回溯")
@pytest.mark.claim("aiohttp 3.11.12 起这行消息")
@pytest.mark.claim("后面还有 `from 客户端地址`（CHANGES #10332）")
@pytest.mark.claim("回 500，并关闭这条连接")
@pytest.mark.claim("`500 Internal Server Error` 和 `Server got itself in trouble`")
@pytest.mark.claim("换成一个同样内容的 HTML 页面")
@pytest.mark.claim("异常的类型和消息不会发给客户端")
async def test_aiohttp_default_500(aiohttp_client, caplog):
    client = await aiohttp_client(app_with(("/boom", boom), middlewares=()))
    async with client.get("/boom") as resp:
        assert resp.status == 500
        assert resp.headers["Connection"] == "close"
        assert resp.content_type == "text/plain"
        text = await resp.text()
        assert text == "500 Internal Server Error\n\nServer got itself in trouble"
    async with client.get("/boom", headers={"Accept": "text/html"}) as resp:
        assert resp.status == 500
        assert resp.headers["Connection"] == "close"
        assert resp.content_type == "text/html"
        page = await resp.text()
    assert "<title>500 Internal Server Error</title>" in page
    assert "Server got itself in trouble" in page
    for body in (text, page):
        assert SECRET not in body and "RuntimeError" not in body
    # ... and the connection really ends: a kept-alive one is closed after it
    received, closed = await raw_get(client.port, "/boom")
    assert received.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), received
    assert closed, received
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(records) == 3  # one per request
    for record in records:
        assert record.name == "aiohttp.server"
        assert record.levelno == logging.ERROR
        assert record.getMessage() == DEFAULT_LOG_MESSAGE
        assert isinstance(record.exc_info[1], RuntimeError)
        assert record.exc_text.startswith("Traceback (most recent call last):")


async def returns_exception(request: web.Request) -> web.StreamResponse:
    return web.HTTPNotFound()


@pytest.mark.claim("既是异常，又是 `web.Response`")
@pytest.mark.claim("也能 `return` 它")
async def test_http_exception_is_a_response_and_returning_it_warns(aiohttp_client):
    assert issubclass(web.HTTPException, web.Response)
    assert issubclass(web.HTTPException, Exception)
    client = await aiohttp_client(app_with(("/", returns_exception), middlewares=()))
    with pytest.warns(DeprecationWarning, match="returning HTTPException object"):
        async with client.get("/") as resp:
            assert resp.status == 404
            assert await resp.text() == "404: Not Found"


# --- the middleware: 404, 405, other HTTPExceptions ---------------------------------


@pytest.mark.claim("中间件能接住 404 和 405")
@pytest.mark.claim("`/api/` 下的地址回 JSON，其他地址回 HTML")
@pytest.mark.claim("换成 `MESSAGES` 里的中文说明")
async def test_not_found_is_html_or_json_by_path(client):
    async with client.get("/") as resp:
        assert resp.status == 200
        assert await resp.text() == "<h1>首页</h1>\n"
    async with client.get("/nothing") as resp:
        assert resp.status == 404
        assert resp.content_type == "text/html"
        page = await resp.text()
    assert "<title>404 Not Found</title>" in page
    assert f"<p>{MESSAGES[404]}</p>" in page
    for path in ("/api/nothing", "/api/items/1/more", "/api/"):
        async with client.get(path) as resp:
            assert resp.status == 404
            assert resp.content_type == "application/json"
            assert await resp.json() == api_error(404, "Not Found", MESSAGES[404])
    async with client.get("/apis") as resp:  # only /api/ itself is the API
        assert resp.content_type == "text/html"


async def says(request: web.Request) -> web.Response:
    raise web.HTTPBadRequest(text=request.query["text"])


@pytest.mark.claim("这段文字原样放进错误页")
async def test_the_handlers_own_text(client, aiohttp_client):
    async with client.get("/api/items/1") as resp:
        assert resp.status == 200
        assert await resp.json() == {"id": 1, "name": "苹果"}
    async with client.get("/api/items/7") as resp:
        assert resp.status == 404
        assert await resp.json() == api_error(404, "Not Found", "没有编号为 7 的商品")
    # on an HTML page the text is escaped, whatever the client put into it
    other = await aiohttp_client(app_with(("/says", says), ("/api/says", says)))
    text = "<script>alert(1)</script>"
    async with other.get("/says", params={"text": text}) as resp:
        page = await resp.text()
    assert resp.status == 400
    assert text not in page
    assert "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>" in page
    async with other.get("/api/says", params={"text": text}) as resp:
        assert await resp.json() == api_error(400, "Bad Request", text)


@pytest.mark.claim("405 的 `Allow`")
@pytest.mark.claim("中间件能接住 404 和 405")
async def test_405_keeps_allow(client):
    async with client.post("/api/items/1") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET,HEAD"
        assert resp.content_type == "application/json"
        message = "这个地址不接受 POST 请求"
        assert await resp.json() == api_error(405, "Method Not Allowed", message)
    async with client.delete("/") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET,HEAD"
        assert resp.content_type == "text/html"
        assert "<p>这个地址不接受 DELETE 请求</p>" in await resp.text()


async def forbidden(request: web.Request) -> web.Response:
    exc = web.HTTPForbidden(headers={"X-Reason": "quota", "Cache-Control": "no-store"})
    exc.set_cookie("notice", "quota")
    exc.del_cookie("session")
    raise exc


@pytest.mark.claim("401 的 `WWW-Authenticate`")
@pytest.mark.claim("`set_cookie()`、`del_cookie()` 设的 cookie")
@pytest.mark.claim("`Content-Type` 这类描述响应体的响应头不照搬")
async def test_other_headers_and_cookies_are_kept(client, aiohttp_client):
    async with client.get("/api/me") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert await resp.json() == api_error(401, "Unauthorized", MESSAGES[401])
    other = await aiohttp_client(app_with(("/api/quota", forbidden)))
    async with other.get("/api/quota") as resp:
        assert resp.status == 403
        assert resp.headers["X-Reason"] == "quota"
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers.getall("Content-Type") == [
            "application/json; charset=utf-8"
        ]
        cookies = sorted(resp.headers.getall("Set-Cookie"))
        assert await resp.json() == api_error(403, "Forbidden", MESSAGES[403])
    assert cookies[0].startswith("notice=quota; ")
    assert cookies[1].startswith('session=""; ')
    assert "Max-Age=0" in cookies[1]


async def returns_404(request: web.Request) -> web.Response:
    return web.Response(status=404, text="自己的 404")


@pytest.mark.claim("处理器用 `return` 返回的响应（哪怕状态码是 404）不经过改写")
async def test_returned_responses_are_not_rewritten(aiohttp_client):
    client = await aiohttp_client(app_with(("/api/own", returns_404)))
    async with client.get("/api/own") as resp:
        assert resp.status == 404
        assert resp.content_type == "text/plain"
        assert await resp.text() == "自己的 404"


RAISED = [
    web.HTTPMovedPermanently,
    web.HTTPFound,
    web.HTTPSeeOther,
    web.HTTPTemporaryRedirect,
    web.HTTPPermanentRedirect,
]


async def raise_it(request: web.Request) -> web.Response:
    name = request.query["name"]
    kind = getattr(web, name)
    if issubclass(kind, web.HTTPMove):
        raise kind("/elsewhere", headers={"X-From": "handler"})
    raise kind(headers={"X-From": "handler"})


async def answer(client, name: str) -> tuple[int, dict, bytes]:
    async with client.get(
        "/api/raise", params={"name": name}, allow_redirects=False
    ) as resp:
        headers = {k: v for k, v in resp.headers.items() if k != "Date"}
        return resp.status, headers, await resp.read()


@pytest.mark.claim("处理器抛出的重定向（3xx）和 2xx 原样再抛出去")
@pytest.mark.claim("`Location` 和响应体都不变")
async def test_redirects_and_2xx_pass_through_unchanged(aiohttp_client, client):
    with_pages = await aiohttp_client(app_with(("/api/raise", raise_it)))
    without = await aiohttp_client(app_with(("/api/raise", raise_it), middlewares=()))
    names = [kind.__name__ for kind in RAISED] + ["HTTPNoContent", "HTTPAccepted"]
    for name in names:
        status, headers, body = await answer(with_pages, name)
        assert (status, headers, body) == await answer(without, name)
        assert status < 400 and headers["X-From"] == "handler"
        if status >= 300:
            assert headers["Location"] == "/elsewhere"
            assert body == f"{status}: {HTTPStatus(status).phrase}".encode()
    async with client.get("/old-home", allow_redirects=False) as resp:
        assert resp.status == 301
        assert resp.headers["Location"] == "/"
        assert await resp.text() == "301: Moved Permanently"


# --- HEAD -----------------------------------------------------------------------------


async def send_raw(port: int, request: bytes, quiet: float) -> tuple[bytes, bool]:
    """Send ``request`` on a fresh connection; what came back until the server
    closed it or said nothing for ``quiet`` seconds, and whether it closed it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    received, closed = b"", False
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), quiet):
            received += chunk
        closed = True
    except asyncio.TimeoutError:  # the builtin TimeoutError only from Python 3.11
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return received, closed


async def raw_exchange(port: int, request: bytes) -> bytes:
    """Everything the server sent back before closing the connection."""
    received, closed = await send_raw(port, request, TIMEOUT)
    assert closed, received
    return received


def head_and_body(answer: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers["status"] = lines[0].split(" ")[1]
    headers.pop("Date")
    return headers, body


@pytest.mark.claim("`HEAD` 请求得到同样的状态码和响应头，没有响应体")
async def test_head_gets_the_headers_and_no_body(aiohttp_client):
    app = create_app()
    app.router.add_get("/api/boom", boom)
    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    paths = ["/nothing", "/api/nothing", "/api/items/7", "/api/me", "/api/boom"]
    for path in [*paths, "/boom", "/old-home"]:
        request = f" {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        got, got_body = head_and_body(await raw_exchange(client.port, b"GET" + request))
        head, head_body = head_and_body(
            await raw_exchange(client.port, b"HEAD" + request)
        )
        assert head == got, path
        assert int(got["status"]) >= 300 and got_body, path
        assert head_body == b"", path


# --- unexpected exceptions ------------------------------------------------------------


@pytest.mark.claim("以 ERROR 级别记下请求的方法、路径和完整的回溯")
@pytest.mark.claim("客户端只收到 `MESSAGES[500]`，看不到异常的类型和消息")
async def test_an_unexpected_exception_is_a_500_and_a_log_record(
    aiohttp_client, caplog
):
    client = await aiohttp_client(app_with(("/api/boom", boom), ("/boom", boom)))
    async with client.post("/api/boom") as resp:
        assert resp.status == 500
        assert resp.content_type == "application/json"
        body = await resp.text()
    assert json.loads(body) == api_error(500, "Internal Server Error", MESSAGES[500])
    async with client.get("/boom", headers={"Accept": "application/json"}) as resp:
        assert resp.status == 500
        assert resp.content_type == "text/html"
        page = await resp.text()
    assert f"<p>{MESSAGES[500]}</p>" in page
    for text in (body, page):
        assert SECRET not in text and "RuntimeError" not in text
        assert "Traceback" not in text and "test_error_pages" not in text
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelno, r.getMessage()) for r in records] == [
        ("app", logging.ERROR, "POST /api/boom 出错"),
        ("app", logging.ERROR, "GET /boom 出错"),
    ]
    for record in records:
        trace = record.exc_text
        assert trace.startswith("Traceback (most recent call last):")
        assert ", in error_pages\n" in trace and ", in boom\n" in trace
        assert trace.endswith(f"RuntimeError: {SECRET}")


@pytest.fixture
def crash():
    """crash.py imported as a reader runs it: from a folder that holds app.py."""
    handlers = list(logging.getLogger("app").handlers)
    with pages.imported(FOLDER, "app", "crash") as modules:
        yield modules["crash"]
    logging.getLogger("app").handlers[:] = handlers


@pytest.mark.claim("客户端只看到通用的说明")
@pytest.mark.claim("`KeyError: 'pear'` 和出错的位置只在服务器日志里")
async def test_crash_prints_what_the_page_shows(crash, capsys):
    await crash.main()
    printed = capsys.readouterr().out
    shown = (FOLDER / "crash.txt").read_text("utf-8")
    assert pages.normalize(printed) == pages.normalize(shown)
    client_part, _, log_part = printed.partition("服务器日志")
    assert "KeyError" not in client_part and "pear" not in client_part.split("\n", 1)[1]
    assert "KeyError: 'pear'" in log_part


FAILURES = {
    "RuntimeError": lambda: RuntimeError(SECRET),
    "HTTPNotFound": lambda: web.HTTPNotFound(text=SECRET),
    "HTTPFound": lambda: web.HTTPFound("/"),
}


async def started_then_failed(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    if "write" in request.query:
        await resp.write(b"part of it")
    raise FAILURES[request.query["raise"]]()


@pytest.mark.claim("中间件再抛出异常，")
@pytest.mark.claim("由 aiohttp 记日志并关闭连接，客户端读到一个不完整的响应")
@pytest.mark.claim("这时抛出的如果是 `HTTPException`，中间件改抛 `RuntimeError`")
@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("query", [{}, {"write": "1"}])
async def test_a_response_already_started_is_not_replaced(
    aiohttp_client, caplog, query, failure
):
    client = await aiohttp_client(app_with(("/api/stream", started_then_failed)))
    params = {**query, "raise": failure}
    async with client.get("/api/stream", params=params) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.getMessage()) for r in records] == [
        ("aiohttp.server", DEFAULT_LOG_MESSAGE)
    ]
    logged = records[0].exc_info[1]
    if failure == "RuntimeError":
        assert str(logged) == SECRET
    else:  # the middleware's RuntimeError, caused by the handler's HTTPException
        assert type(logged) is RuntimeError, repr(logged)
        assert type(logged.__cause__).__name__ == failure, repr(logged.__cause__)


async def refuses_upload(request: web.Request) -> web.Response:
    raise web.HTTPNotFound(text=SECRET)


@pytest.mark.claim(
    "请求带着 `Expect: 100-continue` 时，aiohttp 先回一行 `100 Continue`"
)
@pytest.mark.claim("这个判断才不会把这样的请求当成响应已经开始发送")
async def test_an_error_after_100_continue_still_gets_its_page(aiohttp_server):
    """curl sends Expect: 100-continue with large uploads: a 404 is still a 404."""
    server = await aiohttp_server(app_with(("/api/upload", refuses_upload)))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    async with asyncio.timeout(TIMEOUT):
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n"), answer
    assert json.loads(body) == api_error(404, "Not Found", SECRET), answer


async def raw_get(port: int, path: str) -> tuple[bytes, bool]:
    """GET ``path`` on a kept-alive connection: what came back within a second of
    silence, and whether the server closed the connection."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    return await send_raw(port, request, 1)


@pytest.mark.claim("aiohttp 处理 `HTTPException` 时不做上面的判断")
@pytest.mark.claim(
    "而是把它当成第二个响应，状态行、响应头和响应体接着写进同一条连接，连接也不关闭"
)
@pytest.mark.parametrize("middlewares", [(), (error_pages,)], ids=["aiohttp", "page"])
async def test_an_http_exception_after_the_start_is_a_second_response(
    aiohttp_server, middlewares
):
    app = app_with(("/stream", started_then_failed), middlewares=middlewares)
    server = await aiohttp_server(app)
    received, closed = await raw_get(server.port, "/stream?write=1&raise=HTTPNotFound")
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), received
    assert b"Transfer-Encoding: chunked" in head, received
    assert body.startswith(b"a\r\npart of it\r\n"), received
    if middlewares:  # the page's: the answer stops there and the connection closes
        assert body == b"a\r\npart of it\r\n" and closed, received
    else:  # aiohttp's own: a second status line in the body; the connection stays
        assert b"\r\nHTTP/1.1 404 Not Found\r\n" in body, received
        assert SECRET.encode() in body and not closed, received


# --- cancellation ---------------------------------------------------------------------


@pytest.mark.claim("`except Exception` 接不住 `asyncio.CancelledError`")
@pytest.mark.claim("取消照常传出中间件")
async def test_cancellation_passes_through(caplog):
    assert not issubclass(asyncio.CancelledError, Exception)
    started = asyncio.Event()
    seen: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    @web.middleware
    async def outer(request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except BaseException as exc:
            seen.set_result(exc)
            raise

    async def waits(request: web.Request) -> web.Response:
        started.set()
        await asyncio.Event().wait()  # until the client goes away
        raise AssertionError("not reached")

    app = app_with(("/api/wait", waits), middlewares=(outer, error_pages))
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with asyncio.timeout(TIMEOUT):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /api/wait HTTP/1.1\r\nHost: x\r\n\r\n")
            await started.wait()
            writer.close()
            await writer.wait_closed()
            raised = await seen
    finally:
        await runner.cleanup()
    assert type(raised) is asyncio.CancelledError
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- where the middleware sits ----------------------------------------------------


@web.middleware
async def inner(request: web.Request, handler) -> web.StreamResponse:
    """A middleware after error_pages that fails on its own."""
    if request.path == "/api/denied":
        raise web.HTTPForbidden()
    if request.path == "/api/broken":
        raise RuntimeError(SECRET)
    return await handler(request)


@pytest.mark.claim("列表里靠前的中间件在外层")
@pytest.mark.claim("后面的中间件抛出的 `HTTPException` 和其他异常它也能接住")
async def test_first_in_the_list_is_outermost(aiohttp_client, caplog):
    first = await aiohttp_client(app_with(middlewares=(error_pages, inner)))
    async with first.get("/api/denied") as resp:
        assert await resp.json() == api_error(403, "Forbidden", MESSAGES[403])
    async with first.get("/api/broken") as resp:
        assert resp.status == 500
        assert await resp.json() == api_error(
            500, "Internal Server Error", MESSAGES[500]
        )
    assert [r.name for r in caplog.records if r.levelno >= logging.ERROR] == ["app"]
    caplog.clear()
    # placed after it, error_pages never sees what `inner` raises
    last = await aiohttp_client(app_with(middlewares=(inner, error_pages)))
    async with last.get("/api/denied") as resp:
        assert resp.status == 403
        assert await resp.text() == "403: Forbidden"
    async with last.get("/api/broken") as resp:
        assert resp.status == 500
        assert resp.content_type == "text/plain"
    logged = [r.name for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged == ["aiohttp.server"]


@pytest.mark.claim("在调用中间件之前就被回了 400")
@pytest.mark.claim("响应体是 aiohttp 自己的纯文本，不是这里的错误页")
async def test_requests_aiohttp_cannot_parse_never_reach_it(client, caplog):
    for request in [
        b"GET /api/items/1 HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        b"GET /api/items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    ]:
        answer = await raw_exchange(client.port, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert re.match(rb"HTTP/1\.[01] 400 Bad Request\r\n", head), head
        assert b"Content-Type: text/plain" in head
        assert b"<html" not in body and b'"status"' not in body
    assert not [r for r in caplog.records if r.name == "app"]


RUN_APP_WITH_A_BUG = """
import os, runpy, sys

sys.path.insert(0, os.getcwd())  # the reader's folder, holding app.py and crash.py
from aiohttp import web

import crash

run_app = web.run_app


def with_a_bug(app, **kwargs):
    app.router.add_get("/api/prices/{name}", crash.price)
    run_app(app, **kwargs)


web.run_app = with_a_bug
runpy.run_path("app.py", run_name="__main__")  # app.py's own __main__ block
"""


@pytest.mark.claim("同样的记录和完整的回溯出现在运行它的终端里")
async def test_python_app_py_logs_the_traceback_to_its_terminal(tmp_path):
    script = tmp_path / "run_with_a_bug.py"
    script.write_text(RUN_APP_WITH_A_BUG, "utf-8")
    port = servers.free_port()
    argv = [sys.executable, str(script)]
    env = {"PORT": str(port)}
    with servers.running(
        argv, port=port, cwd=FOLDER, env=env, expect_clean_exit=False
    ) as server:
        async with aiohttp.ClientSession(server.url) as session:
            async with session.get("/api/prices/pear") as resp:
                assert resp.status == 500
                assert "pear" not in await resp.text()
    assert server.proc.returncode == 0, server.output()
    lines = server.output().splitlines()
    start = lines.index("ERROR:app:GET /api/prices/pear 出错")
    assert lines[start + 1] == "Traceback (most recent call last):"
    assert "KeyError: 'pear'" in lines[start + 2 :]
    frames = [line for line in lines[start:] if line.startswith('  File "')]
    assert frames[0].endswith(", in error_pages") and frames[-1].endswith(", in price")
