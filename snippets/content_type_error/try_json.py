"""对每个地址调用 resp.json()：打印得到的值，或者异常在回溯最后一行的样子。"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable
from typing import Any

import aiohttp

PATHS = ["/ok", "/problem", "/html-json", "/no-type", "/broken", "/bad-gateway"]


async def outcome(call: Awaitable[Any]) -> str:
    try:
        return repr(await call)
    except Exception as exc:  # 演示：不处理，只把异常照原样打印出来
        return traceback.format_exception_only(exc)[-1].rstrip()


async def main(base_url: str) -> None:
    async with aiohttp.ClientSession(base_url) as session:
        for path in PATHS:
            async with session.get(path) as resp:
                content_type = resp.headers.get("Content-Type", "（没有）")
                print(f"GET {path}：{resp.status}，Content-Type：{content_type}")
                print(f"  resp.json()：{await outcome(resp.json())}")
                untyped = await outcome(resp.json(content_type=None))
                print(f"  resp.json(content_type=None)：{untyped}")


if __name__ == "__main__":
    asyncio.run(main("http://127.0.0.1:8080"))
