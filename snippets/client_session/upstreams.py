"""把 app.py 的应用依次接到三种上游，各请求一次，打印客户端收到的回答。"""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
from aiohttp import web
from aiohttp.test_utils import unused_port
from app import UPSTREAM_TIMEOUT, create_app


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """在 127.0.0.1 的一个空闲端口上运行 app，返回 runner 和地址。"""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def through_app(upstream: str, timeout: aiohttp.ClientTimeout) -> str:
    """运行 app.py 的应用，让它调用 upstream；返回状态码、用时和响应体。"""
    runner, url = await serve(create_app(upstream, timeout))
    try:
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/") as resp:
                body = await resp.text()
        seconds = int(time.monotonic() - started)
    finally:
        await runner.cleanup()
    return f"HTTP {resp.status}，用时 {seconds} 秒\n  {body.rstrip()}"


async def main(timeout: aiohttp.ClientTimeout = UPSTREAM_TIMEOUT) -> None:
    answering = web.Application()
    answering.router.add_get("/", hello)
    runner, answering_url = await serve(answering)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        # 只 listen()，从不 accept()：内核替它完成握手、收下请求，程序一个字节也不回
        silent.listen()
        upstreams = [
            ("正常回答的上游", answering_url),
            ("没有服务在监听的端口", f"http://127.0.0.1:{unused_port()}"),
            ("收下请求却不回答的上游", f"http://127.0.0.1:{silent.getsockname()[1]}"),
        ]
        for title, upstream in upstreams:
            print(f"{title}：{await through_app(upstream, timeout)}")
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
