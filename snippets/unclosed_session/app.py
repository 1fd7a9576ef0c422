"""本页的客户端程序要访问的服务器：GET / 回一句问候。"""

import os

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="你好")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
