"""同时发 8 个请求：用连接器的 limit、limit_per_host 或 asyncio.Semaphore 限制并发，
看服务器同时处理了几个请求，客户端用了几个连接。"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

URL = "http://127.0.0.1:8080/work"
REQUESTS = 8


async def fetch(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def with_connector(url: str, **limits: int) -> list[dict[str, Any]]:
    """限制交给连接器：超出的请求在连接器里排队，等别的请求用完连接。"""
    connector = aiohttp.TCPConnector(**limits)
    async with aiohttp.ClientSession(connector=connector) as session:
        return await asyncio.gather(*(fetch(session, url) for _ in range(REQUESTS)))


async def with_semaphore(url: str, n: int) -> list[dict[str, Any]]:
    """限制交给信号量：同时最多 n 个协程进入 async with semaphore 里面。"""
    semaphore = asyncio.Semaphore(n)

    async def limited(session: aiohttp.ClientSession) -> dict[str, Any]:
        async with semaphore:
            return await fetch(session, url)

    async with aiohttp.ClientSession() as session:
        return await asyncio.gather(*(limited(session) for _ in range(REQUESTS)))


def report(name: str, answers: list[dict[str, Any]]) -> None:
    peak = max(answer["running"] for answer in answers)
    connections = len({answer["port"] for answer in answers})
    print(f"{name}：服务器同时处理的请求最多 {peak} 个，用了 {connections} 个连接")


async def main(url: str = URL) -> None:
    print(f"每种写法都同时发出 {REQUESTS} 个请求")
    report("TCPConnector()", await with_connector(url))
    report("TCPConnector(limit=4)", await with_connector(url, limit=4))
    report(
        "TCPConnector(limit_per_host=3)", await with_connector(url, limit_per_host=3)
    )
    report("asyncio.Semaphore(5)", await with_semaphore(url, 5))


if __name__ == "__main__":
    asyncio.run(main())
