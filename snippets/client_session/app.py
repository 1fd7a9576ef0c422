"""整个服务器共用一个 ClientSession：在 cleanup_ctx 里打开，服务器停止时关闭。"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

# 建立 TCP 连接最多 3 秒；每次等上游的数据最多 5 秒；整个请求最多 10 秒
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=3, sock_read=5)

UPSTREAM = web.AppKey("upstream", str)
TIMEOUT = web.AppKey("timeout", aiohttp.ClientTimeout)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def client_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(
        app[UPSTREAM],
        cookie_jar=aiohttp.DummyCookieJar(),  # 不保存、不发送任何 cookie
        timeout=app[TIMEOUT],
    ) as session:
        app[SESSION] = session
        yield


async def index(request: web.Request) -> web.Response:
    session = request.app[SESSION]
    try:
        async with session.get("/") as resp:
            text = await resp.text()
    except asyncio.TimeoutError as exc:  # 放在 ClientError 之前：读超时同时是两者
        raise web.HTTPGatewayTimeout(text=f"上游超时：{type(exc).__name__}\n") from exc
    except aiohttp.ClientError as exc:
        raise web.HTTPBadGateway(text=f"上游不可用：{type(exc).__name__}\n") from exc
    return web.json_response({"upstream_status": resp.status, "upstream_text": text})


def create_app(
    upstream: str = "http://127.0.0.1:8081",
    timeout: aiohttp.ClientTimeout = UPSTREAM_TIMEOUT,
) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream
    app[TIMEOUT] = timeout
    app.cleanup_ctx.append(client_session)
    app.router.add_get("/", index)
    return app


if __name__ == "__main__":
    upstream = os.environ.get("UPSTREAM", "http://127.0.0.1:8081")
    web.run_app(
        create_app(upstream), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
