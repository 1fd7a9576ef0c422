"""subapp_db: sub-apps reach the main app's SQLite connection in two ways."""

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from aiohttp import web

from subapp_db.app import DB, DB_PATH, EDITOR, create_app, sqlite_connection

MESSAGES = ["hello", "你好", "Robert'); DROP TABLE messages; --", "' OR '1'='1"]


@pytest.fixture
def db_path(tmp_path):
    """A real SQLite file in the test's own directory."""
    return tmp_path / "messages.db"


@pytest.fixture
def app(db_path):
    """The recipe's main app with both sub-apps, not started yet."""
    return create_app(db_path=db_path)


@pytest.fixture
async def client(aiohttp_client, app):
    """The app served on 127.0.0.1; closing it runs the cleanup."""
    return await aiohttp_client(app)


async def post(client, body: str) -> None:
    resp = await client.post("/editor/messages", data=body.encode())
    text = await resp.text()
    assert resp.status == 201, text
    assert text == "已保存\n"


async def listed(client) -> list[str]:
    resp = await client.get("/public/messages")
    text = await resp.text()
    assert resp.status == 200, text
    return await resp.json()


async def rows_in_file(db_path) -> list[str]:
    """Read the file with a connection of the test's own, not the app's."""
    async with aiosqlite.connect(db_path) as db:
        rows = await db.execute_fetchall("SELECT body FROM messages ORDER BY id")
        return [body for (body,) in rows]


@pytest.mark.claim("它们拿到的是同一个连接、同一个 SQLite 文件")
@pytest.mark.claim("`request.config_dict[DB]` 就落到主应用上")
async def test_both_forms_reach_the_same_database(client, db_path):
    assert await listed(client) == []
    for body in MESSAGES:
        await post(client, body)  # editor: request.app[DB], assigned explicitly
    assert await listed(client) == MESSAGES  # public: request.config_dict[DB]
    assert await rows_in_file(db_path) == MESSAGES
    assert client.app[EDITOR][DB] is client.app[DB]  # one connection object
    assert client.app[DB].__class__ is aiosqlite.Connection


@pytest.mark.claim("像 SQL 的那条消息通过 `?` 占位符作为普通的值存进了表里")
@pytest.mark.claim("（没有声明时用 UTF-8）")
@pytest.mark.parametrize("body", MESSAGES)
async def test_message_is_stored_as_data(client, db_path, body):
    await post(client, body)
    assert await listed(client) == [body]
    assert await rows_in_file(db_path) == [body]


async def test_empty_message_is_rejected(client, db_path):
    resp = await client.post("/editor/messages")
    text = await resp.text()
    assert (resp.status, text) == (400, "消息不能为空\n"), text
    assert await rows_in_file(db_path) == []


@pytest.mark.claim("`post_message` 把这两种情况都变成 400")
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xfe", "text/plain"),
        ("你好".encode("gbk"), "text/plain; charset=utf-8"),
        (b"hello", "text/plain; charset=no-such-charset"),
        (b"hello", "text/plain; charset=undefined"),
        (b"xn--zz", "text/plain; charset=idna"),
    ],
)
async def test_message_that_is_not_text_is_rejected(
    client, db_path, body, content_type
):
    resp = await client.post(
        "/editor/messages", data=body, headers={"Content-Type": content_type}
    )
    text = await resp.text()
    assert (resp.status, text) == (400, "消息必须是文本\n"), text
    assert await rows_in_file(db_path) == []


async def test_messages_survive_a_restart(aiohttp_client, db_path):
    first = await aiohttp_client(create_app(db_path=db_path))
    await post(first, "kept")
    await first.close()
    second = await aiohttp_client(create_app(db_path=db_path))
    assert await listed(second) == ["kept"]


async def test_connection_is_closed_at_shutdown(app, client):
    await post(client, "before shutdown")
    connections = [app[DB], app[EDITOR][DB]]
    await client.close()
    for db in connections:
        with pytest.raises(ValueError, match="no active connection"):
            await db.execute("SELECT 1")


@pytest.mark.claim("不处理的话客户端会得到 500")
@pytest.mark.claim("解不开时抛出 `UnicodeError`（通常是它的子类")
@pytest.mark.claim("`charset=undefined` 这样的编码抛出的就是 `UnicodeError` 本身")
@pytest.mark.claim("不认识的名字时抛出 `LookupError`")
@pytest.mark.parametrize(
    ("body", "charset", "raised"),
    [
        (b"\xff\xfe", "", UnicodeDecodeError),
        (b"hello", "undefined", UnicodeError),
        (b"hello", "no-such-charset", LookupError),
    ],
)
async def test_undecodable_text_without_the_handling_is_a_500(
    aiohttp_client, body, charset, raised
):
    caught = []

    async def bare(request: web.Request) -> web.Response:
        try:
            return web.Response(text=await request.text())
        except Exception as exc:
            caught.append(exc)
            raise

    app = web.Application()
    app.router.add_post("/", bare)
    client = await aiohttp_client(app)
    content_type = "text/plain" + (f"; charset={charset}" if charset else "")
    resp = await client.post("/", data=body, headers={"Content-Type": content_type})
    assert resp.status == 500, await resp.text()
    assert [type(exc) for exc in caught] == [raised], caught


@pytest.mark.claim("`request.app` 指向子应用，而不是主应用")
@pytest.mark.claim("它是一个只读的映射")
@pytest.mark.claim("第一个有这个键的应用胜出")
@pytest.mark.claim("子应用嵌套好几层也一样能找到")
@pytest.mark.claim("在子应用上设置同一个键即可覆盖")
async def test_config_dict_looks_outwards_from_the_sub_app(aiohttp_client):
    seen = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.app, request.config_dict[DB_PATH]))
        with pytest.raises(TypeError):
            request.config_dict[DB_PATH] = Path("elsewhere")  # type: ignore[index]
        return web.Response()

    innermost, middle, own = web.Application(), web.Application(), web.Application()
    innermost.router.add_get("/", handler)
    own.router.add_get("/", handler)
    own[DB_PATH] = Path("own.db")
    middle.add_subapp("/innermost", innermost)
    app = web.Application()
    app[DB_PATH] = Path("main.db")
    app.add_subapp("/middle", middle)
    app.add_subapp("/own", own)
    client = await aiohttp_client(app)
    for path in ("/middle/innermost/", "/own/"):
        resp = await client.get(path)
        assert resp.status == 200, await resp.text()
    assert seen == [(innermost, Path("main.db")), (own, Path("own.db"))]


@pytest.mark.claim("会得到 `DeprecationWarning: Changing state of started")
async def test_assigning_after_startup_is_deprecated(app, client):
    with pytest.warns(DeprecationWarning, match="Changing state of started"):
        app[EDITOR][DB] = app[DB]
    with pytest.warns(DeprecationWarning, match="Changing state of started"):
        app[DB] = app[DB]


async def state_of(db: aiosqlite.Connection) -> str:
    try:
        await db.execute("SELECT 1")
    except ValueError as exc:
        return str(exc)
    return "open"


@pytest.mark.claim("能：主应用的 `cleanup_ctx` 先于子应用的启动回调运行")
@pytest.mark.claim("主应用的 `cleanup_ctx` 先退出（连接此时已关闭）")
@pytest.mark.claim("所以子应用的清理代码不能再用这个连接")
async def test_subapp_hooks_see_the_connection_open_then_closed(
    aiohttp_client, db_path
):
    """Sub-app hooks start after the main cleanup_ctx opened it, clean up after."""
    seen = []

    async def editor_ctx(editor: web.Application) -> AsyncIterator[None]:
        seen.append(("startup", await state_of(editor[DB])))
        yield
        seen.append(("cleanup_ctx", await state_of(editor[DB])))

    async def editor_cleanup(editor: web.Application) -> None:
        seen.append(("on_cleanup", await state_of(editor[DB])))

    editor = web.Application()  # hooks must be added before add_subapp()
    editor.cleanup_ctx.append(editor_ctx)
    editor.on_cleanup.append(editor_cleanup)
    app = web.Application()
    app[DB_PATH] = db_path
    app[EDITOR] = editor
    app.cleanup_ctx.append(sqlite_connection)
    app.add_subapp("/editor", editor)
    client = await aiohttp_client(app)
    await client.close()
    closed = "no active connection"
    assert seen == [
        ("startup", "open"),
        ("cleanup_ctx", closed),
        ("on_cleanup", closed),
    ]
