"""缓存中间件：缓存的是响应的内容，每个请求都新建一个 Response。"""

import os
from collections import Counter
from typing import NamedTuple

from aiohttp import web
from aiohttp.typedefs import Handler


class CachedPage(NamedTuple):
    body: bytes
    content_type: str


CACHE = web.AppKey("cache", dict[str, CachedPage])
BUILDS = web.AppKey("builds", Counter[str])


@web.middleware
async def cache_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    cache = request.app[CACHE]
    state = "HIT"
    if request.path not in cache:
        resp = await handler(request)
        body = resp.body if isinstance(resp, web.Response) else None
        if resp.status != 200 or not isinstance(body, bytes):
            return resp  # 只缓存成功的、内容已在内存里的响应
        cache[request.path] = CachedPage(body, resp.headers["Content-Type"])
        state = "MISS"
    page = cache[request.path]
    headers = {"Content-Type": page.content_type, "X-Cache": state}
    return web.Response(body=page.body, headers=headers)  # 每次都是新对象


async def report(request: web.Request) -> web.Response:
    """一个生成起来很贵的页面。"""
    builds = request.app[BUILDS]
    builds[request.path] += 1
    return web.Response(text=f"报表（第 {builds[request.path]} 次生成）\n")


def create_app() -> web.Application:
    app = web.Application(middlewares=[cache_middleware])
    app[CACHE] = {}
    app[BUILDS] = Counter()
    app.router.add_get("/report", report)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
