"""external_service: the app reaches Elasticsearch at a configured URL.

Tests point it at real loopback servers: the recipe's fake_es.py, a server
without the product header, a port nothing listens on. The reader's own test
file, test_app.py, is run as the reader runs it (pytest in a copy of the folder)
and once more in this process, so that its lines count for coverage.
"""

import asyncio
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from packaging.version import Version

import pages
import servers
from external_service import fake_es
from external_service.app import ES, create_app
from servers import free_port

pytest_plugins = ["pytester"]

FOLDER = pages.SNIPPETS / "external_service"
CONFIG = "external_service/pyproject.toml"
CONFIG_NAME = Path(CONFIG).name
INFO_OUTPUT = "external_service/info.json"
NOT_ES_OUTPUT = "external_service/not_es.txt"
READER_TESTS = 3
# The pytest plugins a reader has after `pip install aiohttp "elasticsearch[async]"
# pytest pytest-aiohttp` (recent elasticsearch releases bring anyio, whose plugin
# comes along). This environment holds more (hypothesis, pytest-cov, xdist ...):
# the reader's runs load only these.
READER_PLUGINS = ["pytest_asyncio.plugin", "pytest_aiohttp.plugin"]
if importlib.util.find_spec("anyio") is not None:
    READER_PLUGINS.append("anyio.pytest_plugin")


def shown(path: str) -> str:
    """What the page shows for a snippet file, without its final newline."""
    return (pages.SNIPPETS / path).read_text("utf-8").rstrip("\n")


@pytest.fixture
async def es_url(aiohttp_server):
    """The URL of the recipe's fake Elasticsearch, served on 127.0.0.1."""
    server = await aiohttp_server(fake_es.create_app())
    return str(server.make_url("/"))


async def test_fake_es_answers_like_elasticsearch(aiohttp_client):
    client = await aiohttp_client(fake_es.create_app())
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 200, body
    assert resp.headers["X-Elastic-Product"] == "Elasticsearch", resp.headers
    assert await resp.json() == fake_es.INFO, body


@pytest.mark.claim("客户端用的就是当前的循环；直接运行和在测试里运行都是如此")
async def test_app_returns_cluster_info(aiohttp_client, es_url):
    client = await aiohttp_client(create_app(es_url))
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 200, body
    assert body == shown(INFO_OUTPUT)


@pytest.mark.claim("客户端用的就是当前的循环；直接运行和在测试里运行都是如此")
async def test_python_app_py_answers_too():
    """`python fake_es.py` and `python app.py ES_URL=…`: two processes."""
    folder = pages.SNIPPETS / "external_service"
    with servers.python_program(folder / "fake_es.py") as es:
        with servers.python_program(folder / "app.py", env={"ES_URL": es.url}) as app:
            async with aiohttp.ClientSession() as session:
                async with session.get(app.url) as resp:
                    body = await resp.text()
                    assert resp.status == 200, body
    assert body == shown(INFO_OUTPUT)


@pytest.mark.claim("对方回答了但不是 Elasticsearch 返回 502")
@pytest.mark.claim("任何缺少它的成功（2xx）响应都会让客户端抛出")
@pytest.mark.claim("`X-Elastic-Product: OpenSearch`的服务器确认了这一点")
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Elastic-Product": "OpenSearch"}],
    ids=["no-header", "other-product"],
)
async def test_a_server_that_is_not_elasticsearch_is_502(
    aiohttp_client, aiohttp_server, headers
):
    async def info(request: web.Request) -> web.Response:
        return web.json_response(fake_es.INFO, headers=headers)

    other = web.Application()
    other.router.add_get("/", info)
    server = await aiohttp_server(other)
    client = await aiohttp_client(create_app(str(server.make_url("/"))))
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 502, body
    assert body == shown(NOT_ES_OUTPUT)


@pytest.mark.claim("连不上返回 503")
async def test_unreachable_elasticsearch_is_503(aiohttp_client):
    client = await aiohttp_client(create_app(f"http://127.0.0.1:{free_port()}"))
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 503, body
    assert body == "连不上 Elasticsearch"


@pytest.mark.claim("应用关闭时 `await es.close()` 关掉它的连接")
@pytest.mark.claim("`AsyncElasticsearch` 通过 aiohttp 发请求")
async def test_cleanup_closes_the_client(aiohttp_client, es_url):
    client = await aiohttp_client(create_app(es_url))
    resp = await client.get("/")
    assert resp.status == 200, await resp.text()
    [node] = client.app[ES].transport.node_pool.all()
    session = node.session
    assert isinstance(session, aiohttp.ClientSession), session
    assert not session.closed
    await client.close()
    assert session.closed


@pytest.mark.claim("这个附加依赖会一并装上 aiohttp")
@pytest.mark.claim("pytest-aiohttp 依赖 pytest-asyncio")
def test_what_the_packages_bring():
    extras = importlib.metadata.requires("elasticsearch") or []
    brought = [r for r in extras if re.search(r"""extra == ["']async["']""", r)]
    assert "aiohttp" in [re.match(r"[\w-]+", r).group() for r in brought], brought
    plugin_needs = importlib.metadata.requires("pytest-aiohttp") or []
    assert any(r.startswith("pytest-asyncio") for r in plugin_needs), plugin_needs


@pytest.mark.claim(
    "`DeprecationWarning: Bare functions are deprecated, use async ones`"
)
def test_a_plain_function_as_handler_is_deprecated():
    def plain(request: web.Request) -> web.Response:
        raise AssertionError("never called")

    app = web.Application()
    with pytest.warns(DeprecationWarning, match=r"^Bare functions are deprecated"):
        app.router.add_get("/", plain)


@pytest.mark.claim("`DeprecationWarning: loop argument is deprecated`")
async def test_the_loop_argument_is_deprecated():
    with pytest.warns(DeprecationWarning, match=r"^loop argument is deprecated$"):
        web.Application(loop=asyncio.get_running_loop())


@pytest.fixture
def reader_copy(tmp_path):
    """The snippet folder copied as a reader copies it: files only, no caches."""
    copy = tmp_path / "external_service"
    shutil.copytree(FOLDER, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


ONLY_NAMED_PLUGINS = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
READER_ARGS = ["-p", "no:cacheprovider"]
READER_ARGS += [arg for name in READER_PLUGINS for arg in ("-p", name)]


@pytest.fixture
def reader_plugins(monkeypatch):
    """In-process pytest runs load the reader's plugins only, as run_pytest does."""
    for name, value in ONLY_NAMED_PLUGINS.items():
        monkeypatch.setenv(name, value)
    return READER_ARGS


def run_pytest(folder):
    """`python -m pytest` in ``folder``, with the reader's plugins only."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", *READER_ARGS],
        cwd=folder,
        env={**os.environ, **ONLY_NAMED_PLUGINS},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )


def test_the_readers_plugins_are_installed_here():
    """run_pytest loads these by name: each is a pytest11 entry point here."""
    entry_points = importlib.metadata.entry_points(group="pytest11")
    assert set(READER_PLUGINS) <= {ep.value for ep in entry_points}


@pytest.mark.claim("在这个文件夹里运行 `python -m pytest`，三个测试都会通过")
@pytest.mark.claim("测试函数直接写成 `async def`，不需要类，也不需要 `loop` fixture")
def test_reader_runs_the_tests_in_a_copy_of_the_folder(reader_copy):
    result = run_pytest(reader_copy)
    assert result.returncode == 0, result.stdout
    assert f"configfile: {CONFIG_NAME}" in result.stdout, result.stdout
    assert f" {READER_TESTS} passed in " in result.stdout, result.stdout


def without(folder, setting: str) -> None:
    """Leave ``setting`` out of the reader's configuration in ``folder``."""
    lines = shown(CONFIG).splitlines()
    kept = [line for line in lines if not line.startswith(f"{setting} =")]
    assert len(kept) == len(lines) - 1, lines
    (folder / CONFIG_NAME).write_text("\n".join(kept) + "\n", "utf-8")


@pytest.mark.claim("少了它，pytest 让每个异步测试失败")
@pytest.mark.claim("async def functions are not natively supported")
def test_without_auto_mode_every_async_test_fails(
    pytester, reader_plugins, reader_copy
):
    """In-process (the reader's own run above is a process)."""
    without(reader_copy, "asyncio_mode")
    result = pytester.runpytest_inprocess(*reader_plugins, str(reader_copy))
    assert result.ret == 1, result.outlines
    message = "async def functions are not natively supported"
    assert message in result.stdout.str() + result.stderr.str(), result.outlines
    result.assert_outcomes(failed=READER_TESTS)  # every test of test_app.py


@pytest.mark.claim(
    "不设置时 pytest-asyncio 启动时会发出一条 `PytestDeprecationWarning`"
)
@pytest.mark.claim("从 pytest 9.2 起，有了下面这一项，这个警告会让 pytest 在启动时就以")
@pytest.mark.claim("`INTERNALERROR` 退出")
@pytest.mark.claim("更早的 pytest 不显示它，测试照常运行")
def test_without_the_loop_scope(reader_copy):
    """The reader's own run, a process: what it shows depends on pytest's version."""
    without(reader_copy, "asyncio_default_fixture_loop_scope")
    result = run_pytest(reader_copy)
    warned = 'PytestDeprecationWarning: The configuration option "asyncio_default'
    if Version(pytest.__version__) >= Version("9.2"):
        assert result.returncode == 3, result.stdout  # INTERNALERROR
        assert f"INTERNALERROR> pytest.{warned}" in result.stdout, result.stdout
        assert "collected" not in result.stdout, result.stdout
    else:
        assert result.returncode == 0, result.stdout
        assert "PytestDeprecationWarning" not in result.stdout, result.stdout
        assert f" {READER_TESTS} passed in " in result.stdout, result.stdout


@pytest.mark.claim("既不提供 `test_client`，也不提供 `loop`")
@pytest.mark.claim("照抄旧代码会得到 `fixture 'test_client' not found`")
def test_old_fixtures_are_not_there(pytester, reader_plugins):
    """The reader's configuration; a test asking for the fixtures of the old FAQ."""
    pytester.makefile(".toml", pyproject=shown(CONFIG))
    pytester.makepyfile(test_old="async def test_get(test_client, loop):\n    pass\n")
    result = pytester.runpytest_inprocess(*reader_plugins)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["E       fixture 'test_client' not found"])
    available = result.stdout.str().split("available fixtures:")[1]
    fixtures = set(re.findall(r"[\w]+", available.split("use 'pytest")[0]))
    assert {"aiohttp_client", "aiohttp_server"} <= fixtures, fixtures
    assert not {"test_client", "loop"} & fixtures, fixtures


def test_reader_tests_pass_in_this_process(pytester, reader_plugins):
    """Same run in-process (pytest picks the folder's own config), for coverage."""
    result = pytester.runpytest_inprocess(*reader_plugins, str(FOLDER))
    result.assert_outcomes(passed=READER_TESTS)
    result.stdout.fnmatch_lines([f"configfile: {CONFIG_NAME}"])
