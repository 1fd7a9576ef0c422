"""数一数上游看到多少个 TCP 连接：共用 ClientSession、每次新建、共用 TCPConnector。"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

N = 10
CONNECTIONS = web.AppKey("connections", set[asyncio.Transport])


async def hello(request: web.Request) -> web.Response:
    # request.transport 就是这个请求所在的 TCP 连接，同一连接上的请求共用它
    request.app[CONNECTIONS].add(request.transport)
    return web.Response(text="hello")


async def get(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(url) as resp:
        await resp.text()


async def shared_session(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(N):
            await get(session, url)


async def session_per_request(url: str) -> None:
    for _ in range(N):
        async with aiohttp.ClientSession() as session:
            await get(session, url)


async def shared_connector(url: str) -> None:
    connector = aiohttp.TCPConnector()
    for _ in range(N):
        # 会话关闭时不关闭连接器，连接留在连接器的池里
        async with aiohttp.ClientSession(
            connector=connector, connector_owner=False
        ) as session:
            await get(session, url)
    await connector.close()  # 连接器由创建它的人关闭


async def main() -> None:
    app = web.Application()
    app[CONNECTIONS] = set()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    ways = [
        ("共用一个 ClientSession", shared_session),
        ("每个请求新建 ClientSession", session_per_request),
        ("每个请求新建 ClientSession，共用 TCPConnector", shared_connector),
    ]
    for title, way in ways:
        app[CONNECTIONS].clear()
        await way(url)
        print(f"{title}：{N} 个请求，{len(app[CONNECTIONS])} 个 TCP 连接")
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
