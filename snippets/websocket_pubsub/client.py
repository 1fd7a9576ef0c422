"""连上 /ws，往频道发布一条消息，再发一条自己的消息，打印收到的两条回复。"""

import asyncio
import os

import aiohttp
import redis.asyncio as redis


async def main(url: str, redis_url: str) -> None:
    publisher = redis.from_url(redis_url)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            # 等服务器订阅完成，否则这条发布没人收
            while (await publisher.pubsub_numsub("channel:1"))[0][1] == 0:
                await asyncio.sleep(0.05)
            await publisher.publish("channel:1", "来自 Redis 的消息")
            print(await ws.receive_str())
            await ws.send_str("你好")
            print(await ws.receive_str())
    await publisher.aclose()


if __name__ == "__main__":
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    asyncio.run(main("http://127.0.0.1:8080/ws", redis_url))
