"""两个任务同时调用 receive() 会怎样：第二个立刻得到 RuntimeError。"""

import asyncio

import aiohttp
from aiohttp import web


async def handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    first = asyncio.create_task(ws.receive())
    await asyncio.sleep(0)  # 让第一个 receive() 先开始等待
    try:
        await ws.receive()
    except RuntimeError as exc:
        await ws.send_str(f"RuntimeError: {exc}")
    await first  # 客户端关闭连接时，第一个 receive() 才返回
    return ws


async def main() -> None:
    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
            print(await ws.receive_str())
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
