"""迁移前：应用和请求上的数据都用字符串作键。"""

import os
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler


async def visits(app: web.Application) -> AsyncIterator[None]:
    app["visits"] = Counter()
    yield


@web.middleware
async def user_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request["user"] = request.headers.get("X-User", "访客")
    return await handler(request)


async def greet(request: web.Request) -> web.Response:
    user = request["user"]
    request.app["visits"][user] += 1
    count = request.app["visits"][user]
    return web.Response(text=f"{request.app['greeting']}，{user}！第 {count} 次来访\n")


def create_app() -> web.Application:
    app = web.Application(middlewares=[user_middleware])
    app["greeting"] = "你好"
    app.cleanup_ctx.append(visits)
    app.router.add_get("/", greet)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
