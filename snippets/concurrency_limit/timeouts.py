"""排队等连接的时间算不算在超时里：limit=2 对 Semaphore(2)，每个请求超时 0.75 秒。"""

from __future__ import annotations

import asyncio

import aiohttp

URL = "http://127.0.0.1:8080/work"
REQUESTS = 4
SECONDS = 0.75  # 每个请求的总超时；服务器处理一个请求要 0.5 秒


async def fetch(session: aiohttp.ClientSession, url: str) -> str:
    try:
        timeout = aiohttp.ClientTimeout(total=SECONDS)
        async with session.get(url, timeout=timeout) as resp:
            await resp.read()
            return str(resp.status)
    except asyncio.TimeoutError as exc:
        return type(exc).__name__


async def with_connector(url: str) -> list[str]:
    connector = aiohttp.TCPConnector(limit=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        return await asyncio.gather(*(fetch(session, url) for _ in range(REQUESTS)))


async def with_semaphore(url: str) -> list[str]:
    semaphore = asyncio.Semaphore(2)

    async def limited(session: aiohttp.ClientSession) -> str:
        async with semaphore:  # 拿到信号量之后才调用 session.get()，超时从这时算起
            return await fetch(session, url)

    async with aiohttp.ClientSession() as session:
        return await asyncio.gather(*(limited(session) for _ in range(REQUESTS)))


def report(name: str, outcomes: list[str]) -> None:
    print(f"{name}：{'、'.join(outcomes)}")


async def main(url: str = URL) -> None:
    print(f"同时发出 {REQUESTS} 个请求，每个请求 ClientTimeout(total={SECONDS})")
    report("TCPConnector(limit=2)", await with_connector(url))
    report("asyncio.Semaphore(2)", await with_semaphore(url))


if __name__ == "__main__":
    asyncio.run(main())
