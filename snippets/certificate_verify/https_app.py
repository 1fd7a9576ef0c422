"""一个 HTTPS 服务器，出示 make_certs.py 做的证书；然后用 aiohttp 的默认设置请求它。

serve() 在当前的事件循环里启动服务器、给出地址，退出时关闭：本页的其他程序都用它。
"""

import asyncio
import contextlib
import ssl
import traceback
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

HOST = "localhost"  # make_certs.py 把 server.crt 签给这个名字


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="你好，这是 HTTPS")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    return app


def server_context(cert: str = "server.crt", key: str = "server.key") -> ssl.SSLContext:
    """服务器出示 cert 这张证书，用 key 证明证书是它的。"""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@contextlib.asynccontextmanager
async def serve(context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """在 127.0.0.1 的一个空闲端口上提供 HTTPS，给出地址；退出时关闭服务器。"""
    if context is None:
        # 用到时才导入：拿这个文件配真正的证书用时，不需要 trustme
        from make_certs import ensure_certs

        ensure_certs()
        context = server_context()
    runner = web.AppRunner(create_app())
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = runner.addresses[0][1]
        yield f"https://{HOST}:{port}/"
    finally:
        await runner.cleanup()


async def fetch(session: aiohttp.ClientSession, url: str, **kwargs) -> None:
    """GET url，打印状态码和响应体；出错时打印异常，和回溯的最后一行一样。"""
    print(f"GET {url}")
    try:
        async with session.get(url, **kwargs) as resp:
            print(f"  {resp.status} {await resp.text()}")
    except aiohttp.ClientError as exc:
        print("  " + traceback.format_exception_only(exc)[-1].rstrip())


async def main() -> None:
    async with serve() as url, aiohttp.ClientSession() as session:
        await fetch(session, url)  # 默认设置：ssl=True


if __name__ == "__main__":
    asyncio.run(main())
