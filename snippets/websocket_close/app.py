"""服务器主动关闭 WebSocket：按用户登记连接，/logout 关闭这个用户的全部连接。"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Mapping

from aiohttp import WSCloseCode, web

# 仅供演示的令牌；真实项目从数据库或会话里查，不要把凭据写进代码
DEMO_TOKENS = {"alice": "demo-token-alice", "bob": "demo-token-bob"}
LOGGED_OUT = 4000  # 4000–4999 留给应用自己定义

TOKENS = web.AppKey("tokens", dict[str, bytes])
WEBSOCKETS = web.AppKey("websockets", dict[str, set[web.WebSocketResponse]])


def authenticate(request: web.Request) -> str:
    """返回令牌所属的用户；没有有效令牌就回 401。"""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        given = token.encode("utf-8", "surrogateescape")
        for user, known in request.app[TOKENS].items():
            if hmac.compare_digest(given, known):
                return user
    raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})


async def echo(request: web.Request) -> web.WebSocketResponse:
    user = authenticate(request)  # 在 prepare() 之前：认证失败就只是一个 401
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sockets = request.app[WEBSOCKETS].setdefault(user, set())
    sockets.add(ws)
    try:
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                await ws.send_str(msg.data)
    finally:
        sockets.discard(ws)
        if not sockets:
            del request.app[WEBSOCKETS][user]
    return ws


async def logout(request: web.Request) -> web.Response:
    user = authenticate(request)
    sockets = list(request.app[WEBSOCKETS].get(user, ()))
    # 这些处理器正在 async for 里读：close() 发出关闭帧就断开连接，不等客户端回应
    await asyncio.gather(
        *(ws.close(code=LOGGED_OUT, message=b"logged out") for ws in sockets)
    )
    return web.json_response({"user": user, "closed": len(sockets)})


async def close_all(app: web.Application) -> None:
    sockets = [ws for user_sockets in app[WEBSOCKETS].values() for ws in user_sockets]
    await asyncio.gather(
        *(
            ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
            for ws in sockets
        )
    )


def create_app(tokens: Mapping[str, str] = DEMO_TOKENS) -> web.Application:
    app = web.Application()
    app[TOKENS] = {user: token.encode() for user, token in tokens.items()}
    app[WEBSOCKETS] = {}
    app.on_shutdown.append(close_all)
    app.router.add_get("/echo", echo)
    app.router.add_post("/logout", logout)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
