"""把这个进程能打开的文件数降到 64，再同时发 200 个请求：
不限制连接数时会出现 "Too many open files"，limit=50 时不会。"""

from __future__ import annotations

import asyncio
import errno
import resource
import traceback
from typing import Any

import aiohttp

URL = "http://127.0.0.1:8080/work"
OPEN_FILES = 64  # 软限制：这个进程同时最多打开 64 个文件，每个 socket 也占一个
REQUESTS = 200


def lower_open_files_limit(soft: int) -> None:
    """相当于在 shell 里先执行 ulimit -Sn 64（只影响这个进程）。"""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def fetch(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def run(url: str, limit: int, requests: int) -> None:
    connector = aiohttp.TCPConnector(limit=limit)
    async with aiohttp.ClientSession(connector=connector) as session:
        results = await asyncio.gather(
            *(fetch(session, url) for _ in range(requests)), return_exceptions=True
        )
    errors = [r for r in results if isinstance(r, BaseException)]
    print(f"TCPConnector(limit={limit})，同时发出 {requests} 个请求：")
    if not errors:
        print("  全部成功")
        return
    first = errors[0]
    print("  有的请求失败了。第一个失败的请求，回溯里的两个异常是：")
    for exc in (first.__cause__, first):  # 直接原因在前，和回溯里的顺序一样
        print("  " + traceback.format_exception_only(exc)[-1].rstrip())
    print(f"  exc.errno：{first.errno}（errno.{errno.errorcode[first.errno]}）")


async def main(
    url: str = URL, limits: tuple[int, ...] = (0, 50), requests: int = REQUESTS
) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(f"RLIMIT_NOFILE 的软限制：{soft}")
    for limit in limits:
        await run(url, limit, requests)


if __name__ == "__main__":
    lower_open_files_limit(OPEN_FILES)
    asyncio.run(main())
