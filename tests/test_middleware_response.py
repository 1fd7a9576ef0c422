"""middleware_response: one request, one response object."""

import asyncio
import logging
from pathlib import Path

import pytest
from aiohttp import web

from middleware_response import cached_response
from middleware_response.app import BUILDS, CACHE, cache_middleware, create_app
from servers import listeners_opened_while

TIMEOUT = 5
SNIPPETS = Path(__file__).resolve().parent.parent / "snippets"
EXPECTED = (SNIPPETS / "middleware_response/cached_response.txt").read_text("utf-8")


async def raw_get(port: int, path: str = "/") -> tuple[asyncio.StreamReader, object]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return reader, writer


async def test_cached_response_script_prints_what_the_page_shows(capsys, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp")
    await cached_response.main(timeout=0.5)
    out = capsys.readouterr().out
    assert out == EXPECTED, out
    server_errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert server_errors == [], server_errors
    access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(access) == 2, access
    assert all('"GET / HTTP/1.1" 200 ' in line for line in access), access


async def test_the_script_listens_on_a_free_loopback_port(capsys):
    """Two copies at once, each on a free loopback port of its own."""
    seen = await listeners_opened_while(
        asyncio.gather(*(cached_response.main(timeout=0.5) for _ in range(2))), TIMEOUT
    )
    out = capsys.readouterr().out
    assert sorted(out.splitlines()) == sorted(EXPECTED.splitlines() * 2), out
    assert {host for host, _ in seen} == {"127.0.0.1"}, seen


async def test_the_second_client_receives_not_a_single_byte(aiohttp_client):
    app = web.Application(middlewares=[cached_response.misbehaved_middleware()])
    app.router.add_get("/", cached_response.hello)
    client = await aiohttp_client(app)
    resp = await client.get("/")
    assert await resp.text() == "Hi, I am cached!"
    reader, writer = await raw_get(client.port)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            data = await reader.read(1)
            pytest.fail(f"got {data!r}")
    writer.close()
    await writer.wait_closed()


@pytest.fixture
async def client(aiohttp_client):
    """The cache recipe's app on 127.0.0.1."""
    return await aiohttp_client(create_app())


async def test_cache_builds_once_and_answers_every_request(client):
    seen = []
    for _ in range(3):
        resp = await client.get("/report")
        body = await resp.text()
        assert resp.status == 200, body
        seen.append((resp.headers["X-Cache"], resp.content_type, body))
    assert seen == [
        ("MISS", "text/plain", "报表（第 1 次生成）\n"),
        ("HIT", "text/plain", "报表（第 1 次生成）\n"),
        ("HIT", "text/plain", "报表（第 1 次生成）\n"),
    ], seen
    assert client.app[BUILDS]["/report"] == 1


async def test_an_emptied_cache_builds_the_page_again(client):
    for count in (1, 2):
        client.app[CACHE].clear()
        resp = await client.get("/report")
        body = await resp.text()
        expected = ("MISS", f"报表（第 {count} 次生成）\n")
        assert (resp.headers["X-Cache"], body) == expected, body


async def test_concurrent_clients_all_get_a_response(client):
    await client.get("/report")

    async def fetch() -> str:
        resp = await client.get("/report")
        return await resp.text()

    async with asyncio.timeout(TIMEOUT):
        bodies = await asyncio.gather(*(fetch() for _ in range(20)))
    assert set(bodies) == {"报表（第 1 次生成）\n"}, bodies


async def created(request: web.Request) -> web.Response:
    return web.Response(status=201, text="created")


async def streamed(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    await resp.write(b"streamed")
    return resp


@pytest.mark.parametrize(
    ("handler", "status", "text"),
    [(created, 201, "created"), (streamed, 200, "streamed")],
)
async def test_other_responses_pass_through_uncached(
    aiohttp_client, handler, status, text
):
    app = web.Application(middlewares=[cache_middleware])
    app[CACHE] = {}
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    for _ in range(2):
        resp = await client.get("/")
        assert (resp.status, await resp.text()) == (status, text)
        assert "X-Cache" not in resp.headers, resp.headers


async def undecorated(request: web.Request, handler):
    return await handler(request)


async def test_without_the_decorator_it_is_an_old_style_factory(aiohttp_client):
    """aiohttp 3.x calls it as factory(app, handler): the request gets a 500."""
    app = web.Application(middlewares=[undecorated])
    app.router.add_get("/", cached_response.hello)
    with pytest.warns(DeprecationWarning, match="old-style middleware"):
        client = await aiohttp_client(app)
    resp = await client.get("/")
    assert resp.status == 500, await resp.text()


@web.middleware
async def not_awaiting(request: web.Request, handler):
    handler(request)  # the upstream FAQ's slip: the handler never runs
    return web.Response(text="not awaited")


async def test_calling_the_handler_without_await_never_runs_it(aiohttp_client):
    app = web.Application(middlewares=[not_awaiting])
    app.router.add_get("/", cached_response.hello)
    client = await aiohttp_client(app)
    with pytest.warns(RuntimeWarning, match="coroutine 'hello' was never awaited"):
        resp = await client.get("/")
        assert await resp.text() == "not awaited"
