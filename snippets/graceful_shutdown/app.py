"""平滑关闭：停机时先用 1001 关掉所有 WebSocket，再等进行中的请求做完。"""

from __future__ import annotations

import asyncio
import os

from aiohttp import WSCloseCode, web

STEP_SECONDS = web.AppKey("step_seconds", float)
WEBSOCKETS = web.AppKey("websockets", set[web.WebSocketResponse])


async def report(request: web.Request) -> web.StreamResponse:
    """一个要跑好几秒的请求：先发响应头，再一段一段地写。"""
    resp = web.StreamResponse()
    resp.content_type = "text/plain"
    resp.charset = "utf-8"
    await resp.prepare(request)
    for part in range(1, 4):
        await asyncio.sleep(request.app[STEP_SECONDS])
        await resp.write(f"第 {part} 段\n".encode())
    await resp.write_eof()
    return resp


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    request.app[WEBSOCKETS].add(ws)
    try:
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                await ws.send_str(msg.data)
    finally:
        request.app[WEBSOCKETS].discard(ws)
    return ws


async def close_websockets(app: web.Application) -> None:
    """on_shutdown：WebSocket 处理器不会自己结束，由服务器用 1001 关闭它们。"""
    await asyncio.gather(
        *(
            ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
            for ws in set(app[WEBSOCKETS])
        )
    )


def create_app(step_seconds: float = 1.0) -> web.Application:
    app = web.Application()
    app[STEP_SECONDS] = step_seconds
    app[WEBSOCKETS] = set()
    app.on_shutdown.append(close_websockets)
    app.router.add_get("/report", report)
    app.router.add_get("/ws", echo)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(),
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8080")),
        shutdown_timeout=4,  # 默认 60 秒；最坏情况下要等它的两倍
    )
