"""客户端收到 9000 多字节的响应头：默认的会话报错，放宽 max_field_size 后正常。"""

import asyncio
import traceback

import aiohttp
from aiohttp import web


async def big_cookie(request: web.Request) -> web.Response:
    """替别人的服务器站个位：它回 200，带一个 9000 多字节的 Set-Cookie。"""
    resp = web.Response(text="ok")
    resp.set_cookie("state", "x" * 9000)
    return resp


async def fetch(url: str, **limits: int) -> None:
    settings = ", ".join(f"{k}={v}" for k, v in limits.items())
    print(f"==== ClientSession({settings})")
    async with aiohttp.ClientSession(**limits) as session:
        try:
            async with session.get(url) as resp:
                cookie = resp.headers["Set-Cookie"]
                print(f"{resp.status}，Set-Cookie 有 {len(cookie)} 字节")
        except aiohttp.ClientResponseError as exc:
            print("回溯里的异常，从最早的一个开始：")
            chain: list[BaseException] = [exc]
            while chain[-1].__cause__ is not None:
                chain.append(chain[-1].__cause__)
            for error in reversed(chain):
                print("".join(traceback.format_exception_only(error)).rstrip())
            print(f"exc.status：{exc.status}")


async def main() -> None:
    app = web.Application()
    app.router.add_get("/", big_cookie)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # 端口 0：让系统挑一个空闲端口
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        await fetch(f"http://{host}:{port}/")
        await fetch(f"http://{host}:{port}/", max_field_size=16384)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
