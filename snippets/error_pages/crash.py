"""处理器里有 bug 时：客户端收到什么，服务器日志里记下什么。"""

import asyncio
import io
import logging

import aiohttp
from aiohttp import web
from app import create_app

PRICES = {"apple": 3}


async def price(request: web.Request) -> web.Response:
    """有 bug 的处理器：不认识的名字会抛出 KeyError。"""
    return web.json_response({"price": PRICES[request.match_info["name"]]})


async def main() -> None:
    server_log = io.StringIO()  # 这里收集服务器日志，最后打印
    handler = logging.StreamHandler(server_log)
    handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
    logging.getLogger("app").addHandler(handler)

    app = create_app()
    app.router.add_get("/api/prices/{name}", price)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # 端口 0：让系统挑一个空闲端口
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession(f"http://{host}:{port}") as session:
            async with session.get("/api/prices/pear") as resp:
                print("状态码：", resp.status, sep="")
                print("Content-Type:", resp.headers["Content-Type"])
                print("响应体：", await resp.text(), sep="")
    finally:
        await runner.cleanup()

    print("服务器日志（去掉了回溯里的源代码行）：")
    for line in server_log.getvalue().splitlines():
        if not line.startswith("    "):  # 源代码行和 ^^^ 标记缩进四格以上
            print(line)


if __name__ == "__main__":
    asyncio.run(main())
