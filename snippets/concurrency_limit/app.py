"""一个慢的服务器：每个请求要处理 0.5 秒。

响应里写明：这个请求开始处理时，连同它自己，服务器上一共有几个请求正在处理；
以及它来自客户端的哪个端口（一个端口就是一个连接）。
"""

import asyncio
import os
from dataclasses import dataclass

from aiohttp import web

DELAY = 0.5  # 每个请求处理多少秒


@dataclass
class Running:
    count: int = 0  # 正在处理的请求数


RUNNING = web.AppKey("running", Running)
DELAY_SECONDS = web.AppKey("delay_seconds", float)


async def work(request: web.Request) -> web.Response:
    running = request.app[RUNNING]
    peer = request.transport.get_extra_info("peername") if request.transport else None
    running.count += 1
    now = running.count
    try:
        await asyncio.sleep(request.app[DELAY_SECONDS])
    finally:
        running.count -= 1
    return web.json_response({"running": now, "port": peer[1] if peer else None})


def create_app(delay: float = DELAY) -> web.Application:
    app = web.Application()
    app[RUNNING] = Running()
    app[DELAY_SECONDS] = delay
    app.router.add_get("/work", work)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
