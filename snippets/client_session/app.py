"""整个服务器共用一个 ClientSession：在 cleanup_ctx 里打开，服务器停止时关闭。"""

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def client_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(
        app[UPSTREAM],
        cookie_jar=aiohttp.DummyCookieJar(),  # 不保存、不发送任何 cookie
        timeout=aiohttp.ClientTimeout(total=10),
    ) as session:
        app[SESSION] = session
        yield


async def index(request: web.Request) -> web.Response:
    session = request.app[SESSION]
    try:
        async with session.get("/") as resp:
            text = await resp.text()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise web.HTTPBadGateway(text=f"上游不可用：{type(exc).__name__}") from exc
    return web.json_response({"upstream_status": resp.status, "upstream_text": text})


def create_app(upstream: str = "http://127.0.0.1:8081") -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream
    app.cleanup_ctx.append(client_session)
    app.router.add_get("/", index)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
