"""db_connection: one aiosqlite connection per app, under a typed AppKey."""

import asyncio
import collections.abc
import contextlib
import importlib.metadata
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiosqlite
import pytest
from aiohttp import FormData, web
from packaging.version import Version

import pages
import servers
from db_connection import old_app
from db_connection.app import DB, DB_PATH, DatabaseUnavailable, create_app
from servers import free_port

AIOHTTP = Version(importlib.metadata.version("aiohttp"))
EXIT_TIMEOUT = 20  # seconds a program that cannot start may take to exit
NOT_A_DATABASE = "这不是 SQLite 数据库\n" * 100
# Paths SQLite cannot use: what it says, and at which step it notices.
BAD_PATHS = {
    "directory": ("unable to open database file", "connect"),
    "missing-parent": ("unable to open database file", "connect"),
    "not-a-database": ("file is not a database", "first SQL"),
}

HOSTILE_TEXTS = [
    "buy milk",
    "买牛奶",
    "x'); DROP TABLE notes; --",
    "' OR '1'='1",
    'quote " and backslash \\',
]
HOSTILE_IDS = [
    "1 OR 1=1",
    "0 OR 1=1",
    "1; DROP TABLE notes",
    "1'--",
    "-1 UNION SELECT 1, 2",
]


@pytest.fixture
def db_path(tmp_path):
    """A real SQLite file in the test's own directory."""
    return tmp_path / "notes.db"


@pytest.fixture
async def client(aiohttp_client, db_path):
    """The recipe's app on 127.0.0.1, storing notes in ``db_path``."""
    return await aiohttp_client(create_app(db_path=db_path))


async def add(client, text: str) -> dict:
    resp = await client.post("/notes", data={"text": text})
    body = await resp.text()
    assert resp.status == 201, body
    return await resp.json()


async def rows_in_file(db_path) -> list[tuple[int, str]]:
    """Read the file with a connection of the test's own, not the app's."""
    async with aiosqlite.connect(db_path) as db:
        async with db.execute("SELECT id, text FROM notes ORDER BY id") as cursor:
            return [tuple(row) for row in await cursor.fetchall()]


@pytest.mark.claim("它都只是一个值，不会变成 SQL 的一部分")
@pytest.mark.parametrize("text", HOSTILE_TEXTS)
async def test_note_round_trip_through_the_file(client, db_path, text):
    note = await add(client, text)
    assert note == {"id": 1, "text": text}
    resp = await client.get(f"/notes/{note['id']}")
    body = await resp.text()
    assert resp.status == 200, body
    assert await resp.json() == {"id": 1, "text": text}, body
    assert await rows_in_file(db_path) == [(1, text)]


@pytest.mark.claim("和任何一行的 `id` 都不相等，所以得到 404")
@pytest.mark.parametrize("note_id", HOSTILE_IDS)
async def test_hostile_id_is_only_a_value(client, db_path, note_id):
    await add(client, "secret")
    resp = await client.get(f"/notes/{note_id}")
    body = await resp.text()
    assert resp.status == 404, body
    assert body == "没有这条笔记\n"
    assert await rows_in_file(db_path) == [(1, "secret")]


@pytest.mark.claim("如果把查询写成 f-string 拼接，同一个编号就会查出第一条笔记")
async def test_the_same_id_pasted_into_the_sql_finds_the_first_note(client, db_path):
    await add(client, "buy milk")
    await add(client, "x'); DROP TABLE notes; --")
    resp = await client.get("/notes/1%20OR%201=1")  # the page's request
    assert (resp.status, await resp.text()) == (404, "没有这条笔记\n")
    note_id = "1 OR 1=1"  # what request.match_info["id"] holds for it
    async with aiosqlite.connect(db_path) as db:
        pasted = f"SELECT id, text FROM notes WHERE id = {note_id}"
        async with db.execute(pasted) as cursor:
            assert await cursor.fetchone() == (1, "buy milk")


@pytest.mark.parametrize(
    "data",
    [None, {"text": ""}, {"other": "x"}],
    ids=["no-body", "empty-text", "no-text-field"],
)
async def test_note_without_text_is_rejected(client, db_path, data):
    resp = await client.post("/notes", data=data)
    body = await resp.text()
    assert (resp.status, body) == (400, "需要表单字段 text\n"), body
    assert await rows_in_file(db_path) == []


async def test_uploaded_file_is_not_a_text(client):
    form = FormData()
    form.add_field("text", b"bytes", filename="note.txt")
    resp = await client.post("/notes", data=form)
    assert resp.status == 400, await resp.text()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n\r\ntext\r\n--x--\r\n"),
        ("application/x-www-form-urlencoded; charset=no-such-charset", b"text=a"),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; "
            b'name="text"\r\n\r\n\xff\xfe\r\n--x--\r\n',
        ),
    ],
    ids=["no-boundary", "unknown-charset", "not-utf8"],
)
async def test_malformed_form_is_a_400(client, db_path, content_type, body):
    resp = await client.post(
        "/notes", data=body, headers={"Content-Type": content_type}
    )
    assert resp.status == 400, await resp.text()
    assert await rows_in_file(db_path) == []


async def test_notes_survive_a_restart(aiohttp_client, db_path):
    first = await aiohttp_client(create_app(db_path=db_path))
    await add(first, "kept")
    await first.close()
    second = await aiohttp_client(create_app(db_path=db_path))
    resp = await second.get("/notes/1")
    assert await resp.json() == {"id": 1, "text": "kept"}, await resp.text()


@pytest.mark.claim("测试结束、测试服务器关闭时如此")
async def test_connection_is_closed_at_shutdown(aiohttp_client, db_path):
    app = create_app(db_path=db_path)
    client = await aiohttp_client(app)
    db = app[DB]
    async with db.execute("SELECT 1") as cursor:
        assert await cursor.fetchone() == (1,)
    await client.close()
    with pytest.raises(ValueError, match="no active connection"):
        await db.execute("SELECT 1")


@pytest.mark.claim("应用对象本身就是一个可修改的映射（`MutableMapping`）")
def test_an_application_is_a_mutable_mapping():
    assert isinstance(web.Application(), collections.abc.MutableMapping)


@pytest.mark.claim("给 `Application`设置字符串键会发出 `web.NotAppKeyWarning`")
def test_string_key_emits_not_app_key_warning():
    app = web.Application()
    with pytest.warns(web.NotAppKeyWarning, match="web.AppKey"):
        app["db"] = object()


@pytest.mark.claim("即使名字一样也是两个不同的键")
def test_two_app_keys_with_one_name_are_two_keys():
    ours, theirs = web.AppKey("db", str), web.AppKey("db", str)
    app = web.Application()
    app[ours], app[theirs] = "ours", "theirs"
    assert (app[ours], app[theirs], len(app)) == ("ours", "theirs", 2)


STRING_KEY_PROGRAM = """\
from aiohttp import web

app = web.Application()
app["db"] = object()
"""
NOT_APP_KEY_WARNING = (
    "NotAppKeyWarning: It is recommended to use web.AppKey instances for keys."
)


@pytest.mark.claim("`python xxx.py` 运行时什么也不打印")
@pytest.mark.claim("改用 `python -W default xxx.py` 运行")
@pytest.mark.claim("就能看到 `NotAppKeyWarning: It is recommended to use web.AppKey")
def test_not_app_key_warning_is_hidden_from_a_plain_run(tmp_path):
    """Both runs at the same time: python xxx.py, python -W default xxx.py."""
    (tmp_path / "xxx.py").write_text(STRING_KEY_PROGRAM, "utf-8")
    runs = [
        subprocess.Popen(
            [sys.executable, *options, "xxx.py"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for options in ([], ["-W", "default"])
    ]
    plain, shown = [
        (run.communicate(timeout=EXIT_TIMEOUT), run.returncode) for run in runs
    ]
    assert plain == (("", ""), 0), plain
    (out, err), code = shown
    assert (out, code) == ("", 0), shown
    assert NOT_APP_KEY_WARNING in err, err


@pytest.mark.claim("配置了 `filterwarnings = error` 的 pytest 里，它直接让测试失败")
def test_this_sites_configuration_makes_the_warning_an_error(pytestconfig):
    assert pytestconfig.getini("filterwarnings") == ["error"]
    app = web.Application()
    with pytest.raises(web.NotAppKeyWarning, match=r"web\.AppKey"):
        app["db"] = object()  # no pytest.warns: the configured filter raises it


@pytest.mark.claim("`Application(loop=...)` 本身今天只会发出弃用警告")
async def test_old_app_runs_only_on_the_loop_it_was_given(
    aiohttp_client, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # where a database file would appear
    loop = asyncio.get_running_loop()
    with pytest.warns(DeprecationWarning, match="loop argument is deprecated"):
        app = await old_app.init_app(loop)
    with pytest.warns(web.NotAppKeyWarning):  # app["db"] = ... in on_startup
        client = await aiohttp_client(app)
    resp = await client.get("/")
    assert await resp.text() == "42"
    db = app["db"]
    await client.close()
    with pytest.raises(ValueError, match="no active connection"):
        await db.execute("SELECT 1")
    assert list(tmp_path.iterdir()) == []  # ":memory:": no file


@pytest.mark.claim("应用绑定的却是 `init_app` 收到的那个旧循环，启动时两者对不上")
def test_old_app_fails_on_the_loop_run_app_creates():
    loop = asyncio.new_event_loop()
    try:
        with pytest.warns(DeprecationWarning, match="loop argument is deprecated"):
            app = loop.run_until_complete(old_app.init_app(loop))
    finally:
        loop.close()
    # web.run_app() starts the app on a new loop, as AppRunner does here.
    with pytest.raises(RuntimeError, match="initialized with different loop"):
        asyncio.run(web.AppRunner(app).setup())


@pytest.mark.claim("还接受用 `@contextlib.asynccontextmanager`")
@pytest.mark.claim("在 3.14 之前的版本里这样的函数会在启动时出错")
async def test_cleanup_ctx_and_an_async_context_manager(aiohttp_client, db_path):
    """Opens and closes the connection from aiohttp 3.14.0; earlier, fails to start."""
    seen = []

    @contextlib.asynccontextmanager
    async def opened(app: web.Application) -> AsyncIterator[None]:
        async with aiosqlite.connect(app[DB_PATH]) as db:
            seen.append(db)
            yield

    app = web.Application()
    app[DB_PATH] = db_path
    app.cleanup_ctx.append(opened)
    if AIOHTTP < Version("3.14.0"):
        runner = web.AppRunner(app)
        with pytest.raises(AttributeError, match="__aiter__"):
            await runner.setup()
        assert seen == []
        return
    client = await aiohttp_client(app)
    [db] = seen
    assert await db.execute_fetchall("SELECT 42") == [(42,)]
    await client.close()
    with pytest.raises(ValueError, match="no active connection"):
        await db.execute("SELECT 1")


def make_bad_path(kind: str, folder: Path) -> tuple[Path, str, str]:
    """A database path SQLite cannot use even as root, with its BAD_PATHS entry."""
    folder.mkdir(exist_ok=True)
    path = folder / "notes.db"
    if kind == "directory":
        path.mkdir()
    elif kind == "missing-parent":
        path = folder / "data" / "notes.db"
    else:
        path.write_text(NOT_A_DATABASE, "utf-8")
    return path, *BAD_PATHS[kind]


@pytest.fixture(params=list(BAD_PATHS))
def bad_path(request, tmp_path) -> tuple[Path, str, str]:
    return make_bad_path(request.param, tmp_path)


def left_as_it_was(path: Path) -> bool:
    if path.is_dir():
        return list(path.iterdir()) == []
    if path.exists():
        return path.read_text("utf-8") == NOT_A_DATABASE
    return not path.parent.exists()


@pytest.mark.claim("`connect` 成功，执行第一条 SQL 时")
@pytest.mark.claim("只 `connect` 检查不出问题，必须真的执行一条 SQL")
@pytest.mark.claim(
    "`sqlite3.OperationalError: unable to open database file`，连哪个文件都没说"
)
def test_where_sqlite_notices(bad_path):
    """The page's table: which paths fail at connect, which at the first SQL."""
    path, reason, stage = bad_path
    if stage == "connect":
        with pytest.raises(sqlite3.OperationalError, match=f"^{reason}$"):
            sqlite3.connect(path)
    else:
        with contextlib.closing(sqlite3.connect(path)) as db:
            with pytest.raises(sqlite3.DatabaseError, match=reason):
                db.execute("SELECT count(*) FROM sqlite_master")


@pytest.mark.claim("测试还确认了那个不是数据库的文件原样未动")
async def test_unusable_database_stops_the_startup(bad_path):
    path, reason, _ = bad_path
    runner = web.AppRunner(create_app(db_path=path))
    with pytest.raises(DatabaseUnavailable) as raised:
        await runner.setup()
    assert str(raised.value) == f"无法使用数据库 {path}：{reason}"
    assert left_as_it_was(path)


def run_app_here(app: web.Application, port: int):
    """What web.run_app() runs on its loop, here: it serves until cancelled."""
    return web._run_app(app, host="127.0.0.1", port=port, print=None)


@pytest.mark.claim("`run_app()` 就把这个异常原样抛出来，端口从未打开过")
async def test_run_app_never_listens_when_the_startup_fails(bad_path):
    path, reason, _ = bad_path
    errors = []

    async def start() -> None:
        with pytest.raises(DatabaseUnavailable) as raised:
            await run_app_here(create_app(db_path=path), free_port())
        errors.append(str(raised.value))

    opened = await servers.listeners_opened_while(start(), EXIT_TIMEOUT)
    assert opened == set()  # at any turn of the loop, until run_app raised
    assert errors == [f"无法使用数据库 {path}：{reason}"]


@pytest.mark.claim("全部成功之后才打开监听端口")
@pytest.mark.claim("在服务器开始接受请求**之前**运行")
async def test_run_app_listens_after_the_startup(tmp_path):
    port, before_yield = free_port(), []

    async def look(app: web.Application):
        before_yield.append(servers.own_listeners())
        yield

    app = create_app(db_path=tmp_path / "app.db")
    app.cleanup_ctx.append(look)  # after the database's: the last one to start
    serving = asyncio.create_task(run_app_here(app, port))
    async with asyncio.timeout(EXIT_TIMEOUT):
        while ("127.0.0.1", port) not in servers.own_listeners():
            await asyncio.sleep(0.01)
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    assert before_yield and ("127.0.0.1", port) not in before_yield[0], before_yield


def start_program(folder: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=folder,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def accepted_a_connection(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.fixture
def program_folder(tmp_path) -> Path:
    """A folder holding the page's app.py, as a reader saves it."""
    folder = tmp_path / "reader"
    folder.mkdir()
    shutil.copy(pages.SNIPPETS / "db_connection/app.py", folder)
    return folder


def run_until_exit(folder: Path, path: Path) -> tuple[int, str, str, bool]:
    """Run the reader's app.py on ``path``; watch its port until it exits."""
    port = free_port()
    proc = start_program(folder, {"PORT": str(port), "NOTES_DB": str(path)})
    listened = False
    deadline = time.monotonic() + EXIT_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        listened = listened or accepted_a_connection(port)
        time.sleep(0.02)
    try:
        out, err = proc.communicate(timeout=1)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err, listened


@pytest.mark.claim("消息写到 stderr，退出码是 1")
@pytest.mark.claim("进程立刻退出，只有这一行，也从未监听过端口")
def test_programs_exit_with_one_line_and_never_listen(tmp_path):
    """Each bad path, as a process; the three processes run at the same time."""
    cases = []
    for kind in BAD_PATHS:
        folder = tmp_path / kind
        folder.mkdir()
        shutil.copy(pages.SNIPPETS / "db_connection/app.py", folder)
        cases.append((folder, *make_bad_path(kind, folder / "data-dir")))
    with ThreadPoolExecutor(len(cases)) as pool:
        runs = list(pool.map(lambda case: run_until_exit(case[0], case[1]), cases))
    for (_, path, reason, _), (returncode, out, err, listened) in zip(
        cases, runs, strict=True
    ):
        assert returncode == 1, (path, returncode, out, err)
        assert err == f"无法使用数据库 {path}：{reason}\n", err
        assert out == "", out
        assert not listened, path
        assert left_as_it_was(path), path


def test_page_transcript_of_a_missing_directory(program_folder):
    """bad_db.txt: its commands, run by bash in the reader's folder, print it."""
    shown = (pages.SNIPPETS / "db_connection/bad_db.txt").read_text("utf-8")
    lines = shown.splitlines()
    commands = [line[2:] for line in lines if line.startswith("$ ")]
    printed = [line for line in lines if not line.startswith("$ ")]
    result = subprocess.run(
        ["bash", "-c", "\n".join(commands)],
        cwd=program_folder,
        env={
            **os.environ,
            "PORT": str(free_port()),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=EXIT_TIMEOUT,
    )
    assert result.stdout.splitlines() == printed, result.stdout
    assert sorted(p.name for p in program_folder.iterdir()) == ["app.py"]
