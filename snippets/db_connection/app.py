"""数据库连接放在带类型的 AppKey 下，在 cleanup_ctx 里打开和关闭。"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
from aiohttp import web

DB_PATH = web.AppKey("db_path", Path)
DB = web.AppKey("db", aiosqlite.Connection)

DEFAULT_DB_PATH = Path(__file__).with_name("notes.db")  # 与 app.py 放在一起
SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"


class DatabaseUnavailable(Exception):
    """数据库文件不能用：服务器不该启动。"""


def create_schema(path: Path) -> None:
    # 路径是目录、上级目录不存在：connect 就失败；
    # 文件存在但不是 SQLite 数据库：到执行第一条 SQL 时才失败
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(SCHEMA)


async def sqlite_connection(app: web.Application) -> AsyncIterator[None]:
    path = app[DB_PATH]
    try:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, create_schema, path)  # 在线程里
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"无法使用数据库 {path}：{exc}") from exc
    async with aiosqlite.connect(path) as db:
        app[DB] = db
        yield  # 应用运行期间连接一直打开；退出 async with 时关闭


async def add_note(request: web.Request) -> web.Response:
    try:
        text = (await request.post()).get("text")
    except (ValueError, LookupError):  # 坏的 multipart、非 UTF-8 文本、未知 charset
        text = None
    if not isinstance(text, str) or not text:
        raise web.HTTPBadRequest(text="需要表单字段 text\n")
    db = request.app[DB]
    cursor = await db.execute("INSERT INTO notes (text) VALUES (?)", (text,))
    await db.commit()
    return web.json_response({"id": cursor.lastrowid, "text": text}, status=201)


async def get_note(request: web.Request) -> web.Response:
    note_id = request.match_info["id"]
    query = "SELECT id, text FROM notes WHERE id = ?"
    async with request.app[DB].execute(query, (note_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise web.HTTPNotFound(text="没有这条笔记\n")
    return web.json_response({"id": row[0], "text": row[1]})


def create_app(db_path: str | Path = DEFAULT_DB_PATH) -> web.Application:
    app = web.Application()
    app[DB_PATH] = Path(db_path)
    app.cleanup_ctx.append(sqlite_connection)
    app.router.add_post("/notes", add_note)
    app.router.add_get("/notes/{id}", get_note)
    return app


if __name__ == "__main__":
    app = create_app(os.environ.get("NOTES_DB", DEFAULT_DB_PATH))
    try:
        web.run_app(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
    except DatabaseUnavailable as exc:
        sys.exit(str(exc))  # 一行说明写到 stderr，退出码 1；服务器从未开始监听
