"""pytest_event_loop: a reader's suite shares one TestClient for the whole session.

What a reader sees is collected by one start of Python (``loop_runs``): it runs
``pytest`` once per project variant, each in a forked child of that process, as
test_deprecation_policy does. A child starts from the state of ``python -m
pytest`` in the project folder, with the reader's plugins only (pytest-asyncio
and pytest-aiohttp). The page shows three of these runs (compared line by line
after the volatile parts are masked); the other variants prove what the page
says about a setting left out. What happens between two event loops (a server
whose loop is not running, a TestClient closing its server) is shown in this
process; the reader's own fixture and tests run here once more for coverage.
"""

import asyncio
import contextlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

import servers
from pages import SNIPPETS
from pytest_event_loop import app
from pytest_event_loop.app import create_app

FOLDER = SNIPPETS / "pytest_event_loop"
PROJECT_FILES = ["app.py", "conftest.py", "test_app.py"]
CONFIG = SNIPPETS / "pytest_event_loop/pyproject.toml"
CONFIG_FIXED = SNIPPETS / "pytest_event_loop/pyproject_fixed.toml"
# The runs the page shows, as `python -m pytest -q --tb=line` printed them.
SHOWN = {
    "before": SNIPPETS / "pytest_event_loop/before.txt",
    "tests-only": SNIPPETS / "pytest_event_loop/tests_only.txt",
    "fixed": SNIPPETS / "pytest_event_loop/fixed.txt",
}
READER_ARGS = ["-q", "--tb=line"]
# The plugins of a reader's project; this environment's others are not in it.
READER_PLUGINS = ["-p", "pytest_asyncio.plugin", "-p", "pytest_aiohttp.plugin"]
TEST_LOOP_LINE = 'asyncio_default_test_loop_scope = "session"\n'
MODE_LINE = 'asyncio_mode = "auto"\n'
LOOP_SCOPE_ARG = ', loop_scope="session"'
RUN_TIMEOUT = 120
TIMEOUT_MESSAGE = "RuntimeError: Timeout context manager should be used inside a task"

DRIVER = '''\
"""One Python start, one forked child per run, all running at once: nothing a
run imports or sets reaches another."""

import json
import os
import sys

import aiohttp.test_utils  # noqa: F401  (loaded once, before the children fork)
import pytest


def start(name, folder, args):
    """pytest in a forked child, in folder, its output in a log."""
    log = os.path.join(os.getcwd(), name + ".log")
    pid = os.fork()
    if pid == 0:
        os.chdir(folder)
        sys.path[0] = folder  # as `python -m pytest` started in that folder
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(out, 2)
        status = pytest.main(["-p", "no:cacheprovider", *PLUGINS, *args])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(status))
    return pid, log


runs = json.loads(sys.argv[1])
children = {name: start(name, os.path.abspath(name), args) for name, args in runs}
report = {}
for name, (pid, log) in children.items():
    _, status = os.waitpid(pid, 0)
    with open(log, encoding="utf-8") as output:
        text = output.read()
    report[name] = {"status": os.waitstatus_to_exitcode(status), "output": text}
print(json.dumps(report))
'''


def project(root: Path, name: str, config: str, conftest: str | None = None) -> str:
    """A reader's project folder: the page's files and this pyproject.toml."""
    folder = root / name
    folder.mkdir()
    for file in PROJECT_FILES:
        shutil.copy(FOLDER / file, folder / file)
    (folder / "pyproject.toml").write_text(config, "utf-8")
    if conftest is not None:
        (folder / "conftest.py").write_text(conftest, "utf-8")
    return name


# The page's "其他写法" with aiohttp_client: a session fixture hands out a
# TestServer, and each test makes its own client of it.
SERVER_CONFTEST = """\
import pytest_asyncio
from aiohttp.test_utils import TestServer

from app import create_app


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def server():
    server = TestServer(create_app())
    await server.start_server()
    yield server
    await server.close()
"""
TWO_CLIENTS = """\
async def test_first(aiohttp_client, server):
    client = await aiohttp_client(server)
    assert (await client.get("/")).status == 200


async def test_second(aiohttp_client, server):
    client = await aiohttp_client(server)
    assert (await client.get("/")).status == 200
"""


# Session scope: once, in the one worker that runs the tests using it (their
# xdist_group); other modules' tests run in that worker in between.
@pytest.fixture(scope="session")
def loop_runs(tmp_path_factory) -> dict:
    """{variant: {"status", "output"}} of `python -m pytest` in each project."""
    root = tmp_path_factory.mktemp("pytest_event_loop")
    before, fixed = CONFIG.read_text("utf-8"), CONFIG_FIXED.read_text("utf-8")
    conftest = (FOLDER / "conftest.py").read_text("utf-8")
    assert TEST_LOOP_LINE in fixed and MODE_LINE in fixed, fixed
    assert LOOP_SCOPE_ARG in conftest, conftest
    runs = [
        (project(root, "before", before), READER_ARGS),
        (project(root, "tests-only", before + TEST_LOOP_LINE), READER_ARGS),
        (project(root, "fixed", fixed), READER_ARGS),
        (project(root, "setup-show", fixed), ["-q", "--setup-show"]),
        (
            project(root, "fixtures-only", fixed.replace(TEST_LOOP_LINE, "")),
            READER_ARGS,
        ),
        (project(root, "strict", fixed.replace(MODE_LINE, "")), READER_ARGS),
        (
            project(
                root, "no-loop-scope", before, conftest.replace(LOOP_SCOPE_ARG, "")
            ),
            READER_ARGS,
        ),
    ]
    shared_server = project(root, "shared-server", fixed, SERVER_CONFTEST)
    (root / shared_server / "test_app.py").write_text(TWO_CLIENTS, "utf-8")
    runs.append((shared_server, READER_ARGS))
    (root / "driver.py").write_text(
        DRIVER.replace("*PLUGINS", f"*{READER_PLUGINS!r}"), "utf-8"
    )
    # COLUMNS: pytest cuts its summary lines to the terminal's width.
    env = servers.reader_env() | {
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "COLUMNS": "80",
    }
    result = subprocess.run(
        [sys.executable, "driver.py", json.dumps(runs)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# Where Python and the packages are installed differs by machine: the page shows
# a path from the package's folder on ("…/aiohttp/helpers.py").
INSTALLED = re.compile(r"/[^\s:'\"<>()]*?/(?=(aiohttp|pytest_asyncio|asyncio)/)")
# What differs from run to run or release to release, masked on both sides.
MASKED = [
    (re.compile(r"\.py:\d+"), ".py:<line>"),  # line numbers inside the packages
    (re.compile(r"Task-\d+"), "Task-<n>"),  # asyncio numbers its tasks
    (re.compile(r" in [\d.]+s\b"), " in <seconds>s"),
]


def shortened(output: str) -> str:
    """A run's output as the page shows it: paths from the package folder on."""
    return INSTALLED.sub("…/", output)


def masked(text: str) -> str:
    for pattern, replacement in MASKED:
        text = pattern.sub(replacement, text)
    return text.strip("\n")


def outcome(output: str) -> str:
    """The last line of a pytest run, less its time: "3 passed", ..."""
    last = output.strip().splitlines()[-1].strip("= ")
    return re.sub(r" in [\d.]+s.*$", "", last)


@pytest.mark.xdist_group("pytest_event_loop")
@pytest.mark.claim("前两个测试在自己的循环里运行，`client` 却属于会话的循环")
@pytest.mark.claim("第三个测试在自己的循环里新建应用和客户端，没有问题")
@pytest.mark.claim("三个测试都通过了，报错的是第三个测试结束之后的清理")
@pytest.mark.claim("asyncio 于是报 `got Future … attached to a different loop`")
@pytest.mark.claim("`conftest.py` 和 `test_app.py` 不用改")
@pytest.mark.parametrize(
    ("name", "status", "result"),
    [
        ("before", 1, "2 failed, 1 passed"),
        ("tests-only", 1, "3 passed, 1 error"),
        ("fixed", 0, "3 passed"),
    ],
)
def test_the_page_shows_the_readers_runs(loop_runs, name, status, result):
    run = loop_runs[name]
    assert (run["status"], outcome(run["output"])) == (status, result), run["output"]
    shown = SHOWN[name].read_text("utf-8")
    assert masked(shortened(run["output"])) == masked(shown), run["output"]


@pytest.mark.xdist_group("pytest_event_loop")
@pytest.mark.claim("清理代码在另一个循环里等这个任务")
def test_the_shown_runs_fail_where_the_page_says(loop_runs):
    """The lines the page's explanations name, in the runs it shows."""
    before = loop_runs["before"]["output"]
    assert before.count(f"E   {TIMEOUT_MESSAGE}") == 2, before
    tests_only = loop_runs["tests-only"]["output"]
    assert "ERROR at teardown of test_own_app" in tests_only, tests_only
    found = re.search(
        r"^E   RuntimeError: Task <.*> got Future <Task pending name='Task-\d+' "
        r"coro=<_wait_for_close\(\) .*> attached to a different loop$",
        tests_only,
        re.M,
    )
    assert found, tests_only


@pytest.mark.xdist_group("pytest_event_loop")
@pytest.mark.claim("`client` 在整个会话里只创建一次")
@pytest.mark.claim("`aiohttp_client` 仍然在用到它的那个测试结束时清理")
def test_setup_show_names_each_fixtures_lifetime(loop_runs):
    run = loop_runs["setup-show"]
    lines = [line.strip() for line in run["output"].splitlines()]
    assert run["status"] == 0, run["output"]
    assert lines.count("SETUP    S client") == 1, run["output"]
    assert lines.count("TEARDOWN S client") == 1, run["output"]
    tests = [i for i, line in enumerate(lines) if line.startswith("test_app.py::")]
    assert len(tests) == 3, run["output"]
    assert lines.index("SETUP    S client") < tests[0], run["output"]
    assert lines.index("TEARDOWN S client") > tests[-1], run["output"]
    # aiohttp_client: set up for test_own_app only and torn down right after it
    own = tests[2]
    assert lines[own].startswith("test_app.py::test_own_app"), run["output"]
    assert lines[own - 1].startswith("SETUP    F aiohttp_client "), run["output"]
    assert lines[own + 1] == "TEARDOWN F aiohttp_client", run["output"]


@pytest.mark.xdist_group("pytest_event_loop")
@pytest.mark.claim("前两个测试照样报 `Timeout context manager should be used")
@pytest.mark.claim("报 `RuntimeError: Event loop is closed`")
def test_the_fixture_setting_alone_is_not_enough(loop_runs):
    run = loop_runs["fixtures-only"]
    assert outcome(run["output"]) == "2 failed, 1 passed, 1 error", run["output"]
    assert run["output"].count(f"E   {TIMEOUT_MESSAGE}") == 2, run["output"]
    assert "ERROR at teardown of test_own_app" in run["output"], run["output"]
    assert "E   RuntimeError: Event loop is closed" in run["output"], run["output"]


@pytest.mark.xdist_group("pytest_event_loop")
@pytest.mark.claim("pytest 让它们失败：“async def functions are not natively")
def test_without_auto_mode_the_tests_are_not_run(loop_runs):
    run = loop_runs["strict"]
    assert outcome(run["output"]) == "3 failed", run["output"]
    failed = "Failed: async def functions are not natively supported."
    assert run["output"].count(failed) == 3, run["output"]


@pytest.mark.xdist_group("pytest_event_loop")
@pytest.mark.claim("会话级的 fixture 要用每个测试一个的循环，pytest 直接报错")
@pytest.mark.claim(
    "`ScopeMismatch: You tried to access the function scoped fixture "
    "_function_scoped_runner with a session scoped request object`"
)
def test_a_session_fixture_needs_the_session_loop(loop_runs):
    run = loop_runs["no-loop-scope"]
    assert run["status"] == 1, run["output"]
    assert "ERROR at setup of test_hello" in run["output"], run["output"]
    mismatch = (
        "ScopeMismatch: You tried to access the function scoped fixture "
        "_function_scoped_runner with a session scoped request object."
    )
    assert mismatch in run["output"], run["output"]


# --- two event loops in this process ----------------------------------------


@contextlib.contextmanager
def event_loop():
    """A new event loop, not running until something runs on it; closed after."""
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


async def get_text(url: str, timeout: float) -> str:
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        async with session.get(url) as resp:
            return await resp.text()


@pytest.mark.claim("只有那个循环在运行时才会处理请求")
@pytest.mark.claim("请求会一直等下去")
def test_a_server_answers_only_while_its_loop_runs():
    """A session fixture's server, a test's own loop; then the server's loop."""
    with event_loop() as session_loop, event_loop() as test_loop:
        server = TestServer(create_app())
        session_loop.run_until_complete(server.start_server())
        try:
            url = str(server.make_url("/"))
            started = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                test_loop.run_until_complete(get_text(url, timeout=0.3))
            assert time.monotonic() - started >= 0.3
            # the same request from the server's own loop is answered
            text = session_loop.run_until_complete(get_text(url, timeout=5))
            assert text == "你好"
        finally:
            session_loop.run_until_complete(server.close())


@pytest.mark.xdist_group("pytest_event_loop")
@pytest.mark.claim("测试里用 `aiohttp_client(server)` 连它")
@pytest.mark.claim("第一个测试结束时服务器就关了")
def test_a_shared_test_server_closes_with_the_first_test(loop_runs):
    run = loop_runs["shared-server"]
    assert (run["status"], outcome(run["output"])) == (1, "1 failed, 1 passed"), run
    # the second test's client asks the closed server for its URL
    failed = "FAILED test_app.py::test_second - AssertionError"
    assert failed in run["output"], run["output"]
    assert "/aiohttp/test_utils.py:" in run["output"], run["output"]


@pytest.mark.claim("`TestClient.close()` 会连同服务器一起关闭")
async def test_closing_a_test_client_closes_its_server():
    """What aiohttp_client does with each client when its test ends."""
    server = TestServer(create_app())
    client = TestClient(server)
    await client.start_server()
    resp = await client.get("/")
    assert (resp.status, await resp.text()) == (200, "你好")
    await client.close()
    assert server.closed
    with pytest.raises(AssertionError):  # what the next test's request runs into
        server.make_url("/")


# --- the recipe's code in this process ----------------------------------------


async def test_the_app_answers(aiohttp_client):
    client = await aiohttp_client(create_app())
    resp = await client.get("/")
    assert (resp.status, await resp.text()) == (200, "你好")
    resp = await client.get("/nope")
    assert resp.status == 404, await resp.text()


@pytest.fixture
def readers_modules(monkeypatch):
    """The page's conftest.py and test_app.py, their `from app import` bound."""
    monkeypatch.setitem(sys.modules, "app", app)

    def load(name: str):
        spec = importlib.util.spec_from_file_location(
            f"pytest_event_loop_{name}", FOLDER / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load("conftest"), load("test_app")


async def test_the_readers_tests_pass_on_one_loop(aiohttp_client, readers_modules):
    """Here the fixture and the tests share this test's loop: all three pass."""
    conftest, tests = readers_modules
    shared = contextlib.asynccontextmanager(conftest.client.__wrapped__)
    async with shared() as client:
        await tests.test_hello(client)
        await tests.test_not_found(client)
    assert client.server.closed
    await tests.test_own_app(aiohttp_client)
