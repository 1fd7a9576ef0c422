"""subapp_db: sub-apps reach the main app's SQLite connection in two ways."""

from collections.abc import AsyncIterator

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


async def test_both_forms_reach_the_same_database(client, db_path):
    assert await listed(client) == []
    for body in MESSAGES:
        await post(client, body)  # editor: request.app[DB], assigned explicitly
    assert await listed(client) == MESSAGES  # public: request.config_dict[DB]
    assert await rows_in_file(db_path) == MESSAGES


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


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xfe", "text/plain"),
        ("你好".encode("gbk"), "text/plain; charset=utf-8"),
        (b"hello", "text/plain; charset=no-such-charset"),
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


async def test_assigning_after_startup_is_deprecated(app, client):
    with pytest.warns(DeprecationWarning, match="Changing state of started"):
        app[EDITOR][DB] = app[DB]


async def state_of(db: aiosqlite.Connection) -> str:
    try:
        await db.execute("SELECT 1")
    except ValueError as exc:
        return str(exc)
    return "open"


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
