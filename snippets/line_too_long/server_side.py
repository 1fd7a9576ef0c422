"""服务器收到过大的请求：同一个应用，先用默认的上限，再用 app.py 里放宽的上限。

每次都发三个请求：一个 9000 多字节的 Cookie，一个 9000 多字节的 URL，200 个请求头。
打印客户端收到的响应，以及服务器记下的日志。
"""

import asyncio
import logging
import textwrap
import traceback
from typing import Any

import aiohttp
from aiohttp import web
from app import LIMITS, create_app

BIG = "x" * 9000
REQUESTS: dict[str, dict[str, Any]] = {
    "大 Cookie": {"url": "/", "headers": {"Cookie": f"session={BIG}"}},
    "长 URL": {"url": f"/?q={BIG}", "headers": {}},
    "200 个请求头": {"url": "/", "headers": {f"X-Tag-{i}": "1" for i in range(200)}},
}


class Collect(logging.Handler):
    """把日志记录收集起来，最后再打印。"""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def send_all(limits: dict[str, int]) -> None:
    log = Collect()
    logging.getLogger("aiohttp.server").addHandler(log)
    runner = web.AppRunner(create_app(), **limits)  # 和 run_app(**LIMITS) 一样
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # 端口 0：让系统挑一个空闲端口
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession(f"http://{host}:{port}") as session:
            for name, request in REQUESTS.items():
                async with session.get(**request) as resp:
                    print(f"{name}：{resp.status} {await resp.text()}")
    finally:
        await runner.cleanup()
        logging.getLogger("aiohttp.server").removeHandler(log)
    print("服务器日志（回溯只留最后的异常）：")
    for record in log.records:
        print(f"  {record.levelname} {record.name}: {record.getMessage()}")
        if record.exc_info:
            last = "".join(traceback.format_exception_only(record.exc_info[1]))
            print(textwrap.indent(last.rstrip(), "    "))
    if not log.records:
        print("  （没有）")


async def main() -> None:
    for limits in ({}, LIMITS):
        settings = ", ".join(f"{k}={v}" for k, v in limits.items()) or "默认的上限"
        print(f"==== AppRunner({settings})")
        await send_all(limits)


if __name__ == "__main__":
    asyncio.run(main())
