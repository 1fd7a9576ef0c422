"""放在 nginx 后面的普通 aiohttp 应用：它自己不压缩，压缩交给 nginx。"""

import os

from aiohttp import web


async def items(request: web.Request) -> web.Response:
    return web.json_response([{"id": i, "name": f"商品 {i}"} for i in range(100)])


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/items", items)
    app.router.add_get("/ping", ping)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
