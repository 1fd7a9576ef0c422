"""迁移后：每个键都是带类型的 web.AppKey / web.RequestKey 对象。"""

import os
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

GREETING = web.AppKey("greeting", str)
VISITS = web.AppKey("visits", Counter[str])
USER = web.RequestKey("user", str)


async def visits(app: web.Application) -> AsyncIterator[None]:
    app[VISITS] = Counter()
    yield


@web.middleware
async def user_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[USER] = request.headers.get("X-User", "访客")
    return await handler(request)


async def greet(request: web.Request) -> web.Response:
    user = request[USER]  # 类型检查器知道这是 str
    request.app[VISITS][user] += 1  # 知道这是 Counter[str]
    count = request.app[VISITS][user]
    return web.Response(text=f"{request.app[GREETING]}，{user}！第 {count} 次来访\n")


def create_app() -> web.Application:
    app = web.Application(middlewares=[user_middleware])
    app[GREETING] = "你好"
    app.cleanup_ctx.append(visits)
    app.router.add_get("/", greet)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
