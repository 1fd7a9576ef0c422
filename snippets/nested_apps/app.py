"""主应用挂载一个 /admin 子应用：子应用有自己的路由、中间件和数据库连接。"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiosqlite
from aiohttp import web
from aiohttp.typedefs import Handler

ADMIN = web.AppKey("admin", web.Application)
DB = web.AppKey("db", aiosqlite.Connection)


@web.middleware
async def admin_header(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers["X-Admin"] = "yes"
    return response


async def admin_db(app: web.Application) -> AsyncIterator[None]:
    async with aiosqlite.connect(":memory:") as db:
        await db.execute("CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT)")
        await db.executemany(
            "INSERT INTO users VALUES (?, ?)", [("alice", "admin"), ("bob", "editor")]
        )
        app[DB] = db
        yield


async def show_user(request: web.Request) -> web.Response:
    db = request.app[DB]  # request.app 是子应用
    name = request.match_info["name"]
    async with db.execute("SELECT role FROM users WHERE name = ?", (name,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise web.HTTPNotFound(text=f"没有用户 {name}\n")
    return web.json_response({"name": name, "role": row[0]})


async def index(request: web.Request) -> web.Response:
    admin = request.app[ADMIN]
    url = admin.router["user"].url_for(name="alice")
    return web.Response(text=f"alice 的管理页面：{url}\n")


def create_admin_app() -> web.Application:
    admin = web.Application(middlewares=[admin_header])
    admin.cleanup_ctx.append(admin_db)
    admin.router.add_get("/users/{name}", show_user, name="user")
    return admin


def create_app() -> web.Application:
    app = web.Application()
    app[ADMIN] = create_admin_app()
    app.router.add_get("/", index)
    app.add_subapp("/admin", app[ADMIN])
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
