"""在 cleanup_ctx 里创建整个应用共用的 ClientSession，应用关闭时关掉它。"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def client_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:  # 这时事件循环已经在运行
        app[SESSION] = session
        yield


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="你好")


async def relay(request: web.Request) -> web.Response:
    url = f"{request.app[UPSTREAM]}/hello"
    async with request.app[SESSION].get(url) as resp:
        return web.Response(text=f"上游回答：{await resp.text()}\n")


def create_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream
    app.cleanup_ctx.append(client_session)
    app.router.add_get("/hello", hello)
    app.router.add_get("/", relay)
    return app


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    # 为了只用一个进程演示，“上游服务”就是本应用自己的 /hello
    web.run_app(create_app(f"http://127.0.0.1:{port}"), host="127.0.0.1", port=port)
