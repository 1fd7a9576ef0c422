"""app_keys: string keys warn (NotAppKeyWarning), typed keys do not."""

import asyncio
import contextlib
import importlib.util
import linecache
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from aiohttp import web
from packaging.version import Version

import servers
from app_keys import after, before, show_warnings

FOLDER = Path(__file__).resolve().parent.parent / "snippets" / "app_keys"
SHOWN = (FOLDER / "show_warnings.txt").read_text("utf-8")
MODULES = [before, after]


def name(module) -> str:
    return module.__name__.rpartition(".")[2]


@pytest.mark.claim("但 aiohttp 会对字符串键发出 `web.NotAppKeyWarning`")
def test_string_app_keys_warn():
    with pytest.warns(web.NotAppKeyWarning, match="web.AppKey instances") as caught:
        before.create_app()
    assert [Path(w.filename).name for w in caught] == ["before.py"], caught


def test_typed_keys_do_not_warn():
    """filterwarnings = error: any warning here would fail the test."""
    app = after.create_app()
    assert app[after.GREETING] == "你好"


@pytest.mark.claim("它就变成异常，测试直接失败")
def test_pytest_error_filter_turns_the_warning_into_an_error():
    with pytest.raises(web.NotAppKeyWarning):
        before.create_app()


CREATE_APP = "import before; before.create_app()"
PYTEST_PROJECT = "import before\n\n\ndef test_create_app():\n    before.create_app()\n"
PYTEST = ["-m", "pytest", "-p", "no:cacheprovider"]
# pytest-aiohttp and the pytest-asyncio it needs, loaded as pip installs them
# (their entry points), and nothing else this environment holds; with the loop
# scope set, as its page says, or newer pytest-asyncio releases warn about it.
PLUGIN = ["-p", "pytest_asyncio.plugin", "-p", "pytest_aiohttp.plugin"]
PLUGIN += ["-o", "asyncio_default_fixture_loop_scope=function"]
# pytest 9.2 imports plugins inside catch_warnings(): the rule aiohttp.web adds
# on import is gone afterwards, as when a test module imports it first.
PYTEST_9_2 = Version(pytest.__version__) >= Version("9.2")
# The page's pytest settings, in the reader's pyproject.toml.
SETTING = (
    '[tool.pytest.ini_options]\nfilterwarnings = ["{}::aiohttp.web.NotAppKeyWarning"]\n'
)
VISIBILITY = {  # how Python is started: (argv after python, environment, shown)
    "plain": (["-c", CREATE_APP], {}, False),
    "W-default": (["-W", "default", "-c", CREATE_APP], {}, True),
    "X-dev": (["-X", "dev", "-c", CREATE_APP], {}, True),
    "PYTHONWARNINGS": (["-c", CREATE_APP], {"PYTHONWARNINGS": "default"}, True),
    "pytest": (PYTEST, {}, True),
    "pytest-aiohttp": ([*PYTEST, *PLUGIN], {}, PYTEST_9_2),
    "pytest-aiohttp-default": ([*PYTEST, *PLUGIN], {}, True),
    "pytest-aiohttp-error": ([*PYTEST, *PLUGIN], {}, True),
}


@pytest.mark.claim("直接 `python app.py` 运行，什么也看不到")
@pytest.mark.claim("`python -W default app.py`、`python -X dev app.py`")
@pytest.mark.claim("环境变量 `PYTHONWARNINGS=default`")
@pytest.mark.claim("pytest 显示不显示它，要看 `aiohttp.web` 第一次是在什么时候导入的")
@pytest.mark.claim("还要看 pytest 的版本")
@pytest.mark.claim("`aiohttp.web` 在测试模块里才第一次导入时，那条“忽略”规则随之消失")
@pytest.mark.claim("警告会列进测试结束时的 “warnings summary”")
@pytest.mark.claim("pytest 9.2 之前，这条规则就此一直有效，\n  测试里看不到警告")
@pytest.mark.claim("pytest 9.2 起，加载插件也在 `catch_warnings()` 里进行")
@pytest.mark.claim("规则同样消失，警告照样显示")
@pytest.mark.claim('`filterwarnings = ["default::aiohttp.web.NotAppKeyWarning"]`')
@pytest.mark.claim("写成 `error::aiohttp.web.NotAppKeyWarning`，它就让测试失败")
def test_who_shows_the_warning(tmp_path):
    """Eight fresh interpreters at once, each in a folder of its own; pytest with
    the plugins listed and, for the last two, the page's setting in pyproject.toml."""
    env = {**servers.reader_env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    started = {}
    for how, (argv, extra, _) in VISIBILITY.items():
        folder = tmp_path / how
        folder.mkdir()
        shutil.copy(FOLDER / "before.py", folder)
        (folder / "test_before.py").write_text(PYTEST_PROJECT, "utf-8")
        if how in ("pytest-aiohttp-default", "pytest-aiohttp-error"):
            action = how.rsplit("-", 1)[1]
            (folder / "pyproject.toml").write_text(SETTING.format(action), "utf-8")
        started[how] = subprocess.Popen(
            [sys.executable, *argv],
            cwd=folder,
            env={**env, **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    # Every output first: an assertion must not leave a pipe open.
    outputs = {how: proc.communicate(timeout=30)[0] for how, proc in started.items()}
    for how, proc in started.items():
        output = outputs[how]
        shown = VISIBILITY[how][2]
        assert ("NotAppKeyWarning" in output) is shown, (how, output)
        if how.endswith("-error"):
            assert proc.returncode == 1, (how, output)
            assert "1 failed" in output, (how, output)
            continue
        assert proc.returncode == 0, (how, output)
        if how.startswith("pytest"):
            assert ("warnings summary" in output) is shown, (how, output)
            summary = "1 passed, 1 warning" if shown else "1 passed in"
            assert summary in output, (how, output)


@pytest.mark.claim("pytest 启动、加载这个插件就导入了 `aiohttp.web`")
def test_pytest_aiohttp_imports_aiohttp_web_when_loaded():
    """Why the pytest-aiohttp case hides it: the plugin's module imports aiohttp.web."""
    code = "import sys, pytest_aiohttp.plugin; print('aiohttp.web' in sys.modules)"
    argv = [sys.executable, "-c", code]
    env = servers.reader_env()
    output = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    assert output.stdout == "True\n", output


@pytest.mark.claim("两个版本的行为完全相同")
@pytest.mark.parametrize("module", MODULES, ids=name)
async def test_both_versions_answer_the_same(aiohttp_client, module):
    old = module is before
    with pytest.warns(web.NotAppKeyWarning) if old else contextlib.nullcontext():
        client = await aiohttp_client(module.create_app())
        texts = []
        for user in ["小明", "小明", None]:
            headers = {"X-User": user} if user else {}
            resp = await client.get("/", headers=headers)
            texts.append(await resp.text())
            assert resp.status == 200, texts
    assert texts == [
        "你好，小明！第 1 次来访\n",
        "你好，小明！第 2 次来访\n",
        "你好，访客！第 1 次来访\n",
    ], texts


async def test_show_warnings_finds_nothing_in_the_new_version(capsys):
    await show_warnings.main(after.create_app)
    out = capsys.readouterr().out
    assert out == "没有 NotAppKeyWarning\n", out


def located(lines: list[str], path: str | Path) -> list[str]:
    """Each "before.py:N: code" line less N, once line N of ``path`` is that code."""
    found = []
    for line in lines:
        if not line.startswith(" "):
            where, _, code = line.partition(": ")
            name, _, lineno = where.partition(":")
            assert linecache.getline(str(path), int(lineno)).strip() == code, line
            line = f"{name}: {code}"
        found.append(line)
    return found


async def test_show_warnings_lists_each_string_key(capsys):
    await show_warnings.main(before.create_app)
    out = capsys.readouterr().out
    shown = SHOWN.split("== before.py ==\n")[1].split("== after.py ==")[0]
    shown = located(shown.splitlines(), FOLDER / "before.py")
    app_entries, request_entry = shown[:4], shown[4:]
    assert len(request_entry) == 2, shown
    # The line numbers are those of the module that ran (under mutation testing,
    # a mutated copy); the page's are checked against the snippet above.
    printed = located(out.splitlines(), before.__file__)
    # request["user"] warns once per key name and process: an earlier request
    # in this test process may have used it up. A fresh `python` prints it all.
    assert printed in (app_entries + request_entry, app_entries), out


def warns_of_another_kind() -> web.Application:
    warnings.warn("a warning of another kind", UserWarning, stacklevel=1)
    return before.create_app()


async def test_show_warnings_lists_only_app_key_warnings(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        await show_warnings.main(warns_of_another_kind)
    out = capsys.readouterr().out
    assert "NotAppKeyWarning" in out, out
    assert "UserWarning" not in out, out


@pytest.mark.claim("拼出的问候语无法编码，请求会得到 500")
@pytest.mark.parametrize("module", MODULES, ids=name)
async def test_a_user_name_that_is_not_utf8_is_a_500(aiohttp_client, module):
    """What the page's note says; aiohttp's client only sends UTF-8, so raw bytes."""
    old = module is before
    with pytest.warns(web.NotAppKeyWarning) if old else contextlib.nullcontext():
        client = await aiohttp_client(module.create_app())
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-User: \xff\r\n\r\n")
        async with asyncio.timeout(5):
            status_line = await reader.readline()
        writer.close()
        await writer.wait_closed()
    assert status_line.startswith(b"HTTP/1.1 500 "), status_line


@pytest.mark.claim("每次用字符串键赋值都警告")
def test_every_string_key_assignment_on_the_app_warns():
    app = web.Application()
    with pytest.warns(web.NotAppKeyWarning) as caught:
        app["db"] = 1
        app["db"] = 2
    assert len(caught) == 2, [str(w.message) for w in caught]
    assert all("web.AppKey" in str(w.message) for w in caught), caught


@pytest.mark.claim("用字符串键赋值时提示改用它，每个键名在一个进程里只警告一次")
@pytest.mark.claim("请求上的字符串键在一个进程里只警告一次")
@pytest.mark.claim("提示改用它，同样每个键名在一个进程里只警告一次")
async def test_request_and_response_keys_warn_once_per_name(aiohttp_client):
    key = f"unique-{os.getpid()}-{id(object())}"

    async def handler(request: web.Request) -> web.Response:
        response = web.Response(text="ok")
        request[key] = 1
        response[key] = 1
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            resp = await client.get("/")
            assert resp.status == 200, await resp.text()
    messages = [str(w.message).splitlines()[0] for w in caught]
    assert messages == [
        "It is recommended to use web.RequestKey instances for keys.",
        "It is recommended to use web.ResponseKey instances for keys.",
    ], messages
    assert {w.category for w in caught} == {web.NotAppKeyWarning}


@pytest.mark.claim("`NotAppKeyWarning` 是 `UserWarning` 的子类")
def test_not_app_key_warning_is_a_user_warning():
    assert issubclass(web.NotAppKeyWarning, UserWarning)


@pytest.mark.claim("后写的覆盖先写的")
@pytest.mark.claim("两个同名的 `AppKey` 也是不同的键")
def test_string_keys_collide_app_keys_do_not():
    first, second = web.AppKey("db", str), web.AppKey("db", str)
    assert repr(first) == repr(second)
    app = web.Application()
    app[first], app[second] = "ours", "the library's"
    with pytest.warns(web.NotAppKeyWarning):
        app["db"] = "ours"
        app["db"] = "the library's"
    assert (app[first], app[second], app["db"]) == (
        "ours",
        "the library's",
        "the library's",
    )


@pytest.mark.claim("被导入时显示为 `<AppKey(after.greeting, type=str)>`")
@pytest.mark.claim("类型可以是泛型")
def test_a_key_shows_the_module_that_defines_it():
    """after.py loaded as the module `after`, as show_warnings.py imports it."""
    spec = importlib.util.spec_from_file_location("after", FOLDER / "after.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert repr(module.GREETING) == "<AppKey(after.greeting, type=str)>"
    # Python 3.10 shows a generic type without its argument: Counter, not Counter[str].
    visits = repr(module.VISITS)
    assert visits.startswith("<AppKey(after.visits, type=collections.Counter"), visits


@pytest.mark.claim("新建的键和原来那个不相等，会得到 `KeyError`")
def test_a_key_made_anew_is_another_key():
    app = after.create_app()
    assert app[after.GREETING] == "你好"
    with pytest.raises(KeyError):
        app[web.AppKey("greeting", str)]


@pytest.mark.claim("把 `RequestKey` 用在应用上，aiohttp 照样发出 `NotAppKeyWarning`")
def test_a_request_key_on_the_app_warns():
    app = web.Application()
    with pytest.warns(web.NotAppKeyWarning, match="web.AppKey"):
        app[after.USER] = "小明"


@pytest.mark.claim("用 `request.config_dict[KEY]`，同样接受 `AppKey`")
async def test_a_subapp_reads_the_main_apps_key(aiohttp_client):
    async def greeting(request: web.Request) -> web.Response:
        return web.Response(text=request.config_dict[after.GREETING])

    admin = web.Application()
    admin.router.add_get("/", greeting)
    app = after.create_app()
    app.add_subapp("/admin", admin)
    client = await aiohttp_client(app)
    resp = await client.get("/admin/")
    assert (resp.status, await resp.text()) == (200, "你好")
