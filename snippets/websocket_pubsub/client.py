"""连上 /ws，等订阅好后往频道发布一条消息，再自己说一句，打印收到的回复。"""

import asyncio
import os

import aiohttp
import redis.asyncio as redis


async def main(url: str, redis_url: str) -> None:
    publisher = redis.from_url(redis_url)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            print(await ws.receive_str())  # 服务器订阅完成后的第一条消息
            await publisher.publish("channel:1", "来自 Redis 的消息")
            print(await ws.receive_str())
            await ws.send_str("你好")
            print(await ws.receive_str())
    await publisher.aclose()


if __name__ == "__main__":
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    asyncio.run(main("http://127.0.0.1:8080/ws", redis_url))
