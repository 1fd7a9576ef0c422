"""WebSocket 与 Redis 发布/订阅：一个任务读 socket，另一个任务转发频道消息。"""

import asyncio
import os
from collections.abc import AsyncIterator, Coroutine

import redis.asyncio as redis
from aiohttp import WSCloseCode, web

CHANNEL = "channel:1"
REDIS_URL = web.AppKey("redis_url", str)
MAX_SOCKETS = web.AppKey("max_sockets", int)
REDIS = web.AppKey("redis", redis.Redis)


async def redis_client(app: web.Application) -> AsyncIterator[None]:
    # 每个 WebSocket 占用连接池里的一条 Redis 连接，池的大小就是在线人数的上限。
    client = redis.from_url(
        app[REDIS_URL], decode_responses=True, max_connections=app[MAX_SOCKETS]
    )
    app[REDIS] = client
    yield
    await client.aclose()


async def answer(ws: web.WebSocketResponse) -> None:
    """唯一读 WebSocket 的任务：回答客户端发来的文本，客户端关闭时结束。"""
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(f"收到：{msg.data}")


async def forward(pubsub: redis.client.PubSub, ws: web.WebSocketResponse) -> None:
    """频道里的每条消息都原样发给 WebSocket；Redis 断开时抛出 ConnectionError。"""
    async for message in pubsub.listen():
        if message["type"] == "message":
            await ws.send_str(message["data"])


async def first_to_finish(*coros: Coroutine[None, None, None]) -> None:
    """并发运行，其中一个结束就取消其余的，并等它们真正结束；再抛出它的异常。"""
    tasks = [asyncio.create_task(coro) for coro in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    done.pop().result()


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async with request.app[REDIS].pubsub() as pubsub:
        try:
            await pubsub.subscribe(CHANNEL)
            await ws.send_str(f"已订阅 {CHANNEL}")  # 从现在起的消息都会转发
            await first_to_finish(answer(ws), forward(pubsub, ws))
        except redis.ConnectionError:  # Redis 停了，或连接池满了：请客户端稍后再连
            await ws.close(
                code=WSCloseCode.TRY_AGAIN_LATER, message=b"redis unavailable"
            )
    return ws


async def index(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def create_app(
    redis_url: str = "redis://127.0.0.1:6379/0", max_sockets: int = 2000
) -> web.Application:
    app = web.Application()
    app[REDIS_URL] = redis_url
    app[MAX_SOCKETS] = max_sockets
    app.cleanup_ctx.append(redis_client)
    app.router.add_get("/", index)
    app.router.add_get("/ws", ws_handler)
    return app


if __name__ == "__main__":
    app = create_app(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    web.run_app(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
