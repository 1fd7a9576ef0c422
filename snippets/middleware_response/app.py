"""缓存中间件：缓存的是响应的内容，每个请求都新建一个 Response。"""

from __future__ import annotations

import os
from collections import Counter
from typing import NamedTuple

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict


class CachedPage(NamedTuple):
    headers: CIMultiDict[str]
    body: bytes


CACHE = web.AppKey("cache", dict[str, CachedPage])
BUILDS = web.AppKey("builds", Counter[str])


def may_use_cache(request: web.Request) -> bool:
    """只有不带身份的 GET、HEAD 用缓存：带身份的请求可能得到只属于这个人的页面。"""
    return (
        request.method in (hdrs.METH_GET, hdrs.METH_HEAD)
        and hdrs.AUTHORIZATION not in request.headers
        and hdrs.COOKIE not in request.headers
    )


def may_store(resp: web.StreamResponse) -> bool:
    """只存内容已在内存里、可以原样发给任何人的 200 响应。"""
    if not isinstance(resp, web.Response) or not isinstance(resp.body, bytes):
        return False  # 流式响应、FileResponse：手里没有完整的内容
    cache_control = resp.headers.get(hdrs.CACHE_CONTROL, "").lower()
    return (
        resp.status == 200
        and not resp.cookies  # set_cookie() 设的 cookie
        and hdrs.SET_COOKIE not in resp.headers
        and hdrs.VARY not in resp.headers  # 内容随请求头变化，键里没有它们
        and not any(word in cache_control for word in ("private", "no-store"))
    )


@web.middleware
async def cache_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    if not may_use_cache(request):
        return await handler(request)
    key = f"{request.method} {request.rel_url}"  # 方法 + 路径 + 查询字符串
    cache = request.app[CACHE]
    state = "HIT"
    if key not in cache:
        resp = await handler(request)
        if not may_store(resp):
            return resp
        cache[key] = CachedPage(resp.headers.copy(), resp.body)
        state = "MISS"
    page = cache[key]
    resp = web.Response(body=page.body, headers=page.headers)  # 每次都是新对象
    resp.headers["X-Cache"] = state
    return resp


async def report(request: web.Request) -> web.Response:
    """一个生成起来很贵的页面，每个月份一份。"""
    month = request.query.get("month", "本月")
    builds = request.app[BUILDS]
    builds[month] += 1
    return web.Response(text=f"报表：{month}（第 {builds[month]} 次生成）\n")


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
