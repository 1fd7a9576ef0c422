"""主应用打开数据库连接，两个子应用用两种方式拿到同一个连接。"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
from aiohttp import web

DB_PATH = web.AppKey("db_path", Path)
DB = web.AppKey("db", aiosqlite.Connection)
EDITOR = web.AppKey("editor", web.Application)

DEFAULT_DB_PATH = Path(__file__).with_name("messages.db")  # 与 app.py 放在一起


async def sqlite_connection(app: web.Application) -> AsyncIterator[None]:
    async with aiosqlite.connect(app[DB_PATH]) as db:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, body TEXT)"
        )
        app[DB] = db
        app[EDITOR][DB] = db  # 写法一：把同一个连接显式放进子应用
        yield


async def post_message(request: web.Request) -> web.Response:
    """/editor 子应用的处理器：request.app 就是子应用本身。"""
    try:
        body = await request.text()
    except (UnicodeError, LookupError):  # 按声明的 charset 解不开，或 charset 不认识
        raise web.HTTPBadRequest(text="消息必须是文本\n") from None
    if not body:
        raise web.HTTPBadRequest(text="消息不能为空\n")
    db = request.app[DB]
    await db.execute("INSERT INTO messages (body) VALUES (?)", (body,))
    await db.commit()
    return web.Response(status=201, text="已保存\n")


async def list_messages(request: web.Request) -> web.Response:
    """/public 子应用的处理器：子应用里没有 DB，config_dict 接着查主应用。"""
    db = request.config_dict[DB]  # 写法二
    rows = await db.execute_fetchall("SELECT body FROM messages ORDER BY id")
    return web.json_response([body for (body,) in rows])


def create_app(db_path: str | Path = DEFAULT_DB_PATH) -> web.Application:
    editor = web.Application()
    editor.router.add_post("/messages", post_message)
    public = web.Application()
    public.router.add_get("/messages", list_messages)

    app = web.Application()
    app[DB_PATH] = Path(db_path)
    app[EDITOR] = editor
    app.cleanup_ctx.append(sqlite_connection)
    app.add_subapp("/editor", editor)
    app.add_subapp("/public", public)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
