"""旧 FAQ（aiohttp 2.x）的写法：loop= 与字符串键。在 aiohttp 3.8 及以上启动即失败。"""

import asyncio

import aiosqlite
from aiohttp import web


async def go(request):
    async with request.app["db"].execute("SELECT 42") as cursor:
        (answer,) = await cursor.fetchone()
    return web.Response(text=str(answer))


async def open_db(app):
    app["db"] = await aiosqlite.connect(":memory:")


async def close_db(app):
    await app["db"].close()


async def init_app(loop):
    app = web.Application(loop=loop)
    app.on_startup.append(open_db)
    app.on_cleanup.append(close_db)
    app.router.add_get("/", go)
    return app


if __name__ == "__main__":
    loop = asyncio.new_event_loop()  # 当年常写 asyncio.get_event_loop()
    app = loop.run_until_complete(init_app(loop))
    web.run_app(app, host="127.0.0.1", port=8080)
