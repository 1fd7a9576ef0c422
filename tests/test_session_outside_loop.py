"""session_outside_loop: a ClientSession is created inside running async code."""

import importlib
import sys

import aiohttp
import pytest
from aiohttp import web

from session_outside_loop import fetch
from session_outside_loop.app import SESSION, create_app

MODULE_LEVEL = "session_outside_loop.module_level"


def test_creating_a_session_at_import_time_raises():
    """A sync test: no event loop is running, as when a module is first imported."""
    with pytest.raises(RuntimeError, match=r"^no running event loop$"):
        importlib.import_module(MODULE_LEVEL)
    assert MODULE_LEVEL not in sys.modules


@pytest.mark.parametrize(
    "make", [aiohttp.ClientSession, aiohttp.TCPConnector, aiohttp.CookieJar]
)
def test_session_and_connector_need_a_running_loop(make):
    with pytest.raises(RuntimeError, match=r"^no running event loop$"):
        make()


@pytest.fixture
async def upstream(aiohttp_server):
    """The URL of another service for the app to call, on 127.0.0.1."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="来自上游")

    app = web.Application()
    app.router.add_get("/hello", hello)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


async def test_handler_uses_the_shared_session(aiohttp_client, upstream):
    app = create_app(upstream)
    client = await aiohttp_client(app)
    for _ in range(2):
        resp = await client.get("/")
        body = await resp.text()
        assert (resp.status, body) == (200, "上游回答：来自上游\n"), body
    session = app[SESSION]
    assert not session.closed
    await client.close()
    assert session.closed, "cleanup_ctx did not close the session"


async def test_fetch_script_prints_the_answer(aiohttp_client, upstream, capsys):
    client = await aiohttp_client(create_app(upstream))
    await fetch.main(str(client.make_url("/")))
    out = capsys.readouterr().out
    assert out == "200 上游回答：来自上游\n", out


async def test_app_serves_the_hello_it_calls_by_default(aiohttp_client, upstream):
    """`python app.py` uses its own /hello as the upstream."""
    client = await aiohttp_client(create_app(upstream))
    resp = await client.get("/hello")
    assert (resp.status, await resp.text()) == (200, "你好")
