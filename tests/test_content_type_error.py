"""content_type_error: what resp.json() does with each Content-Type, real sockets."""

import asyncio
import json
import sys

import aiohttp
import pytest
from aiohttp import web

import pages
from content_type_error import client as client_script
from content_type_error import try_json
from content_type_error.app import ITEM, create_app

TIMEOUT = 10
SHOWN = pages.SNIPPETS / "content_type_error"


@pytest.fixture
async def base_url(aiohttp_server) -> str:
    """The recipe's server on 127.0.0.1, as the programs on the page see it."""
    server = await aiohttp_server(create_app())
    return str(server.make_url("")).rstrip("/")


def as_shown(name: str, base_url: str) -> list[str]:
    """The lines of snippets/content_type_error/<name>, pointed at ``base_url``."""
    text = (SHOWN / name).read_text("utf-8")
    return text.replace("http://127.0.0.1:8080", base_url).splitlines()


@pytest.mark.claim("类型写成了 `text/html`")
@pytest.mark.claim("`application/problem+json` 直接通过")
@pytest.mark.claim("`json()` 不看状态码，404 的响应体照样解析")
@pytest.mark.claim("不是 JSON 时（`/broken`、502 的 HTML 页）")
async def test_try_json_prints_what_the_page_shows(base_url, capsys):
    await try_json.main(base_url)
    assert capsys.readouterr().out.splitlines() == as_shown("try_json.txt", base_url)


@pytest.mark.claim("它不跳过状态码检查，`/bad-gateway` 两次都报 502")
@pytest.mark.claim("读出开头一段放进错误信息")
async def test_client_prints_what_the_page_shows(base_url, capsys):
    await client_script.main(base_url)
    assert capsys.readouterr().out.splitlines() == as_shown("client.txt", base_url)


# --- which types pass -------------------------------------------------------------


async def typed(request: web.Request) -> web.Response:
    """JSON with the Content-Type the query asks for, sent as it is."""
    headers = {"Content-Type": request.query["type"]}
    return web.Response(body=json.dumps(ITEM).encode(), headers=headers)


@pytest.fixture
async def typed_client(aiohttp_client):
    app = web.Application()
    app.router.add_get("/", typed)
    return await aiohttp_client(app)


ACCEPTED = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/problem+json",
    "application/vnd.api+json; charset=utf-8",
    "application/json-seq",
]
REFUSED = [
    "text/json",
    "text/javascript",
    "text/plain",
    "text/html; charset=utf-8",
    "Text/HTML",
    "application/x-json",
    "application/javascript",
    "application/octet-stream",
    "",
]


@pytest.mark.claim("先转成小写，然后要么以 `application/json` 开头")
@pytest.mark.claim("`application/problem+json`、`application/vnd.api+json`")
@pytest.mark.claim("后面带 `; charset=utf-8` 之类的参数不影响")
@pytest.mark.parametrize("content_type", ACCEPTED)
async def test_json_types_pass(typed_client, content_type):
    async with typed_client.get("/", params={"type": content_type}) as resp:
        assert resp.headers["Content-Type"] == content_type
        assert await resp.json() == ITEM


@pytest.mark.claim("`text/json`、`text/javascript`、`text/plain`、`text/html` 都不行")
@pytest.mark.claim(
    "`Attempt to decode JSON with unexpected mimetype: 类型`，类型也是小写的"
)
@pytest.mark.claim("传 `None` 就完全不检查")
@pytest.mark.parametrize("content_type", REFUSED)
async def test_other_types_raise_content_type_error(typed_client, content_type):
    async with typed_client.get("/", params={"type": content_type}) as resp:
        with pytest.raises(aiohttp.ContentTypeError) as refused:
            await resp.json()
        assert await resp.json(content_type=None) == ITEM
    # the message names the type in lower case, as it was checked
    expected = (
        "Attempt to decode JSON with unexpected mimetype: " + content_type.lower()
    )
    assert refused.value.message == expected


@pytest.mark.claim("检查变成“这个字符串出现在 `Content-Type` 里”")
async def test_another_expected_type_is_looked_for_inside_the_header(base_url):
    async with aiohttp.ClientSession(base_url) as session:
        async with session.get("/html-json") as resp:
            assert await resp.json(content_type="text/html") == ITEM
            assert await resp.json(content_type="html") == ITEM
            with pytest.raises(aiohttp.ContentTypeError):
                await resp.json(content_type="text/plain")


# --- the error and the response behind it ---------------------------------------


@pytest.mark.claim("这时响应体是不是 JSON、状态码是多少，它都不管")
@pytest.mark.claim("异常对象的 `status` 属性也是它")
@pytest.mark.claim("`except aiohttp.ClientResponseError` 也能捕获它")
@pytest.mark.claim("捕获 `ContentTypeError` 之后还能 `await resp.text()`")
async def test_the_error_carries_the_status_and_the_body_stays_readable(base_url):
    async with aiohttp.ClientSession(base_url) as session:
        for path, status in [("/html-json", 200), ("/bad-gateway", 502)]:
            async with session.get(path) as resp:
                with pytest.raises(aiohttp.ClientResponseError) as refused:
                    await resp.json()
                text = await resp.text()
            assert type(refused.value) is aiohttp.ContentTypeError
            assert refused.value.status == status
            assert refused.value.headers["Content-Type"] == "text/html; charset=utf-8"
            assert text.startswith("{" if status == 200 else "<html>"), text


@pytest.mark.claim("没有 `Content-Type` 也不行")
@pytest.mark.claim("`resp.content_type` 在这时返回 `application/octet-stream`")
async def test_no_content_type_at_all(base_url):
    async with aiohttp.ClientSession(base_url) as session:
        async with session.get("/no-type") as resp:
            assert "Content-Type" not in resp.headers
            assert resp.content_type == "application/octet-stream"
            with pytest.raises(aiohttp.ContentTypeError) as refused:
                await resp.json()
    assert refused.value.message.endswith("mimetype: ")


async def untyped(request: web.Request) -> web.Response:
    return web.Response(body=json.dumps(ITEM).encode())


@pytest.mark.claim("会给有响应体却没写类型的响应补上 `application/octet-stream`")
@pytest.mark.claim("这个信号在补类型之后、发出响应头之前运行")
async def test_aiohttp_adds_a_type_unless_the_signal_drops_it(aiohttp_client, base_url):
    app = web.Application()
    app.router.add_get("/no-type", untyped)
    client = await aiohttp_client(app)
    async with client.get("/no-type") as resp:
        assert resp.headers["Content-Type"] == "application/octet-stream"
    async with aiohttp.ClientSession(base_url) as session:
        async with session.get("/no-type") as resp:
            assert "Content-Type" not in resp.headers
            assert await resp.json(content_type=None) == ITEM


async def empty(request: web.Request) -> web.Response:
    if request.query.get("status") == "204":
        return web.Response(status=204)
    return web.Response(body=b" \r\n", content_type="application/json")


@pytest.mark.claim("类型检查通过后 `json()` 返回 `None`")
@pytest.mark.claim(
    "`204 No Content` 没有 `Content-Type`，默认检查下照样抛 `ContentTypeError`"
)
@pytest.mark.claim("或者传 `content_type=None`")
async def test_an_empty_body(aiohttp_client):
    app = web.Application()
    app.router.add_get("/", empty)
    client = await aiohttp_client(app)
    async with client.get("/") as resp:
        assert await resp.json() is None
    async with client.get("/", params={"status": "204"}) as resp:
        assert resp.status == 204
        assert "Content-Type" not in resp.headers
        with pytest.raises(aiohttp.ContentTypeError) as refused:
            await resp.json()
        assert refused.value.status == 204
        assert await resp.json(content_type=None) is None


UNCAUGHT = """
import asyncio, sys
import aiohttp

async def main(url):
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            await resp.json()

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.claim("这一行正是不捕获异常时回溯的最后一行")
@pytest.mark.parametrize("path", ["/html-json", "/no-type", "/bad-gateway", "/broken"])
async def test_the_printed_line_ends_the_traceback(base_url, path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        UNCAUGHT,
        base_url + path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        _, stderr = await proc.communicate()
    assert proc.returncode == 1
    shown = as_shown("try_json.txt", base_url)
    # the line under "GET <path>：..." is what resp.json() gave, as try_json printed it
    printed = next(
        shown[number + 1].split("：", 1)[1]
        for number, text in enumerate(shown)
        if text.startswith(f"GET {path}：")
    )
    assert stderr.decode().splitlines()[-1] == printed


# --- checking the status first ----------------------------------------------------


@pytest.mark.claim("状态码不小于 400 时抛出 `aiohttp.ClientResponseError`")
@pytest.mark.claim("`message` 是原因短语（这里是 `Bad Gateway`），响应体不在异常里")
async def test_raise_for_status(base_url):
    async with aiohttp.ClientSession(base_url) as session:
        for path in ["/ok", "/html-json", "/broken"]:
            async with session.get(path) as resp:
                resp.raise_for_status()
        async with session.get("/bad-gateway") as resp:
            with pytest.raises(aiohttp.ClientResponseError) as refused:
                resp.raise_for_status()
    error = refused.value
    assert type(error) is aiohttp.ClientResponseError
    assert (error.status, error.message) == (502, "Bad Gateway")
    assert str(error) == f"502, message='Bad Gateway', url='{base_url}/bad-gateway'"
    assert "<html>" not in repr(error)


@pytest.mark.claim("这个会话的每个请求都会这样检查")
async def test_raise_for_status_on_the_session(base_url):
    async with aiohttp.ClientSession(base_url, raise_for_status=True) as session:
        async with session.get("/ok") as resp:
            assert await resp.json() == ITEM
        for path, status in [("/problem", 404), ("/bad-gateway", 502)]:
            with pytest.raises(aiohttp.ClientResponseError) as refused:
                await session.get(path)
            assert refused.value.status == status


async def latin1(request: web.Request) -> web.Response:
    body = '{"name": "café"}'.encode("latin-1")
    return web.Response(body=body, content_type="text/plain")


@pytest.mark.claim("`json()` 解码失败抛出 `UnicodeDecodeError`，它同样是 `ValueError`")
async def test_a_body_that_is_not_utf8(aiohttp_client):
    app = web.Application()
    app.router.add_get("/", latin1)
    client = await aiohttp_client(app)
    async with client.get("/") as resp:
        with pytest.raises(UnicodeDecodeError):
            await resp.json(content_type=None)
    session = aiohttp.ClientSession(str(client.make_url("")))
    async with session:
        with pytest.raises(client_script.ApiError) as refused:
            await client_script.get_json(session, "/", trust_body=True)
    assert str(refused.value).startswith("响应体不是合法的 JSON：'utf-8' codec")
    assert isinstance(refused.value.__cause__, UnicodeDecodeError)
