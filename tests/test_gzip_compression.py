"""gzip_compression: a middleware compresses responses; or nginx compresses instead."""

import asyncio
import contextlib
import gzip
import inspect
import json
import logging
import re
import zlib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import pages
from gzip_compression import backend
from gzip_compression.app import compression_middleware, create_app, echo, stream
from servers import free_port
from servers import nginx as nginx_running

TIMEOUT = 5
NGINX_CONF = pages.SNIPPETS / "gzip_compression/nginx.conf"
DECOMPRESS = {"gzip": gzip.decompress, "deflate": zlib.decompress}
LINES = "第 0 行：这段文字会被压缩后再发送\n第 1 行：这段文字会被压缩后再发送\n"


@pytest.mark.claim("`AppRunner` 和 `TCPSite` 都没有这样的参数")
def test_no_switch_compresses_every_response():
    """None of the ways to build and serve an app takes a compression option."""
    for api in (web.Application, web.run_app, web.AppRunner, web.TCPSite):
        names = list(inspect.signature(api).parameters)
        assert names, api
        assert not [n for n in names if re.search("compress|gzip|zlib", n)], names


@pytest.fixture
async def client(aiohttp_client):
    """The middleware app on 127.0.0.1; the client shows bodies as sent."""
    return await aiohttp_client(
        create_app(), auto_decompress=False, skip_auto_headers=["Accept-Encoding"]
    )


async def fetch(client, path: str, headers: dict[str, str]) -> tuple[dict, bytes]:
    async with client.get(path, headers=headers) as resp:
        body = await resp.read()
        assert resp.status == 200, body
        return resp.headers, body


@pytest.mark.claim("依次查找子串 `deflate`、`gzip`，**先找到哪个就用哪个**")
@pytest.mark.claim("与它们在请求头里的先后顺序无关")
@pytest.mark.claim("`gzip;q=0` 本意是“不要 gzip”，aiohttp 仍会用 gzip")
@pytest.mark.claim("压缩后的长度写进 `Content-Length`")
@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("deflate", "deflate"),
        ("gzip, deflate, br", "deflate"),  # deflate is looked for first
        ("deflate, gzip, br, zstd", "deflate"),  # curl 7.88 --compressed
        ("gzip;q=0", "gzip"),  # q-values are not read
    ],
)
async def test_body_is_compressed_as_the_client_accepts(
    client, accept_encoding, coding
):
    _, plain = await fetch(client, "/", {})
    headers, body = await fetch(client, "/", {"Accept-Encoding": accept_encoding})
    assert headers["Content-Encoding"] == coding, headers
    assert headers["Vary"] == "Accept-Encoding", headers
    assert int(headers["Content-Length"]) == len(body) < len(plain) // 10, headers
    assert DECOMPRESS[coding](body) == plain, body[:100]
    assert plain.decode().startswith(LINES), plain[:100]


@pytest.mark.claim("或只有 `br`、`zstd`、`identity`、`*`）时原样发送，不压缩")
@pytest.mark.parametrize(
    "accept_encoding", [None, "br", "zstd", "br, zstd", "identity", "*"]
)
async def test_nothing_is_compressed_without_a_known_coding(client, accept_encoding):
    sent = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    headers, body = await fetch(client, "/", sent)
    assert "Content-Encoding" not in headers, headers
    assert int(headers["Content-Length"]) == len(body), headers
    assert body.decode().count("\n") == 200, body[:100]


async def test_streamed_response_is_left_alone(client):
    headers, body = await fetch(client, "/stream", {"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in headers, headers
    assert headers["Transfer-Encoding"] == "chunked", headers
    assert headers["Content-Type"] == "text/plain", headers
    assert body.decode() == "第 0 块\n第 1 块\n第 2 块\n", body


async def test_websocket_still_works(client):
    async with client.ws_connect("/ws", headers={"Accept-Encoding": "gzip"}) as ws:
        await ws.send_str("你好")
        async with asyncio.timeout(TIMEOUT):
            assert await ws.receive_str() == "你好"


@pytest.mark.claim("不经过 `return resp` 这一步")
@pytest.mark.claim("它们默认的响应体只有一行，例如 `404: Not Found`")
async def test_http_exceptions_are_not_compressed(client):
    async with client.get("/missing", headers={"Accept-Encoding": "gzip"}) as resp:
        assert resp.status == 404
        assert "Content-Encoding" not in resp.headers, resp.headers
        assert await resp.read() == b"404: Not Found"


# --- what aiohttp does with enable_compression(), without the recipe -----------


def app_with(handler, *middlewares) -> web.Application:
    app = web.Application(middlewares=list(middlewares))
    app.router.add_get("/", handler)
    return app


async def raw_client(aiohttp_client, app):
    return await aiohttp_client(
        app, auto_decompress=False, skip_auto_headers=["Accept-Encoding"]
    )


TEXT = "压缩\n" * 500


async def forced_gzip(request: web.Request) -> web.Response:
    resp = web.Response(text=TEXT)
    resp.enable_compression(web.ContentCoding.gzip)
    return resp


@pytest.mark.claim("带参数时 aiohttp 不再看 `Accept-Encoding`")
@pytest.mark.parametrize("accept_encoding", [None, "identity", "br", "deflate"])
async def test_a_forced_coding_ignores_accept_encoding(aiohttp_client, accept_encoding):
    client = await raw_client(aiohttp_client, app_with(forced_gzip))
    sent = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    headers, body = await fetch(client, "/", sent)
    assert headers["Content-Encoding"] == "gzip", headers
    assert gzip.decompress(body).decode() == TEXT


async def boolean_force(request: web.Request) -> web.Response:
    resp = web.Response(text=TEXT)
    resp.enable_compression(True)
    return resp


@pytest.mark.claim("`enable_compression(True)`（表示 deflate）")
@pytest.mark.claim("会触发 `DeprecationWarning`")
async def test_a_boolean_force_is_deprecated_and_means_deflate(aiohttp_client):
    client = await raw_client(aiohttp_client, app_with(boolean_force))
    with pytest.warns(
        DeprecationWarning, match="Using boolean for force is deprecated"
    ):
        headers, body = await fetch(client, "/", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "deflate", headers
    assert zlib.decompress(body).decode() == TEXT


async def plain_text(request: web.Request) -> web.Response:
    resp = web.Response(text=TEXT)
    resp.enable_compression()
    return resp


@pytest.mark.claim("aiohttp 不会替 `enable_compression()` 加这个头")
async def test_aiohttp_adds_no_vary_header(aiohttp_client):
    client = await raw_client(aiohttp_client, app_with(plain_text))
    headers, _ = await fetch(client, "/", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip", headers
    assert "Vary" not in headers, headers


async def compressed_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_type = "text/plain"
    resp.enable_compression()
    await resp.prepare(request)
    for _ in range(3):
        await resp.write(TEXT.encode())
    await resp.write_eof()
    return resp


@pytest.mark.claim("aiohttp 会边发边压缩（分块传输）")
async def test_a_stream_compresses_if_asked_before_prepare(aiohttp_client):
    client = await raw_client(aiohttp_client, app_with(compressed_stream))
    headers, body = await fetch(client, "/", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip", headers
    assert headers["Transfer-Encoding"] == "chunked", headers
    assert gzip.decompress(body).decode() == TEXT * 3


@web.middleware
async def unguarded(request: web.Request, handler) -> web.StreamResponse:
    """The recipe's middleware without its two checks."""
    resp = await handler(request)
    resp.enable_compression()
    return resp


@pytest.mark.claim("这时再调用 `enable_compression()` 不会报错，但也不起任何作用")
async def test_compression_enabled_after_prepare_does_nothing(aiohttp_client, caplog):
    """The page's streaming handler behind a middleware that does not check."""
    client = await raw_client(aiohttp_client, app_with(stream, unguarded))
    headers, body = await fetch(client, "/", {"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in headers, headers
    assert headers["Transfer-Encoding"] == "chunked", headers
    assert body.decode() == "第 0 块\n第 1 块\n第 2 块\n", body
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.claim("这时再调用 `enable_compression()` 不会报错，但也不起任何作用")
async def test_a_websocket_behind_the_unchecked_middleware(aiohttp_client, caplog):
    """The page's WebSocket handler behind a middleware that does not check."""
    app = web.Application(middlewares=[unguarded])
    app.router.add_get("/ws", echo)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws", headers={"Accept-Encoding": "gzip"}) as ws:
        assert "Content-Encoding" not in ws._response.headers, ws._response.headers
        await ws.send_str("你好")
        async with asyncio.timeout(TIMEOUT):
            assert await ws.receive_str() == "你好"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def no_content(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def empty(request: web.Request) -> web.Response:
    return web.Response()


@pytest.mark.claim("日志里记一条 `Unhandled exception`")
@pytest.mark.claim("连接被断开，客户端收不到任何响应")
@pytest.mark.parametrize("handler", [no_content, empty])
async def test_compressing_a_response_without_body_drops_it(
    aiohttp_client, caplog, handler
):
    client = await raw_client(aiohttp_client, app_with(handler, unguarded))
    # One request over a socket of its own: aiohttp's client (3.10) would retry it.
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        assert await reader.read() == b""  # closed without a byte of response
        writer.close()
        await writer.wait_closed()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["Unhandled exception"], errors
    assert isinstance(errors[0].exc_info[1], AssertionError), errors
    caplog.clear()
    # The recipe's middleware leaves such a response uncompressed.
    client = await raw_client(aiohttp_client, app_with(handler, compression_middleware))
    async with client.get("/", headers={"Accept-Encoding": "gzip"}) as resp:
        assert resp.status == (204 if handler is no_content else 200)
        assert "Content-Encoding" not in resp.headers, resp.headers
        assert resp.headers["Vary"] == "Accept-Encoding", resp.headers
        assert await resp.read() == b""


# --- nginx ----------------------------------------------------------------------


@pytest.fixture
async def backend_server(aiohttp_server):
    """The plain app without the middleware, on a free loopback port."""
    return await aiohttp_server(backend.create_app())


@contextlib.contextmanager
def nginx_with(conf: str, backend_port: int, workdir: Path):
    """A real nginx serving ``conf`` (the page's, or a changed copy) in front of
    the backend on ``backend_port``."""
    port = free_port()
    assert conf.count("127.0.0.1:8000") == 1, conf
    assert conf.count("127.0.0.1:8080") == 1, conf
    conf = conf.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    conf = conf.replace("127.0.0.1:8080", f"127.0.0.1:{backend_port}")
    with nginx_running(conf, port=port, workdir=workdir) as server:
        yield server


@pytest.fixture
def nginx(tmp_path, backend_server):
    """A real nginx serving gzip_compression/nginx.conf in front of the backend."""
    with nginx_with(NGINX_CONF.read_text("utf-8"), backend_server.port, tmp_path) as s:
        yield s


async def raw_get(url, headers=None, version=aiohttp.HttpVersion11):
    """GET ``url`` and return the response and its body exactly as sent."""
    async with (
        aiohttp.ClientSession(
            auto_decompress=False,
            skip_auto_headers=["Accept-Encoding"],
            version=version,
        ) as session,
        session.get(url, headers=headers) as resp,
    ):
        return resp, await resp.read()


async def test_backend_serves_items_and_ping(backend_server):
    resp, body = await raw_get(backend_server.make_url("/items"))
    items = json.loads(body)
    assert (resp.status, len(items)) == (200, 100), body[:100]
    assert items[-1] == {"id": 99, "name": "商品 99"}, body[-100:]
    resp, body = await raw_get(backend_server.make_url("/ping"))
    assert (resp.status, body) == (200, b"pong"), body


NGINX_CASES = {
    "gzip": ("/items", {"Accept-Encoding": "gzip"}, aiohttp.HttpVersion11, True),
    "via-proxy": (
        "/items",
        {"Accept-Encoding": "gzip", "Via": "1.1 cdn"},
        aiohttp.HttpVersion11,
        True,
    ),
    "no-accept-encoding": ("/items", {}, aiohttp.HttpVersion11, False),
    "http-1.0": ("/items", {"Accept-Encoding": "gzip"}, aiohttp.HttpVersion10, False),
    "short-body": ("/ping", {"Accept-Encoding": "gzip"}, aiohttp.HttpVersion11, False),
}


@pytest.mark.claim("带 `Accept-Encoding: gzip` 的请求拿到 `Content-Encoding: gzip`")
@pytest.mark.claim("带 `Via` 头的请求也被压缩")
@pytest.mark.claim("以及 `/ping` 这样的短响应原样返回")
@pytest.mark.claim("上例 `/ping` 的 4 字节不压缩")
@pytest.mark.claim("HTTP/1.0 的请求（例如 `curl -0`）拿到的是未压缩的响应")
@pytest.mark.claim("`gzip_http_version`：默认 `1.1`")
@pytest.mark.claim("`any` 表示照样压缩")
@pytest.mark.claim("`gzip_vary on` 给压缩过的响应加上 `Vary: Accept-Encoding`")
@pytest.mark.claim("解压后与 aiohttp 直接返回的响应体完全相同")
@pytest.mark.claim("与 nginx 和 aiohttp 之间用什么版本无关")
async def test_nginx_compresses_for_the_backend(nginx, backend_server):
    """Each case against one nginx: what it compresses and what it passes as is."""
    for case, (path, headers, version, compressed) in NGINX_CASES.items():
        direct, plain = await raw_get(backend_server.make_url(path))
        assert "Content-Encoding" not in direct.headers, (case, direct.headers)
        resp, body = await raw_get(f"{nginx.url}{path}", headers, version)
        assert resp.status == 200, (case, body)
        assert resp.headers["Server"].startswith("nginx/"), (case, resp.headers)
        if compressed:
            assert resp.headers["Content-Encoding"] == "gzip", (case, resp.headers)
            assert resp.headers["Vary"] == "Accept-Encoding", (case, resp.headers)
            assert gzip.decompress(body) == plain, (case, body[:100])
            assert len(body) < len(plain) // 2, (case, resp.headers)
        else:
            assert "Content-Encoding" not in resp.headers, (case, resp.headers)
            assert body == plain, (case, body[:100])


# A backend with the kinds of response the page's list of gzip_* directives names.
HTML = "<p>第 1 段</p>\n" * 200


async def html(request: web.Request) -> web.Response:
    return web.Response(text=HTML, content_type="text/html")


async def short_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_type = "text/plain"
    await resp.prepare(request)
    await resp.write(b"pong")
    return resp


@pytest.fixture
async def probe_backend(aiohttp_server):
    app = web.Application()
    app.router.add_get("/html", html)
    app.router.add_get("/stream", short_stream)
    app.router.add_get("/items", backend.items)
    return await aiohttp_server(app)


async def coding_of(nginx, path: str, headers: dict[str, str]) -> tuple[str, bytes]:
    resp, body = await raw_get(
        f"{nginx.url}{path}", {"Accept-Encoding": "gzip", **headers}
    )
    assert resp.status == 200, body
    coding = resp.headers.get("Content-Encoding", "identity")
    return coding, gzip.decompress(body) if coding == "gzip" else body


@pytest.mark.claim("没有 `Content-Length` 的分块响应总是压缩")
async def test_the_page_conf_also_compresses_html_and_short_streams(
    tmp_path, probe_backend
):
    conf = NGINX_CONF.read_text("utf-8")
    with nginx_with(conf, probe_backend.port, tmp_path) as server:
        assert await coding_of(server, "/html", {}) == ("gzip", HTML.encode())
        assert await coding_of(server, "/stream", {}) == ("gzip", b"pong")


@pytest.mark.claim("`gzip_types`：默认只压缩 `text/html`")
@pytest.mark.claim("`application/json`，不列出来就不会压缩")
@pytest.mark.claim("nginx 以请求里有没有 `Via` 头来判断")
@pytest.mark.claim("默认值 `off` 表示这类请求一律不压缩")
@pytest.mark.claim("请求里没有 `Via` 时（例如浏览器直接访问 nginx），")
async def test_nginx_defaults_for_types_and_proxied(tmp_path, probe_backend):
    conf = NGINX_CONF.read_text("utf-8")
    for directive in ("gzip_types", "gzip_proxied"):
        conf, count = re.subn(rf"^\s*{directive} .*\n", "", conf, flags=re.M)
        assert count == 1, conf
    with nginx_with(conf, probe_backend.port, tmp_path) as server:
        coding, body = await coding_of(server, "/items", {})
        assert coding == "identity" and len(json.loads(body)) == 100, body[:100]
        assert await coding_of(server, "/html", {}) == ("gzip", HTML.encode())
        via = {"Via": "1.1 cdn"}
        assert await coding_of(server, "/html", via) == ("identity", HTML.encode())


@pytest.mark.claim("例如 Debian 上的 `/etc/nginx/conf.d/aiohttp.conf`")
def test_debian_includes_conf_d_inside_http():
    main = Path("/etc/nginx/nginx.conf").read_text("utf-8")
    main = re.sub(r"#.*", "", main)
    http_block = main[main.index("http {") :]
    depth, end = 0, None
    for i, char in enumerate(http_block):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "}" and depth == 0:
            end = i
            break
    assert end is not None, http_block
    assert "include /etc/nginx/conf.d/*.conf;" in http_block[:end], http_block
