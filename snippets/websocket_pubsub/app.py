"""WebSocket 与 Redis 发布/订阅：一个任务读 socket，另一个任务转发频道消息。"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import redis.asyncio as redis
from aiohttp import web

CHANNEL = "channel:1"
REDIS_URL = web.AppKey("redis_url", str)
REDIS = web.AppKey("redis", redis.Redis)


async def redis_client(app: web.Application) -> AsyncIterator[None]:
    client = redis.from_url(app[REDIS_URL], decode_responses=True)
    app[REDIS] = client
    yield
    await client.aclose()


async def forward(pubsub: redis.client.PubSub, ws: web.WebSocketResponse) -> None:
    """频道里的每条消息都原样发给这个 websocket。"""
    async for message in pubsub.listen():
        if message["type"] == "message":
            await ws.send_str(message["data"])


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async with request.app[REDIS].pubsub() as pubsub:
        await pubsub.subscribe(CHANNEL)
        await ws.send_str(f"已订阅 {CHANNEL}")  # 告诉客户端：从现在起的消息都会转发
        forwarder = asyncio.create_task(forward(pubsub, ws))
        try:
            async for msg in ws:  # 只有这一个任务读 websocket
                if msg.type == web.WSMsgType.TEXT:
                    await ws.send_str(f"收到: {msg.data}")
        finally:
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forwarder
            await pubsub.unsubscribe(CHANNEL)
    return ws


def create_app(redis_url: str = "redis://127.0.0.1:6379/0") -> web.Application:
    app = web.Application()
    app[REDIS_URL] = redis_url
    app.cleanup_ctx.append(redis_client)
    app.router.add_get("/ws", ws_handler)
    return app


if __name__ == "__main__":
    app = create_app(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    web.run_app(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
