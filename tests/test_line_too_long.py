"""line_too_long: aiohttp's parser limits, on a server receiving over-long requests
and on a client receiving over-long responses, with the C parser and the pure-Python
one (``AIOHTTP_NO_EXTENSIONS=1``, in processes of their own).

Every server is the page's ``create_app()`` or a small aiohttp app on 127.0.0.1.
"""

import asyncio
import inspect
import json
import os
import re
import signal
import sys

import aiohttp
import pytest
from aiohttp import http_exceptions, web

import pages
from line_too_long import client_side
from line_too_long.app import LIMITS, create_app, sizes
from servers import free_port

FOLDER = pages.SNIPPETS / "line_too_long"
TIMEOUT = 20
BIG = "x" * 9000
PURE_PYTHON = {"AIOHTTP_NO_EXTENSIONS": "1"}


def shown(name: str) -> str:
    return (FOLDER / name).read_text("utf-8")


async def run_python(
    *args: str, env: dict[str, str] | None = None, stdin: bytes = b""
) -> tuple[int, str, str]:
    """Run the test's Python in the page's folder; return status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=FOLDER,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate(stdin)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def server_side():
    """server_side.py imported as a reader runs it: from a folder that holds app.py."""
    with pages.imported(FOLDER, "app", "server_side") as modules:
        yield modules["server_side"]


def excerpt(line: bytes) -> str:
    """What LineTooLong quotes of a line: its first 100 bytes."""
    return repr(line[:100] + b"...")


# --- the programs on the page ---------------------------------------------------------


@pytest.mark.claim("三个请求都得到 400，响应体是解析器的消息")
@pytest.mark.claim("只有开头 100 个字节")
@pytest.mark.claim("每个 400 都在日志器 `aiohttp.server` 上记一条 ERROR")
@pytest.mark.claim("Cookie 9008 字节，URL 9004 字节，204 个请求头")
@pytest.mark.claim("消息里摘录的是请求头的值")
@pytest.mark.claim("放在 `bytearray(...)` 里")
async def test_server_side_prints_what_the_page_shows(server_side, capsys):
    await server_side.main()
    printed = capsys.readouterr().out
    assert pages.normalize(printed) == pages.normalize(shown("server_side.txt"))
    assert f"when reading: {excerpt(b'session=' + BIG.encode())}." in printed


@pytest.mark.claim("服务器回的是 200")
@pytest.mark.claim("放宽以后，`resp.headers` 里是完整的 `Set-Cookie`")
async def test_client_side_prints_what_the_page_shows(capsys):
    await client_side.main()
    printed = capsys.readouterr().out
    assert pages.normalize(printed) == pages.normalize(shown("client_side.txt"))


# --- the server -----------------------------------------------------------------------


@pytest.fixture
async def counted(aiohttp_server):
    """The page's app on 127.0.0.1; the list of requests its handler saw."""
    seen: list[str] = []

    @web.middleware
    async def count(request: web.Request, handler) -> web.StreamResponse:
        seen.append(request.path)
        return await handler(request)

    app = create_app()
    app.middlewares.append(count)
    server = await aiohttp_server(app)
    yield server.port, seen


@pytest.mark.claim("不调用处理器，直接回 400，响应体就是这条消息")
@pytest.mark.claim("后面跟着超长内容的前 100 个字节")
@pytest.mark.claim("处理器根本没有被调用。aiohttp 回完 400 就关闭这个连接")
async def test_the_server_answers_400_and_closes(counted):
    port, seen = counted
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    cookie = f"session={BIG}".encode()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + cookie + b"\r\n\r\n")
    async with asyncio.timeout(TIMEOUT):
        answer = await reader.read()  # to the end: the server closes
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] 400 Bad Request\r\n", head), answer[:300]
    assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in head + b"\r\n"
    assert body.decode() == f"Got more than 8190 bytes when reading: {excerpt(cookie)}."
    assert seen == []


@pytest.mark.claim("`code` 是 400")
@pytest.mark.claim("两者都是 `HttpProcessingError` 的子类")
def test_the_exceptions():
    for cls in (http_exceptions.LineTooLong, http_exceptions.BadHttpMessage):
        assert issubclass(cls, http_exceptions.HttpProcessingError)
    assert issubclass(http_exceptions.LineTooLong, http_exceptions.BadHttpMessage)
    assert http_exceptions.LineTooLong(b"x", 8190).code == 400
    assert http_exceptions.BadHttpMessage("Too many headers received").code == 400


def header_lines(n: int) -> bytes:
    return b"".join(b"X-Tag-%d: 1\r\n" % i for i in range(n))


def request_with(headers: bytes = b"", target: bytes = b"/") -> str:
    return (b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n").decode(
        "latin-1"
    )


# (what, request, C parser's status, pure-Python parser's status)
EDGES = [
    ("URL 8190", request_with(target=b"/?q=" + b"c" * 8186), 200, 400),
    ("URL 8191", request_with(target=b"/?q=" + b"c" * 8187), 400, 400),
    ("值 8190", request_with(b"X-Long: " + b"a" * 8190 + b"\r\n"), 200, 400),
    ("值 8191", request_with(b"X-Long: " + b"a" * 8191 + b"\r\n"), 400, 400),
    ("行 8190", request_with(b"X-Long: " + b"a" * 8182 + b"\r\n"), 200, 200),
    ("127 个请求头", request_with(header_lines(126)), 200, 400),
    ("128 个请求头", request_with(header_lines(127)), 200, 400),
    ("129 个请求头", request_with(header_lines(128)), 400, 400),
    ("126 个请求头", request_with(header_lines(125)), 200, 200),
]

PROBE = """
import asyncio, json, logging, sys
import aiohttp.http_parser
from aiohttp import web
from app import create_app

logging.disable(logging.CRITICAL)  # only the statuses matter here


async def status(port, request):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request.encode("latin-1"))
    line = await reader.readline()
    writer.close()
    return int(line.split()[1])


async def main(requests):
    runner = web.AppRunner(create_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    statuses = [await status(port, request) for request in requests]
    await runner.cleanup()
    parser = aiohttp.http_parser.HttpRequestParser.__module__
    print(json.dumps({"parser": parser, "statuses": statuses}))


asyncio.run(main(json.load(sys.stdin)))
"""


@pytest.mark.claim("默认用 C 写的解析器（`_http_parser.pyx`）")
@pytest.mark.claim("设置了环境变量 `AIOHTTP_NO_EXTENSIONS=1` 时，用纯 Python 的解析器")
@pytest.mark.claim("C 解析器只数 URL，请求头也数得少一些")
@pytest.mark.claim("C 解析器接受，纯 Python 解析器拒绝")
@pytest.mark.claim("纯 Python 解析器把起始行和结尾的空行也算进去")
@pytest.mark.claim("127 个请求头，C 解析器接受，纯 Python 解析器拒绝")
@pytest.mark.claim("起始行（请求行或状态行）的长度，默认 8190 字节")
@pytest.mark.claim("一个请求头（或响应头）的长度，默认 8190 字节")
@pytest.mark.claim("请求头（或响应头）的个数，默认 128 个")
@pytest.mark.parametrize(
    ("env", "parser", "column"),
    [({}, "aiohttp._http_parser", 2), (PURE_PYTHON, "aiohttp.http_parser", 3)],
    ids=["C", "pure-Python"],
)
async def test_where_the_two_parsers_draw_the_line(env, parser, column):
    requests = json.dumps([edge[1] for edge in EDGES]).encode()
    status, out, err = await run_python("-c", PROBE, env=env, stdin=requests)
    assert status == 0, err
    found = json.loads(out)
    assert found["parser"] == parser
    expected = {edge[0]: edge[column] for edge in EDGES}
    assert dict(zip(expected, found["statuses"], strict=True)) == expected


@pytest.mark.claim("纯 Python 解析器摘录的是整行，从名字开始")
@pytest.mark.claim("URL 太长时摘录整个请求行")
@pytest.mark.claim("两者的消息开头一样，细节不同")
async def test_the_pure_python_parser_quotes_whole_lines():
    runs = await asyncio.gather(
        run_python("server_side.py", env=PURE_PYTHON),
        run_python("client_side.py", env=PURE_PYTHON),
    )
    for status, _, err in runs:
        assert status == 0, err
    server_out, client_out = runs[0][1], runs[1][1]
    for line in (
        f"Cookie: session={BIG}".encode(),
        f"GET /?q={BIG} HTTP/1.1".encode(),
    ):
        assert f"400 Got more than 8190 bytes when reading: {excerpt(line)}." in (
            server_out
        ), server_out
    assert "bytearray" not in server_out
    cookie_line = f"Set-Cookie: state={BIG}; Path=/".encode()
    assert f"when reading: {excerpt(cookie_line)}." in client_out, client_out
    # the rest of what the programs print is the same as with the C parser
    assert len(server_out.splitlines()) == len(shown("server_side.txt").splitlines())
    assert (
        server_out.split("==== AppRunner(max_line_size")[1]
        == (shown("server_side.txt").split("==== AppRunner(max_line_size")[1])
    )


async def wait_until_listening(port: int) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
            else:
                writer.close()
                return


@pytest.mark.claim("`web.run_app(app, max_field_size=...)`，就像 `app.py`")
@pytest.mark.claim("这条日志连同回溯直接打印在运行它的终端里（标准错误）")
@pytest.mark.claim("`Error handling request from 客户端地址`")
@pytest.mark.claim("附带完整的回溯")
async def test_python_app_py():
    """The reader's `python app.py`: raised limits, and its log on stderr."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        cwd=FOLDER,
        env={**os.environ, "PORT": str(port), "PYTHONDONTWRITEBYTECODE": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_until_listening(port)
        url = f"http://127.0.0.1:{port}/"
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers={"Cookie": f"session={BIG}"}) as resp:
                assert (resp.status, await resp.text()) == (
                    200,
                    "URL 1 字节，Cookie 9008 字节，5 个请求头",
                )
            over = "x" * 20000
            async with session.get(url, headers={"Cookie": f"session={over}"}) as resp:
                assert resp.status == 400
                assert (await resp.text()).startswith(
                    "Got more than 16384 bytes when reading: b'session=xxx"
                )
    finally:
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(TIMEOUT):
            out, err = await proc.communicate()
    assert proc.returncode == 0, err
    assert "Error handling request" not in out.decode()
    assert re.search(
        r"^Error handling request from 127\.0\.0\.1\nTraceback \(most recent call "
        r"last\):\n(?:  .*\n)+aiohttp\.http_exceptions\.LineTooLong: 400, message:\n"
        r"  Got more than 16384 bytes when reading: b'session=x",
        err.decode(),
        re.M,
    ), err.decode()


def with_handler_args(limits: dict[str, int]) -> web.Application:
    app = web.Application(handler_args=limits)
    app.router.add_get("/", sizes)
    return app


@pytest.mark.claim(
    "设置跟着应用走，用 pytest-aiohttp 的\n  `aiohttp_client` 测试这个应用时也生效"
)
async def test_handler_args_hold_under_aiohttp_client(aiohttp_client):
    client = await aiohttp_client(with_handler_args({"max_field_size": 16384}))
    async with client.get("/", headers={"Cookie": f"session={BIG}"}) as resp:
        assert resp.status == 200, await resp.text()
    plain = await aiohttp_client(create_app())
    async with plain.get("/", headers={"Cookie": f"session={BIG}"}) as resp:
        assert resp.status == 400


@pytest.mark.claim("以 `handler_args` 为准")
@pytest.mark.claim("`web.AppRunner(app, max_field_size=...)`，就像 `server_side.py`")
@pytest.mark.parametrize(
    ("handler_args", "runner", "status"),
    [(16384, 8190, 200), (8190, 16384, 400), (None, 16384, 200), (None, None, 400)],
)
async def test_handler_args_win_over_the_runner(handler_args, runner, status):
    app = with_handler_args(
        {} if handler_args is None else {"max_field_size": handler_args}
    )
    runner_args = {} if runner is None else {"max_field_size": runner}
    web_runner = web.AppRunner(app, **runner_args)
    await web_runner.setup()
    await web.TCPSite(web_runner, "127.0.0.1", 0).start()
    port = web_runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"http://127.0.0.1:{port}/", headers={"Cookie": f"session={BIG}"}
            ) as resp:
                assert resp.status == status
    finally:
        await web_runner.cleanup()


# --- the client -----------------------------------------------------------------------


async def long_reason(request: web.Request) -> web.Response:
    return web.Response(text="ok", reason="r" * 9000)


async def many_headers(request: web.Request) -> web.Response:
    return web.Response(text="ok", headers={f"X-Tag-{i}": "1" for i in range(200)})


@pytest.fixture
async def upstream(aiohttp_server):
    """Responses over each limit, and the statuses the server really sent."""
    sent: list[int] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        sent.append(response.status)

    app = web.Application()
    app.on_response_prepare.append(record)
    app.router.add_get("/max_field_size", client_side.big_cookie)
    app.router.add_get("/max_line_size", long_reason)
    app.router.add_get("/max_headers", many_headers)
    server = await aiohttp_server(app)
    yield str(server.make_url("/")), sent


MESSAGES = {
    "max_field_size": "Got more than 8190 bytes when reading: b'state=xxx",
    "max_line_size": "Got more than 8190 bytes when reading: bytearray(b'rrr",
    "max_headers": "Too many headers received",
}


@pytest.mark.claim("会话的三个参数对它的所有请求生效；也可以只给一个请求")
@pytest.mark.claim("`session.get(url, max_field_size=16384)`")
@pytest.mark.claim("`status` 是 400，但这不是服务器回的状态码")
@pytest.mark.claim("`exc.status` 的 400 来自解析器的 `LineTooLong`")
@pytest.mark.parametrize("limit", list(MESSAGES))
async def test_each_client_limit(upstream, limit):
    base, sent = upstream
    url = base + limit
    raised = {limit: 16384 if limit != "max_headers" else 256}
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientResponseError) as caught:
            await session.get(url)
        assert caught.value.status == 400
        assert caught.value.message.startswith(MESSAGES[limit])
        parser_error = caught.value.__cause__.__cause__  # via HttpProcessingError
        too_long = limit != "max_headers"  # too many headers: a BadHttpMessage
        assert isinstance(parser_error, http_exceptions.LineTooLong) is too_long
        assert isinstance(parser_error, http_exceptions.BadHttpMessage)
        assert parser_error.code == 400, repr(parser_error)
        async with session.get(url, **raised) as resp:  # this request only
            assert resp.status == 200
        with pytest.raises(aiohttp.ClientResponseError):
            await session.get(url)
    async with aiohttp.ClientSession(**raised) as session:
        for _ in range(2):
            async with session.get(url) as resp:
                assert resp.status == 200
    assert sent == 5 * [200]  # the server answered 200 every time


@pytest.mark.claim("起始行（请求行或状态行）的长度，默认 8190 字节")
@pytest.mark.claim("一个请求头（或响应头）的长度，默认 8190 字节")
@pytest.mark.claim("请求头（或响应头）的个数，默认 128 个")
def test_the_session_defaults():
    params = inspect.signature(aiohttp.ClientSession).parameters
    defaults = {name: params[name].default for name in LIMITS}
    assert defaults == {
        "max_line_size": 8190,
        "max_field_size": 8190,
        "max_headers": 128,
    }


UNCAUGHT = """
import asyncio
import aiohttp
from aiohttp import web
from client_side import big_cookie


async def main():
    app = web.Application()
    app.router.add_get("/", big_cookie)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://127.0.0.1:{port}/")
    finally:
        await runner.cleanup()

asyncio.run(main())
"""


@pytest.mark.claim("回溯里依次是这三个异常")
@pytest.mark.claim(
    "“The above exception was the direct cause of the following exception:”"
)
@pytest.mark.claim("最后一行是 `ClientResponseError`")
async def test_the_traceback_a_reader_sees():
    status, _, err = await run_python("-c", UNCAUGHT)
    assert status == 1
    cause = "\n\nThe above exception was the direct cause of the following exception:\n"
    names = re.findall(r"^(aiohttp\.\S+): 400, message", err, re.M)
    assert names == [
        "aiohttp.http_exceptions.LineTooLong",
        "aiohttp.http_exceptions.HttpProcessingError",
        "aiohttp.client_exceptions.ClientResponseError",
    ], err
    assert err.count(cause) == 2, err
    assert (
        err.rstrip()
        .splitlines()[-1]
        .startswith(
            'aiohttp.client_exceptions.ClientResponseError: 400, message="Got more than'
        )
    ), err
