"""db_connection: one aiosqlite connection per app, under a typed AppKey."""

import asyncio

import aiosqlite
import pytest
from aiohttp import FormData, web

from db_connection import old_app
from db_connection.app import DB, create_app

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


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
async def test_note_round_trip_through_the_file(client, db_path, text):
    note = await add(client, text)
    assert note == {"id": 1, "text": text}
    resp = await client.get(f"/notes/{note['id']}")
    body = await resp.text()
    assert resp.status == 200, body
    assert await resp.json() == {"id": 1, "text": text}, body
    assert await rows_in_file(db_path) == [(1, text)]


@pytest.mark.parametrize("note_id", HOSTILE_IDS)
async def test_hostile_id_is_only_a_value(client, db_path, note_id):
    await add(client, "secret")
    resp = await client.get(f"/notes/{note_id}")
    body = await resp.text()
    assert resp.status == 404, body
    assert body == "没有这条笔记\n"
    assert await rows_in_file(db_path) == [(1, "secret")]


@pytest.mark.parametrize(
    "data",
    [None, {"text": ""}, {"other": "x"}],
    ids=["no-body", "empty-text", "no-text-field"],
)
async def test_note_without_text_is_rejected(client, db_path, data):
    resp = await client.post("/notes", data=data)
    body = await resp.text()
    assert resp.status == 400, body
    assert await rows_in_file(db_path) == []


async def test_uploaded_file_is_not_a_text(client):
    form = FormData()
    form.add_field("text", b"bytes", filename="note.txt")
    resp = await client.post("/notes", data=form)
    assert resp.status == 400, await resp.text()


async def test_notes_survive_a_restart(aiohttp_client, db_path):
    first = await aiohttp_client(create_app(db_path=db_path))
    await add(first, "kept")
    await first.close()
    second = await aiohttp_client(create_app(db_path=db_path))
    resp = await second.get("/notes/1")
    assert await resp.json() == {"id": 1, "text": "kept"}, await resp.text()


async def test_connection_is_closed_at_shutdown(aiohttp_client, db_path):
    app = create_app(db_path=db_path)
    client = await aiohttp_client(app)
    db = app[DB]
    async with db.execute("SELECT 1") as cursor:
        assert await cursor.fetchone() == (1,)
    await client.close()
    with pytest.raises(ValueError, match="no active connection"):
        await db.execute("SELECT 1")


def test_string_key_emits_not_app_key_warning():
    app = web.Application()
    with pytest.warns(web.NotAppKeyWarning, match="web.AppKey"):
        app["db"] = object()


async def test_old_app_runs_only_on_the_loop_it_was_given(aiohttp_client):
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
