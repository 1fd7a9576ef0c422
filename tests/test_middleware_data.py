"""middleware_data: a middleware stores per-request data, the handler reads it."""

import ast
import asyncio
import configparser
import importlib.metadata
import importlib.util
import json
import re
import shutil
import sys
import traceback
import uuid
import warnings
from http.cookies import SimpleCookie

import aiohttp
import aiohttp_session
import pytest
from aiohttp import http_writer, web
from aiohttp_session import SimpleCookieStorage, get_session
from packaging.requirements import Requirement

from middleware_data import session_app, show_key
from middleware_data.app import (
    REQUEST_ID,
    VALID_ID,
    create_app,
    request_id_middleware,
)
from pages import SNIPPETS
from servers import free_port, running

TIMEOUT = 5
HEX_ID = re.compile(r"[0-9a-f]{32}")
NOT_UTF8_ID = b"a\xffb"  # \xff is not UTF-8


def ini_filters(path: str) -> list[str]:
    """The filterwarnings lines of a pytest.ini shown on the page, in order."""
    config = configparser.ConfigParser()
    config.read(SNIPPETS / path, encoding="utf-8")
    return config["pytest"]["filterwarnings"].split()


# The page's pytest.ini: aiohttp-session 2.12.1 sets string keys on the request,
# which aiohttp 3.14 answers with NotAppKeyWarning; only that one is ignored.
page_filters = pytest.mark.filterwarnings(*ini_filters("middleware_data/pytest.ini"))

# Two keys with the same name, so the same repr: still two different keys.
TWIN_A = web.RequestKey("twin", str)
TWIN_B = web.RequestKey("twin", str)
SEEN_BY_MIDDLEWARE = web.RequestKey("seen_by_middleware", web.Request)


@web.middleware
async def remember_request(request: web.Request, handler) -> web.StreamResponse:
    """Outside the page's middleware: keeps the request object it was given."""
    request[SEEN_BY_MIDDLEWARE] = request
    return await handler(request)


@pytest.fixture
async def client(aiohttp_client):
    """The request-id app on 127.0.0.1, plus probe routes the page talks about."""
    app = create_app()
    app.middlewares.insert(0, remember_request)

    async def same_request(request: web.Request) -> web.Response:
        return web.json_response(request[SEEN_BY_MIDDLEWARE] is request)

    async def twins(request: web.Request) -> web.Response:
        request[TWIN_A] = "a"
        request[TWIN_B] = "b"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", web.NotAppKeyWarning)
            request["twin"] = "a"
            request["twin"] = "b"
        return web.json_response([request[TWIN_A], request[TWIN_B], request["twin"]])

    async def any_type(request: web.Request) -> web.Response:
        request[REQUEST_ID] = 42  # type: ignore[assignment]
        return web.json_response(request[REQUEST_ID])

    async def string_key(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        request[key] = "set"
        return web.Response(text=request[key])

    async def decoded(request: web.Request) -> web.Response:
        return web.Response(text=ascii(request.headers["X-Request-ID"]))

    async def echo(request: web.Request) -> web.Response:
        """What the page warns against: the client's header written back as is."""
        return web.Response(headers={"X-Echo": request.headers["X-Request-ID"]})

    app.router.add_get("/same-request", same_request)
    app.router.add_get("/twins", twins)
    app.router.add_get("/any-type", any_type)
    app.router.add_get("/string/{key}", string_key)
    app.router.add_get("/decoded", decoded)
    app.router.add_get("/echo", echo)
    return await aiohttp_client(app)


async def raw_get(port: int, path: str, request_id: bytes) -> bytes:
    """Send bytes aiohttp's client would not; return all the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
        + b"X-Request-ID: "
        + request_id
        + b"\r\n\r\n"
    )
    async with asyncio.timeout(TIMEOUT):
        answer = await reader.read()  # until the server closes the connection
    writer.close()
    await writer.wait_closed()
    return answer


def header(answer: bytes, name: bytes) -> bytes:
    head = answer.partition(b"\r\n\r\n")[0]
    [value] = re.findall(rb"\r\n" + name + rb": ([^\r]*)", head)
    return value


@pytest.mark.claim("处理器就能把它读出来")
@pytest.mark.parametrize("request_id", ["demo-42", "abc", "A" * 64])
async def test_handler_reads_what_the_middleware_stored(client, request_id):
    resp = await client.get("/", headers={"X-Request-ID": request_id})
    body = await resp.text()
    assert resp.status == 200, body
    assert body == f"请求 ID：{request_id}\n"
    assert resp.headers["X-Request-ID"] == request_id, body


@pytest.mark.claim("拿到的都是同一个 `request` 对象")
async def test_middleware_and_handler_get_the_same_request(client):
    resp = await client.get("/same-request")
    assert await resp.json() is True


@pytest.mark.claim("不合格就换成新生成的")
@pytest.mark.parametrize("given", ["请求-1", "a b", "A" * 65, "a;b", "<script>"])
async def test_an_id_of_another_shape_is_replaced(client, given):
    resp = await client.get("/", headers={"X-Request-ID": given})
    body = await resp.text()
    assert resp.status == 200, body
    assert HEX_ID.fullmatch(resp.headers["X-Request-ID"]), resp.headers
    assert body == f"请求 ID：{resp.headers['X-Request-ID']}\n"


@pytest.mark.claim("每次都不同")
async def test_without_header_each_request_gets_a_new_id(client):
    ids = []
    for _ in range(3):
        resp = await client.get("/")
        body = await resp.text()
        ids.append(resp.headers["X-Request-ID"])
        assert HEX_ID.fullmatch(ids[-1]), body
        assert body == f"请求 ID：{ids[-1]}\n"
    assert len(set(ids)) == 3, ids


@pytest.mark.claim("不会走到 `response.headers[...] = ...` 这一行")
async def test_raised_404_does_not_get_the_header(client):
    resp = await client.get("/missing", headers={"X-Request-ID": "x"})
    assert resp.status == 404, await resp.text()
    assert "X-Request-ID" not in resp.headers, resp.headers


@pytest.mark.claim("里给 `exc.headers` 加上再重新抛出")
async def test_a_raised_response_gets_the_header_from_except(aiohttp_client):
    """The page's remedy, written into a copy of its middleware."""

    @web.middleware
    async def also_on_raised(request: web.Request, handler) -> web.StreamResponse:
        request_id = uuid.uuid4().hex
        request[REQUEST_ID] = request_id
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers["X-Request-ID"] = request_id
            raise
        response.headers["X-Request-ID"] = request_id
        return response

    app = web.Application(middlewares=[also_on_raised])
    test_client = await aiohttp_client(app)
    resp = await test_client.get("/missing")
    assert resp.status == 404, await resp.text()
    assert HEX_ID.fullmatch(resp.headers["X-Request-ID"]), resp.headers


@pytest.mark.claim("键的名字会自动加上定义它的模块名")
def test_key_name_carries_its_module():
    """show_key.py's key, imported here as middleware_data.show_key."""
    assert show_key.__name__ == "middleware_data.show_key"
    assert repr(show_key.REQUEST_ID) == (
        "<RequestKey(middleware_data.show_key.request_id, type=str)>"
    )
    assert repr(REQUEST_ID) == "<RequestKey(middleware_data.app.request_id, type=str)>"


@pytest.mark.claim("`RequestKey` 按对象身份比较")
@pytest.mark.claim("字符串键则只要文字相同就会互相覆盖")
async def test_keys_with_the_same_name_do_not_collide(client):
    assert repr(TWIN_A) == repr(TWIN_B)
    assert TWIN_A != TWIN_B
    resp = await client.get("/twins")
    assert await resp.json() == ["a", "b", "b"], await resp.text()


@pytest.mark.claim("运行时 aiohttp 不检查值的类型")
async def test_value_type_is_not_checked_at_run_time(client):
    resp = await client.get("/any-type")
    assert await resp.json() == 42, await resp.text()


@pytest.mark.claim("`request.headers` 里的值是 `'a\\udcffb'`")
async def test_bytes_that_are_not_utf8_become_surrogates(client):
    answer = await raw_get(client.port, "/decoded", NOT_UTF8_ID)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(b"\r\n\r\n'a\\udcffb'"), answer


@pytest.mark.claim("默认的 C 扩展把代理字符悄悄丢掉")
@pytest.mark.claim("`a\\xffb` 这样的 ID 会被换成新生成的")
async def test_the_c_writer_drops_surrogates(client):
    assert http_writer._serialize_headers is http_writer._c_serialize_headers
    answer = await raw_get(client.port, "/echo", NOT_UTF8_ID)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert header(answer, b"X-Echo") == b"ab", answer
    answer = await raw_get(client.port, "/", NOT_UTF8_ID)  # the page's own route
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert HEX_ID.fullmatch(header(answer, b"X-Request-ID").decode()), answer


PROBE = '''\
"""The page's app.py with a route that writes the client's header back as is."""

import os

from aiohttp import http_writer, web

from app import create_app


async def echo(request):
    return web.Response(headers={"X-Echo": request.headers["X-Request-ID"]})


python = http_writer._serialize_headers is http_writer._py_serialize_headers
print("pure Python writer" if python else "C writer", flush=True)
app = create_app()
app.router.add_get("/echo", echo)
web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]))
'''


@pytest.mark.claim("在写响应头时抛出 `UnicodeEncodeError`")
@pytest.mark.claim("客户端收不到任何响应")
async def test_the_python_writer_drops_the_connection(tmp_path):
    shutil.copy(SNIPPETS / "middleware_data" / "app.py", tmp_path)
    (tmp_path / "probe.py").write_text(PROBE, "utf-8")
    port = free_port()
    env = {"PORT": str(port), "AIOHTTP_NO_EXTENSIONS": "1"}
    argv = [sys.executable, "probe.py"]
    with running(
        argv, port=port, cwd=tmp_path, env=env, expect_clean_exit=False
    ) as server:
        echoed = await raw_get(port, "/echo", NOT_UTF8_ID)
        page_route = await raw_get(port, "/", NOT_UTF8_ID)
    log = server.output()
    assert server.proc.returncode == 0, log
    assert log.startswith("pure Python writer\n"), log
    assert echoed == b"", echoed
    assert "Unhandled exception" in log, log
    assert "UnicodeEncodeError: 'utf-8' codec can't encode character '\\udcff'" in log
    # The page's middleware never writes such an ID: the page's route answers.
    assert page_route.startswith(b"HTTP/1.1 200 OK\r\n"), page_route
    assert HEX_ID.fullmatch(header(page_route, b"X-Request-ID").decode())
    assert log.count("Traceback") == 1, log


def test_the_check_is_what_the_page_says():
    """Letters, digits and hyphens, 1 to 64 of them."""
    assert VALID_ID.fullmatch("Az-09" + "x" * 59)
    assert not VALID_ID.fullmatch("x" * 65)
    assert not VALID_ID.fullmatch("a_b")
    assert not VALID_ID.fullmatch("")


@page_filters
@pytest.mark.claim("你自己的代码如果还在用字符串键，照样会报错")
@pytest.mark.claim("只有进程里最早写这个键的那个请求失败")
@pytest.mark.claim("这个警告会在写入的那一行 变成异常，请求得到 500")
async def test_string_key_warning_fails_only_the_first_request(client):
    # filterwarnings=error turns the warning into an exception in the handler;
    # the page's filter for aiohttp_session does not cover our own string keys.
    key = f"unique-{uuid.uuid4().hex}"
    first = await client.get(f"/string/{key}")
    assert first.status == 500, await first.text()
    second = await client.get(f"/string/{key}")
    assert (second.status, await second.text()) == (200, "set")


@pytest.mark.claim("用某个字符串作键写入 `request` 时")
@pytest.mark.claim("同一个字符串以后再写不会重复提示，读取也不会提示")
async def test_string_key_warns_once_per_key(client):
    assert issubclass(web.NotAppKeyWarning, UserWarning)
    key = f"unique-{uuid.uuid4().hex}"
    with pytest.warns(web.NotAppKeyWarning, match="web.RequestKey") as caught:
        resp = await client.get(f"/string/{key}")
    assert resp.status == 200, await resp.text()
    assert len(caught) == 1, [str(w.message) for w in caught]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resp = await client.get(f"/string/{key}")
    assert (resp.status, await resp.text()) == (200, "set")
    assert caught == [], [str(w.message) for w in caught]


@pytest.mark.claim("对 `app` 用字符串键写入同样会发出 `NotAppKeyWarning`")
def test_a_string_key_on_the_app_warns():
    app = web.Application()
    with pytest.warns(web.NotAppKeyWarning, match="web.AppKey"):
        app["request_id"] = "x"


@pytest.mark.claim("在每个请求上以 `(app, handler)` 调用它")
async def test_undecorated_middleware_is_taken_for_an_old_style_factory(
    aiohttp_client,
):
    calls = []

    async def undecorated(request, handler):
        calls.append(request)
        return await request_id_middleware(request, handler)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[undecorated])
    app.router.add_get("/", ok)
    with pytest.warns(DeprecationWarning, match="old-style middleware"):
        test_client = await aiohttp_client(app)
    for _ in range(2):
        resp = await test_client.get("/")
        assert resp.status == 500, await resp.text()
    assert calls == [app, app], calls


@pytest.fixture
async def session_client(aiohttp_client):
    """The aiohttp-session app (cookies kept by the client), plus probe routes."""
    app = session_app.create_app()

    async def cached(request: web.Request) -> web.Response:
        first = await get_session(request)
        second = await get_session(request)
        return web.json_response(
            {
                "same": first is second is request["aiohttp_session"],
                "storage": type(request["aiohttp_session_storage"]).__name__,
            }
        )

    async def read_only(request: web.Request) -> web.Response:
        session = await get_session(request)
        return web.Response(text=str(session.get("visits")))

    app.router.add_get("/cached", cached)
    app.router.add_get("/read-only", read_only)
    return await aiohttp_client(app)


@pytest.mark.claim("往 `app.middlewares` 里追加一个会话中间件")
def test_setup_appends_a_middleware():
    app = web.Application(middlewares=[request_id_middleware])
    aiohttp_session.setup(app, SimpleCookieStorage())
    assert len(app.middlewares) == 2, app.middlewares
    assert app.middlewares[0] is request_id_middleware
    assert app.middlewares[1].__qualname__ == "session_middleware.<locals>.factory"


@page_filters
@pytest.mark.claim("改过才把它写进响应的")
@pytest.mark.claim("把会话原样以 JSON 明文放在 cookie 里")
async def test_visits_are_counted_in_the_session(session_client):
    for expected in range(1, 4):
        resp = await session_client.get("/")
        body = await resp.text()
        assert resp.status == 200, body
        assert body == f"第 {expected} 次访问\n"
        cookie = SimpleCookie(resp.headers["Set-Cookie"])["AIOHTTP_SESSION"]
        assert json.loads(cookie.value)["session"] == {"visits": expected}, cookie


@page_filters
@pytest.mark.claim('先把 `storage` 存到 `request["aiohttp_session_storage"]`')
@pytest.mark.claim("拿到的是同一个 `Session` 对象，不会重新加载")
@pytest.mark.claim('就占用了 `"aiohttp_session"` 这个键')
async def test_get_session_is_cached_on_the_request(session_client):
    assert aiohttp_session.SESSION_KEY == "aiohttp_session"
    assert aiohttp_session.STORAGE_KEY == "aiohttp_session_storage"
    resp = await session_client.get("/cached")
    body = await resp.json()
    assert body == {"same": True, "storage": SimpleCookieStorage.__name__}, body


@page_filters
@pytest.mark.claim("改过才把它写进响应的")
async def test_unchanged_session_sets_no_cookie(session_client):
    resp = await session_client.get("/read-only")
    assert await resp.text() == "None"
    assert "Set-Cookie" not in resp.headers, resp.headers


@page_filters
@pytest.mark.claim("服务器也照样接受")
async def test_simple_cookie_storage_trusts_a_forged_cookie(session_client):
    forged = '{"created":1,"session":{"visits":41}}'
    resp = await session_client.get("/", cookies={"AIOHTTP_SESSION": forged})
    assert await resp.text() == "第 42 次访问\n"


@page_filters
@pytest.mark.claim("这两种 cookie 都让请求得到 500")
@pytest.mark.claim("会让 `get_session()` 抛出异常，`visits` 不是数字的会让处理器出错")
@pytest.mark.parametrize(
    ("cookie", "raised_in"),
    [
        ("", "get_session"),
        ("{", "get_session"),
        ('"[1]"', "get_session"),
        ('{"created":1,"session":{"visits":"x"}}', "visits"),
    ],
)
async def test_a_session_cookie_it_cannot_read_is_a_500(
    aiohttp_client, caplog, cookie, raised_in
):
    """What the page's warning says: SimpleCookieStorage does not check the cookie."""
    test_client = await aiohttp_client(session_app.create_app())
    resp = await test_client.get("/", headers={"Cookie": f"AIOHTTP_SESSION={cookie}"})
    assert resp.status == 500, await resp.text()
    [record] = [r for r in caplog.records if r.name == "aiohttp.server"]
    frames = [frame.name for frame in traceback.extract_tb(record.exc_info[2])]
    handler_at = frames.index("visits")  # the page's handler
    assert raised_in in frames[handler_at:], frames
    if raised_in == "visits":
        assert "get_session" not in frames[handler_at:], frames


@pytest.mark.claim("只对它忽略这一种警告即可")
@pytest.mark.claim("发出位置在 `aiohttp_session`\n模块里的警告才忽略")
@pytest.mark.parametrize(
    "status",
    [
        pytest.param(200, marks=page_filters, id="page's-filters"),
        pytest.param(500, marks=pytest.mark.filterwarnings("error"), id="error-only"),
    ],
)
async def test_the_first_request_of_a_process(aiohttp_client, monkeypatch, status):
    """aiohttp warns once per string key and process: start as a fresh process."""
    monkeypatch.setattr(web.BaseRequest, "_seen_str_keys", set())
    test_client = await aiohttp_client(session_app.create_app())
    resp = await test_client.get("/")
    assert resp.status == status, await resp.text()


def classes_in(module: str) -> set[str]:
    """Class names a module of an installed package defines, read without import."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, module
    with open(spec.origin, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


@pytest.mark.claim("它依赖 `cryptography`")
def test_the_storages_the_page_recommends_exist():
    """cryptography is not installed here: the module is read, not imported."""
    assert "EncryptedCookieStorage" in classes_in("aiohttp_session.cookie_storage")
    assert "RedisStorage" in classes_in("aiohttp_session.redis_storage")
    requires = [Requirement(r) for r in importlib.metadata.requires("aiohttp-session")]
    secure = [
        r.name for r in requires if r.marker and r.marker.evaluate({"extra": "secure"})
    ]
    assert secure == ["cryptography"], requires


@pytest.fixture
def session_program(tmp_path):
    """session_app.py saved on its own, as a reader would run it."""
    shutil.copy(SNIPPETS / "middleware_data" / "session_app.py", tmp_path)
    return tmp_path / "session_app.py"


async def statuses(url: str, count: int) -> list[int]:
    async with aiohttp.ClientSession() as session:
        result = []
        for _ in range(count):
            async with session.get(url) as resp:
                result.append(resp.status)
        return result


@pytest.mark.claim("aiohttp-session 用的是上面那两个 **字符串** 键")
@pytest.mark.claim("`python -W default session_app.py` 时第一次访问就会打印这两条警告")
@pytest.mark.claim("`python -W default`、`python -X dev` 运行才会打印出来")
@pytest.mark.claim("每个进程两次")
@pytest.mark.parametrize(
    ("options", "warned"),
    [([], False), (["-W", "default"], True), (["-X", "dev"], True)],
)
async def test_session_warnings_are_hidden_unless_asked_for(
    session_program, options, warned
):
    assert isinstance(aiohttp_session.SESSION_KEY, str)
    assert isinstance(aiohttp_session.STORAGE_KEY, str)
    port = free_port()
    argv = [sys.executable, *options, session_program.name]
    env = {"PORT": str(port), "PYTHONWARNINGS": ""}
    lines = ["request[STORAGE_KEY] = storage", "request[SESSION_KEY] = session"]
    with running(argv, port=port, cwd=session_program.parent, env=env) as server:
        assert await statuses(server.url, 1) == [200], server.output()
        after_first = server.output()
        assert await statuses(server.url, 2) == [200, 200], server.output()
    log = server.output()
    for text in (after_first, log):
        assert text.count("NotAppKeyWarning") == (2 if warned else 0), text
        assert all((line in text) == warned for line in lines), text


@pytest.mark.claim("前两个请求都会得到 500")
@pytest.mark.claim("第一个失败在中间件写 `STORAGE_KEY`")
@pytest.mark.claim("第二个失败在 `get_session()` 写 `SESSION_KEY`")
async def test_session_warnings_as_errors_fail_the_first_requests(session_program):
    port = free_port()
    argv = [sys.executable, "-W", "error", session_program.name]
    with running(
        argv,
        port=port,
        cwd=session_program.parent,
        env={"PORT": str(port)},
        expect_clean_exit=False,
    ) as server:
        assert await statuses(server.url, 3) == [500, 500, 200], server.output()
    log = server.output()
    assert server.proc.returncode == 0, log
    assert log.count("NotAppKeyWarning: It is recommended") == 2, log
    storage = log.index("request[STORAGE_KEY] = storage")
    session = log.index("request[SESSION_KEY] = session")
    assert storage < session, log
