"""被测的应用：GET / 回答一句问候。真实项目里，应用的启动可能很慢（连数据库等）。"""

import os

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="你好")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    return app


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    web.run_app(create_app(), host="127.0.0.1", port=port)
