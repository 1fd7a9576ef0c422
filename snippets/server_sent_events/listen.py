"""用 aiohttp 客户端读 app.py 的事件流：收三条消息，再带上 Last-Event-ID 重新连接。"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp

URL = "http://127.0.0.1:8080"
ACCEPT = {"Accept": "text/event-stream"}


async def read_events(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, str]]:
    """按 SSE 的格式把响应体切成事件：一个字段一行，空行结束一条事件。"""
    event: dict[str, str] = {}
    async for raw in resp.content:  # 一次一行
        line = raw.decode().rstrip("\r\n")
        if line.startswith(":"):  # 注释行（心跳）
            continue
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data" and "data" in event:  # 多行数据用换行连起来
                value = event["data"] + "\n" + value
            event[name] = value
            continue
        if "data" in event:  # 只有 retry 之类、没有 data 的不算事件
            yield event
        event = {}


async def publish(session: aiohttp.ClientSession, text: str) -> None:
    async with session.post("/publish", data=text.encode()) as resp:
        resp.raise_for_status()


async def main() -> None:
    async with aiohttp.ClientSession(URL) as session:
        async with session.get("/events", headers=ACCEPT) as resp:
            print(resp.status, resp.headers["Content-Type"])
            async with contextlib.aclosing(read_events(resp)) as events:
                for text in ["你好", "第二条\n有两行", "第三条"]:
                    await publish(session, text)
                    event = await anext(events)
                    print(f"收到 id={event['id']}：{event['data']!r}")
        await publish(session, "断开期间发布的")
        print("带上 Last-Event-ID: 2 重新连接：")
        headers = {**ACCEPT, "Last-Event-ID": "2"}
        async with session.get("/events", headers=headers) as resp:
            async with contextlib.aclosing(read_events(resp)) as events:
                for _ in range(2):
                    event = await anext(events)
                    print(f"收到 id={event['id']}：{event['data']!r}")


if __name__ == "__main__":
    asyncio.run(main())
