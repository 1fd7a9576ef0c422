"""deprecation_policy: a project's pytest fails on aiohttp's DeprecationWarning.

What a reader sees from fresh interpreters is collected by one start of Python
(``policy_runs``): it imports client.py the way a web app would, then runs
``pytest`` once per project variant, each in a forked child of that process. A
child starts from the same state as ``python -m pytest`` in the project folder
(nothing of the project imported, Python's default warning filters), with the
plugins the page installs: pytest-aiohttp and pytest-asyncio. Two more starts,
run alongside, import client.py under ``-W default::DeprecationWarning`` and
``-X dev``.
"""

import asyncio
import base64
import contextlib
import importlib.metadata
import importlib.util
import json
import linecache
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from packaging.version import Version

import servers
from deprecation_policy import app, client, client_fixed
from deprecation_policy.app import create_app
from pages import DOCS

SNIPPETS = Path(__file__).resolve().parent.parent / "snippets"
FOLDER = SNIPPETS / "deprecation_policy"
PYPROJECT = SNIPPETS / "deprecation_policy/pyproject.toml"
PROJECT_FILES = ["app.py", "client.py", "test_client.py"]
BASIC_AUTH_WARNING = "BasicAuth is deprecated and will be removed in aiohttp 4.0"
AUTH_PARAM_WARNING = "The 'auth' parameter is deprecated and will be removed in v4"
RUN_TIMEOUT = 120
ERROR_LINE = '    "error",\n'
LOOP_SCOPE_LINE = 'asyncio_default_fixture_loop_scope = "function"\n'
# The plugins of a reader's project (the page installs pytest-aiohttp, which
# brings pytest-asyncio); this environment's other pytest plugins are not in it.
READER_PLUGINS = ["-p", "pytest_asyncio.plugin", "-p", "pytest_aiohttp.plugin"]

# Each project variant: the client it uses and the rules added after "error".
EXEMPTIONS = {
    "fragment": [],
    "all-ignored": ["ignore::DeprecationWarning"],
    "one-of-two": ["ignore:BasicAuth is deprecated:DeprecationWarning"],
    "both-by-message": [
        "ignore:BasicAuth is deprecated:DeprecationWarning",
        "ignore:The 'auth' parameter is deprecated:DeprecationWarning",
    ],
    "by-module": ["ignore::DeprecationWarning:aiohttp"],
    # ... and the other one let through by its message: the by-module rule still
    # does not let the `auth=` warning through
    "by-module-and-message": [
        "ignore::DeprecationWarning:aiohttp",
        "ignore:BasicAuth is deprecated:DeprecationWarning",
    ],
}

USES_CLIENT = '''\
"""Like a reader's web app: client.py is imported, not run as __main__."""

import asyncio

from aiohttp.test_utils import TestServer

import client
from app import create_app


async def main():
    async with TestServer(create_app()) as server:
        print(await client.fetch(str(server.make_url("/")), "alice", "pw"))


asyncio.run(main())
'''

DRIVER = '''\
"""One Python start, one forked child per run: nothing a run imports or sets
(its project's modules, warning filters) reaches the next one."""

import json
import os
import runpy
import sys

import aiohttp.test_utils  # noqa: F401  (loaded once, before the children fork)
import pytest


def in_child(name, folder, run):
    """run() in a forked child, in folder, its output in a log; (status, output)."""
    log = os.path.join(os.getcwd(), name + ".log")
    pid = os.fork()
    if pid == 0:
        os.chdir(folder)
        sys.path[0] = folder  # as `python -m ...` started in that folder
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(out, 2)
        status = run()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(status))
    _, status = os.waitpid(pid, 0)
    with open(log, encoding="utf-8") as output:
        return {"status": os.waitstatus_to_exitcode(status), "output": output.read()}


def import_client():
    runpy.run_path("uses_client.py")
    return 0


report = {"imported": in_child("imported", os.getcwd(), import_client)}
report["projects"] = {
    project: in_child(
        project,
        os.path.abspath(project),
        lambda: pytest.main(["-p", "no:cacheprovider", *PLUGINS]),
    )
    for project in sys.argv[1:]
}
print(json.dumps(report))
'''


def project(root: Path, name: str, fragment: str, client_file: str) -> str:
    """A reader's project: the pyproject.toml fragment, app.py, client.py, the test."""
    folder = root / name
    folder.mkdir()
    (folder / "pyproject.toml").write_text(fragment, "utf-8")
    for file in PROJECT_FILES:
        shutil.copy(FOLDER / file, folder / file)
    shutil.copy(FOLDER / client_file, folder / "client.py")
    return name


# Session scope: once, in the one worker that runs the tests using it (their
# xdist_group); other modules' tests run in that worker in between.
@pytest.fixture(scope="session")
def policy_runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("deprecation_policy")
    fragment = PYPROJECT.read_text("utf-8")
    assert ERROR_LINE in fragment and LOOP_SCOPE_LINE in fragment, fragment
    projects = [project(root, "fixed", fragment, "client_fixed.py")]
    projects.append(
        project(root, "no-error", fragment.replace(ERROR_LINE, ""), "client.py")
    )
    projects.append(
        project(
            root, "no-loop-scope", fragment.replace(LOOP_SCOPE_LINE, ""), "client.py"
        )
    )
    for name, rules in EXEMPTIONS.items():
        entries = "".join(f'    "{rule}",\n' for rule in rules)
        config = fragment.replace(ERROR_LINE, ERROR_LINE + entries)
        projects.append(project(root, name, config, "client.py"))
    for file in ["app.py", "client.py"]:
        shutil.copy(FOLDER / file, root / file)
    (root / "uses_client.py").write_text(USES_CLIENT, "utf-8")
    (root / "driver.py").write_text(
        DRIVER.replace("*PLUGINS", f"*{READER_PLUGINS!r}"), "utf-8"
    )
    env = {**servers.reader_env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    starts = {
        "driver": [sys.executable, "driver.py", *projects],
        "-W default::DeprecationWarning": [
            sys.executable,
            "-W",
            "default::DeprecationWarning",
            "uses_client.py",
        ],
        "-X dev": [sys.executable, "-X", "dev", "uses_client.py"],
    }
    running = {
        name: subprocess.Popen(
            argv,
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, argv in starts.items()
    }
    finished = {}
    for name, proc in running.items():
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        finished[name] = (proc.returncode, out, err)
    status, out, err = finished.pop("driver")
    assert status == 0, err
    report = json.loads(out)
    report["flags"] = finished
    return report


def outcome(output: str) -> str:
    """The last line of a pytest run, less its time: "1 failed", "1 passed" ..."""
    last = output.strip().splitlines()[-1].strip("= ")
    return re.sub(r" in [\d.]+s.*$", "", last)


@pytest.fixture
async def server(aiohttp_server):
    """The recipe's demo server on 127.0.0.1."""
    return await aiohttp_server(create_app())


@pytest.mark.claim("下面例子里的两条弃用警告都记在**调用 aiohttp 的那一行**上")
async def test_old_client_warns_twice_from_the_callers_line(server):
    url = str(server.make_url("/"))
    with pytest.warns(DeprecationWarning) as record:
        text = await client.fetch(url, "alice", "pw")
    assert text == "服务器收到的用户名：alice"
    messages = [str(w.message) for w in record]
    assert len(messages) == 2, messages
    assert messages[0].startswith(BASIC_AUTH_WARNING), messages
    assert messages[1].startswith(AUTH_PARAM_WARNING), messages
    # Blamed on the reader's module, not on aiohttp: that is why Python's default
    # filters hide them when client.py is imported instead of run as a script.
    assert {w.filename for w in record} == {client.__file__}, record
    lines = [linecache.getline(w.filename, w.lineno).strip() for w in record]
    assert lines[0].startswith("auth = aiohttp.BasicAuth("), lines
    assert lines[1].startswith("async with session.get(url, auth=auth)"), lines


@pytest.mark.xdist_group("deprecation_policy")
@pytest.mark.claim("被 `import` 进别的模块后就一声不响")
@pytest.mark.claim(
    "只有当警告被记在 `__main__` 模块（也就是直接运行的那个脚本）的某一行上时才显示"
)
def test_an_imported_client_warns_nowhere(policy_runs):
    imported = policy_runs["imported"]
    assert imported == {"status": 0, "output": "服务器收到的用户名：alice\n"}, imported


@pytest.mark.xdist_group("deprecation_policy")
@pytest.mark.claim("加上 `-W default::DeprecationWarning` 或 `-X dev`")
@pytest.mark.parametrize("flags", ["-W default::DeprecationWarning", "-X dev"])
def test_flags_show_the_warnings_of_an_imported_client(policy_runs, flags):
    status, out, err = policy_runs["flags"][flags]
    assert (status, out) == (0, "服务器收到的用户名：alice\n"), err
    assert f"client.py:11: DeprecationWarning: {BASIC_AUTH_WARNING}" in err, err
    assert f"client.py:12: DeprecationWarning: {AUTH_PARAM_WARNING}" in err, err


async def test_fixed_client_sends_the_same_login_without_warnings(server):
    url = str(server.make_url("/"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        text = await client_fixed.fetch(url, "alice", "pw")
    assert text == "服务器收到的用户名：alice"
    assert record == [], [str(w.message) for w in record]


async def echo_authorization(request: web.Request) -> web.Response:
    return web.Response(text=request.headers["Authorization"])


async def sent_authorization(aiohttp_server, module, login: str) -> str:
    app = web.Application()
    app.router.add_get("/", echo_authorization)
    url = str((await aiohttp_server(app)).make_url("/"))
    with pytest.deprecated_call() if module is client else contextlib.nullcontext():
        return await module.fetch(url, login, "p:w")


@pytest.mark.claim("只含 ASCII 字符时两者结果相同")
async def test_both_clients_send_the_password(aiohttp_server):
    sent = [
        await sent_authorization(aiohttp_server, module, "alice")
        for module in (client, client_fixed)
    ]
    assert sent[0] == sent[1], sent
    scheme, _, encoded = sent[1].partition(" ")
    assert (scheme, base64.b64decode(encoded)) == ("Basic", b"alice:p:w"), sent


@pytest.mark.claim("含有 `ë` 这类字符时，两者生成的头不一样")
@pytest.mark.claim("`BasicAuth` 默认用 latin-1 编码用户名和密码")
@pytest.mark.claim("`encode_basic_auth()` 默认用 UTF-8")
async def test_a_latin1_login_is_sent_differently(aiohttp_server):
    old, new = [
        await sent_authorization(aiohttp_server, module, "zoë")
        for module in (client, client_fixed)
    ]
    latin1 = base64.b64encode("zoë:p:w".encode("latin-1")).decode()
    utf8 = base64.b64encode("zoë:p:w".encode()).decode()
    assert (old, new) == (f"Basic {latin1}", f"Basic {utf8}")


@pytest.mark.claim("含有中文时，`BasicAuth` 抛出 `UnicodeEncodeError`")
async def test_basic_auth_cannot_encode_chinese(aiohttp_server):
    with pytest.raises(UnicodeEncodeError, match="'latin-1' codec"):
        await sent_authorization(aiohttp_server, client, "张三")
    new = await sent_authorization(aiohttp_server, client_fixed, "张三")
    assert new == "Basic " + base64.b64encode("张三:p:w".encode()).decode()


@pytest.mark.claim('`encode_basic_auth(login, password, encoding="latin-1")`')
def test_latin1_can_be_asked_for():
    with pytest.deprecated_call():
        old = aiohttp.BasicAuth("zoë", "pw").encode()
    assert aiohttp.encode_basic_auth("zoë", "pw", encoding="latin-1") == old


async def test_server_reads_the_login_before_the_first_colon(server):
    """A password may hold a colon; a login may not (RFC 7617)."""
    url = str(server.make_url("/"))
    text = await client_fixed.fetch(url, "alice", "p:w")
    assert text == "服务器收到的用户名：alice", text


async def test_server_refuses_base64_followed_by_junk(aiohttp_client):
    """b64decode() would skip the "!" were it not for validate=True."""
    app_client = await aiohttp_client(create_app())
    resp = await app_client.get("/", headers={"Authorization": "Basic YWxpY2U6cHc=!"})
    assert resp.status == 401, await resp.text()


@pytest.mark.claim("所以用户名 `zoë` 在旧写法下得到 401，新写法下正常")
async def test_encodings_differ_for_non_ascii_logins(server):
    """BasicAuth encodes latin-1 by default, encode_basic_auth() UTF-8."""
    url = str(server.make_url("/"))
    assert await client_fixed.fetch(url, "zoë", "pw") == "服务器收到的用户名：zoë"
    with pytest.deprecated_call(), pytest.raises(aiohttp.ClientResponseError) as caught:
        await client.fetch(url, "zoë", "pw")
    assert caught.value.status == 401


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer abc", "Basic !!!", "Basic OnB3", "Basic /w==", "Basic é"],
    ids=["missing", "not-basic", "not-base64", "empty-login", "not-utf8", "not-ascii"],
)
async def test_server_asks_for_basic_credentials(aiohttp_client, authorization):
    app_client = await aiohttp_client(create_app())
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = await app_client.get("/", headers=headers)
    body = await resp.text()
    assert resp.status == 401, body
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="demo"', body


@pytest.mark.claim("到 aiohttp 3.14 仍然只是警告，参数照样能用")
async def test_the_loop_argument_still_only_warns(aiohttp_client):
    assert aiohttp.__version__.startswith("3.14."), aiohttp.__version__
    with pytest.warns(DeprecationWarning, match="^loop argument is deprecated$"):
        app = web.Application(loop=asyncio.get_running_loop())
    app.router.add_get("/", echo_authorization)
    app_client = await aiohttp_client(app)
    resp = await app_client.get("/", headers={"Authorization": "Basic eA=="})
    assert (resp.status, await resp.text()) == (200, "Basic eA==")


@pytest.mark.claim("pytest-aiohttp 依赖 pytest-asyncio")
def test_pytest_aiohttp_brings_pytest_asyncio():
    requires = importlib.metadata.requires("pytest-aiohttp") or []
    assert any(re.match(r"pytest-asyncio\b", r) for r in requires), requires


@pytest.mark.xdist_group("deprecation_policy")
@pytest.mark.claim("任何警告都会变成异常，让对应的测试失败")
@pytest.mark.claim("报告里能看到 `E       DeprecationWarning: BasicAuth is deprecated")
def test_fragment_fails_the_suite_on_the_old_client(policy_runs):
    run = policy_runs["projects"]["fragment"]
    assert run["status"] == 1, run["output"]
    assert f"E       DeprecationWarning: {BASIC_AUTH_WARNING}" in run["output"]
    assert outcome(run["output"]) == "1 failed", run["output"]


@pytest.mark.xdist_group("deprecation_policy")
@pytest.mark.claim("再运行 `python -m pytest`，测试通过，也没有任何警告")
def test_fragment_passes_once_the_client_is_fixed(policy_runs):
    run = policy_runs["projects"]["fixed"]
    assert run["status"] == 0, run["output"]
    assert outcome(run["output"]) == "1 passed", run["output"]
    assert "warning" not in run["output"].lower(), run["output"]


@pytest.mark.xdist_group("deprecation_policy")
@pytest.mark.claim("只在末尾的 “warnings summary” 里列出两条警告")
def test_without_the_error_line_the_warnings_only_reach_the_summary(policy_runs):
    run = policy_runs["projects"]["no-error"]
    assert run["status"] == 0, run["output"]
    assert outcome(run["output"]) == "1 passed, 2 warnings", run["output"]
    assert "warnings summary" in run["output"], run["output"]


@pytest.mark.xdist_group("deprecation_policy")
@pytest.mark.claim("pytest-asyncio 启动时会发出一条 `PytestDeprecationWarning`")
@pytest.mark.claim("就让 pytest 以 `INTERNALERROR` 退出")
@pytest.mark.claim("更早的 pytest 不会因此中止，测试照常运行")
def test_error_line_needs_the_loop_scope_setting(policy_runs):
    """pytest-asyncio warns at start-up without it; "error" makes that fatal from
    pytest 9.2 on, which applies the configured filters in pytest_configure.

    `nox -s tests` runs pytest < 9.2 (pyproject.toml says why), `nox -s matrix`
    the newest pytest: a full `nox` runs both branches."""
    run = policy_runs["projects"]["no-loop-scope"]
    warned = (
        'PytestDeprecationWarning: The configuration option "asyncio_default_fixture'
        '_loop_scope" is unset.'
    )
    if Version(pytest.__version__) >= Version("9.2"):
        assert run["status"] == 3, run["output"]  # pytest's exit code for INTERNALERROR
        assert f"INTERNALERROR> pytest.{warned}" in run["output"].splitlines()
        assert "collected" not in run["output"], run["output"]
    else:  # the warning does not stop pytest: the test runs (and fails on BasicAuth)
        assert run["status"] == 1, run["output"]
        assert outcome(run["output"]) == "1 failed", run["output"]


@pytest.mark.xdist_group("deprecation_policy")
@pytest.mark.claim("写在后面的规则优先")
@pytest.mark.claim("本例有两条警告，两条都要写上，测试才会通过")
@pytest.mark.claim("它放不过这两条警告")
@pytest.mark.parametrize(
    ("name", "expected", "raised"),
    [
        ("fragment", "1 failed", BASIC_AUTH_WARNING),
        ("all-ignored", "1 passed", None),
        ("one-of-two", "1 failed", AUTH_PARAM_WARNING),
        ("both-by-message", "1 passed", None),
        ("by-module", "1 failed", BASIC_AUTH_WARNING),
        ("by-module-and-message", "1 failed", AUTH_PARAM_WARNING),
    ],
)
def test_exemptions_after_the_error_line(policy_runs, name, expected, raised):
    """The fragment with rules added after "error", as the page shows them."""
    run = policy_runs["projects"][name]
    assert outcome(run["output"]) == expected, run["output"]
    if raised is not None:
        found = re.search(
            rf"^E +DeprecationWarning: {re.escape(raised)}", run["output"], re.M
        )
        assert found, run["output"]


def test_the_page_shows_the_exemptions_tested_here():
    page = (DOCS / "deprecation_policy.md").read_text("utf-8")
    for rule in [*EXEMPTIONS["one-of-two"], *EXEMPTIONS["by-module"]]:
        assert f'`"{rule}"`' in page, rule


@pytest.fixture
def readers_test(monkeypatch):
    """The page's test_client.py, its `from client import fetch` bound to a module."""

    def load(client_module):
        monkeypatch.setitem(sys.modules, "app", app)
        monkeypatch.setitem(sys.modules, "client", client_module)
        spec = importlib.util.spec_from_file_location(
            "readers_test_client", FOLDER / "test_client.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.test_fetch_sends_the_login

    return load


async def test_the_readers_test_in_this_process(aiohttp_server, readers_test):
    """This suite runs with filterwarnings = error too: the same two outcomes."""
    with pytest.raises(DeprecationWarning, match=BASIC_AUTH_WARNING):
        await readers_test(client)(aiohttp_server)
    await readers_test(client_fixed)(aiohttp_server)
