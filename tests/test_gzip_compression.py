"""gzip_compression: a middleware compresses responses; or nginx compresses instead."""

import asyncio
import gzip
import json
import zlib

import aiohttp
import pytest

import pages
from gzip_compression import backend
from gzip_compression.app import create_app
from servers import free_port
from servers import nginx as nginx_running

TIMEOUT = 5
NGINX_CONF = pages.SNIPPETS / "gzip_compression/nginx.conf"
DECOMPRESS = {"gzip": gzip.decompress, "deflate": zlib.decompress}
LINES = "第 0 行：这段文字会被压缩后再发送\n第 1 行：这段文字会被压缩后再发送\n"


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


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("deflate", "deflate"),
        ("gzip, deflate, br", "deflate"),  # deflate is looked for first
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


@pytest.mark.parametrize("accept_encoding", [None, "br", "identity", "*"])
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


@pytest.fixture
async def backend_server(aiohttp_server):
    """The plain app without the middleware, on a free loopback port."""
    return await aiohttp_server(backend.create_app())


@pytest.fixture
def nginx(tmp_path, backend_server):
    """A real nginx serving gzip_compression/nginx.conf in front of the backend."""
    port = free_port()
    conf = NGINX_CONF.read_text("utf-8")
    assert conf.count("127.0.0.1:8000") == 1, conf
    assert conf.count("127.0.0.1:8080") == 1, conf
    conf = conf.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    conf = conf.replace("127.0.0.1:8080", f"127.0.0.1:{backend_server.port}")
    with nginx_running(conf, port=port, workdir=tmp_path) as server:
        yield server


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


@pytest.mark.parametrize(
    ("path", "headers", "version", "compressed"),
    [
        ("/items", {"Accept-Encoding": "gzip"}, aiohttp.HttpVersion11, True),
        (
            "/items",
            {"Accept-Encoding": "gzip", "Via": "1.1 cdn"},
            aiohttp.HttpVersion11,
            True,
        ),
        ("/items", {}, aiohttp.HttpVersion11, False),
        ("/items", {"Accept-Encoding": "gzip"}, aiohttp.HttpVersion10, False),
        ("/ping", {"Accept-Encoding": "gzip"}, aiohttp.HttpVersion11, False),
    ],
    ids=["gzip", "via-proxy", "no-accept-encoding", "http-1.0", "short-body"],
)
async def test_nginx_compresses_for_the_backend(
    nginx, backend_server, path, headers, version, compressed
):
    direct, plain = await raw_get(backend_server.make_url(path))
    assert "Content-Encoding" not in direct.headers, direct.headers
    resp, body = await raw_get(f"{nginx.url}{path}", headers, version)
    assert resp.status == 200, body
    assert resp.headers["Server"].startswith("nginx/"), resp.headers
    if compressed:
        assert resp.headers["Content-Encoding"] == "gzip", resp.headers
        assert resp.headers["Vary"] == "Accept-Encoding", resp.headers
        assert gzip.decompress(body) == plain, body[:100]
        assert len(body) < len(plain) // 2, resp.headers
    else:
        assert "Content-Encoding" not in resp.headers, resp.headers
        assert body == plain, body[:100]
