"""本机试验用的目标网站：同一个 aiohttp 应用，HTTP 和 HTTPS 各一个端口。

它回答自己看到了什么：对端地址、Via 请求头、有没有收到 Proxy-Authorization。
HTTPS 的证书由 trustme 生成的 CA 签发，客户端用 ssl_context 信任这个 CA。
"""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import trustme
from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    via = request.headers.get("Via", "无")
    proxy_auth = "有" if "Proxy-Authorization" in request.headers else "无"
    return web.Response(
        text=f"目标服务器收到 {request.method} {request.path}，对端 {request.remote}，"
        f"Via: {via}，Proxy-Authorization: {proxy_auth}"
    )


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", echo)
    return app


@dataclass
class Targets:
    http_url: str
    https_url: str
    ssl_context: ssl.SSLContext  # 客户端用它信任目标的证书


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[Targets]:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    runner = web.AppRunner(create_app())
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context).start()
        (_, http_port), (_, https_port) = runner.addresses[:2]
        yield Targets(
            f"http://127.0.0.1:{http_port}/",
            f"https://127.0.0.1:{https_port}/",
            client_context,
        )
    finally:
        await runner.cleanup()


async def main() -> None:
    async with serve() as targets, aiohttp.ClientSession() as session:
        for url in (targets.http_url, targets.https_url):
            async with session.get(url, ssl=targets.ssl_context) as resp:
                print(url, "→", resp.status, await resp.text())


if __name__ == "__main__":
    asyncio.run(main())
