"""反例：中间件把同一个 Response 对象返回给每一个请求。"""

import asyncio

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware


def misbehaved_middleware() -> Middleware:
    cached = web.Response(text="Hi, I am cached!")  # 不要这样做

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.Response:
        await handler(request)  # 为了演示，丢弃处理器的响应
        return cached

    return middleware


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def main(timeout: float = 1.0) -> None:
    app = web.Application(middlewares=[misbehaved_middleware()])
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        for n in (1, 2):
            try:
                async with session.get(url) as resp:
                    print(f"第 {n} 个请求：{resp.status} {await resp.text()}")
            except asyncio.TimeoutError:
                print(f"第 {n} 个请求：超时，一个字节都没收到")
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
