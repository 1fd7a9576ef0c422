"""app_keys: string keys warn (NotAppKeyWarning), typed keys do not."""

import asyncio
import contextlib
import linecache
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from aiohttp import web

from app_keys import after, before, show_warnings

FOLDER = Path(__file__).resolve().parent.parent / "snippets" / "app_keys"
SHOWN = (FOLDER / "show_warnings.txt").read_text("utf-8")
MODULES = [before, after]


def name(module) -> str:
    return module.__name__.rpartition(".")[2]


def test_string_app_keys_warn():
    with pytest.warns(web.NotAppKeyWarning, match="web.AppKey instances") as caught:
        before.create_app()
    assert [Path(w.filename).name for w in caught] == ["before.py"], caught


def test_typed_keys_do_not_warn():
    """filterwarnings = error: any warning here would fail the test."""
    app = after.create_app()
    assert app[after.GREETING] == "你好"


def test_pytest_error_filter_turns_the_warning_into_an_error():
    with pytest.raises(web.NotAppKeyWarning):
        before.create_app()


@pytest.mark.parametrize(
    ("flags", "env", "shown"),
    [
        ([], {}, False),
        (["-W", "default"], {}, True),
        (["-X", "dev"], {}, True),
        ([], {"PYTHONWARNINGS": "default"}, True),
    ],
    ids=["plain", "W-default", "X-dev", "PYTHONWARNINGS"],
)
def test_plain_python_hides_the_warning(flags, env, shown):
    code = "import before; before.create_app()"
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run(
        [sys.executable, *flags, "-c", code],
        cwd=FOLDER,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert ("NotAppKeyWarning" in result.stderr) is shown, result.stderr


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
