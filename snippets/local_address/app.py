"""回显服务器看到的客户端地址（request.remote）。"""

import os

from aiohttp import web


async def whoami(request: web.Request) -> web.Response:
    return web.json_response({"remote": request.remote})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", whoami)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
