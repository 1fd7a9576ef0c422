"""session_outside_loop: a ClientSession is created inside running async code."""

import importlib
import os
import subprocess
import sys
import traceback
import warnings

import aiohttp
import pytest
from aiohttp import web

import pages
from servers import free_port
from session_outside_loop import fetch
from session_outside_loop.app import SESSION, create_app

MODULE_LEVEL = "session_outside_loop.module_level"


@pytest.mark.claim("都会在这一行停下")
@pytest.mark.claim("如今这些写法在导入时就失败")
def test_creating_a_session_at_import_time_raises():
    """A sync test: no event loop is running, as when a module is first imported."""
    with pytest.raises(RuntimeError, match=r"^no running event loop$") as raised:
        importlib.import_module(MODULE_LEVEL)
    assert MODULE_LEVEL not in sys.modules
    assert stopped_at(raised.value.__traceback__) == THE_LINE


# The line of module_level.py that creates the session.
THE_LINE = "session = aiohttp.ClientSession()  # 导入模块时还没有正在运行的事件循环"


def stopped_at(tb) -> str:
    """The last line of module_level.py that the traceback ``tb`` passes."""
    lines = [
        frame.line for frame in traceback.extract_tb(tb)
        if frame.filename.endswith("module_level.py")
    ]  # fmt: skip
    return lines[-1]


@pytest.mark.claim("不管是 `python module_level.py` 还是 `import module_level`")
@pytest.mark.claim("于是程序以 `RuntimeError: no running event loop` 退出")
def test_python_module_level_py_stops_at_that_line():
    result = subprocess.run(
        [sys.executable, "module_level.py"],
        cwd=pages.SNIPPETS / "session_outside_loop",
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == "RuntimeError: no running event loop", result.stderr
    frames = [n for n, line in enumerate(lines) if 'module_level.py", line' in line]
    assert lines[frames[-1] + 1].strip() == THE_LINE, result.stderr


@pytest.mark.claim("`TCPConnector` 在没有正在运行的循环时同样抛出 `RuntimeError`")
@pytest.mark.claim("但创建时也要有正在运行的循环")
@pytest.mark.claim("程序以 `RuntimeError: no running event loop` 退出")
@pytest.mark.parametrize(
    "make", [aiohttp.ClientSession, aiohttp.TCPConnector, aiohttp.CookieJar]
)
def test_session_and_connector_need_a_running_loop(make):
    with pytest.raises(RuntimeError, match=r"^no running event loop$"):
        make()


@pytest.mark.claim("`CookieJar` 不持有连接，没有要关闭的东西")
def test_a_cookie_jar_has_nothing_to_close():
    closers = {"close", "aclose", "__aenter__", "__aexit__", "__del__"}
    assert not closers & set(dir(aiohttp.CookieJar)), dir(aiohttp.CookieJar)


@pytest.mark.claim("类属性也是全局变量")
def test_a_class_attribute_is_created_when_the_class_is():
    with pytest.raises(RuntimeError, match=r"^no running event loop$"):

        class A:
            session = aiohttp.ClientSession()


@pytest.mark.claim("`web.Application` 本身可以在循环外创建")
def test_an_application_can_be_created_outside_a_loop():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app = create_app("http://127.0.0.1:8080")
    assert SESSION not in app  # its session comes once the loop runs


# A session kept from one asyncio.run() for the next, as a module-level global.
KEPT_FOR_LATER = """
import asyncio
import sys

import aiohttp

session = None


async def create():
    global session
    session = aiohttp.ClientSession()


async def use(url):
    async with session.get(url) as resp:
        return resp.status


asyncio.run(create())
try:
    asyncio.run(use(sys.argv[1]))
except RuntimeError as exc:
    print(f"RuntimeError: {exc}")
"""


@pytest.mark.claim("会得到 `RuntimeError: Event loop is closed`")
@pytest.mark.claim("退出时还会打印 `Unclosed client session`")
def test_a_session_kept_for_the_next_asyncio_run_fails(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", KEPT_FOR_LATER, f"http://127.0.0.1:{free_port()}/"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "RuntimeError: Event loop is closed\n", result.stdout
    assert result.stderr.startswith("Unclosed client session\n"), result.stderr


@pytest.fixture
async def upstream(aiohttp_server):
    """The URL of another service for the app to call, on 127.0.0.1."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="来自上游")

    app = web.Application()
    app.router.add_get("/hello", hello)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


@pytest.mark.claim("事件循环此时已经在跑")
@pytest.mark.claim("应用关闭时会话随之关闭")
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
