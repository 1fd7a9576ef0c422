"""经过 SOCKS5 代理：aiohttp 自己不支持 SOCKS，由 aiohttp-socks 的 ProxyConnector 连接。

代理地址从环境变量 SOCKS_URL 读，例如 socks5://user:secret@127.0.0.1:1080。
"""

import asyncio
import os

import aiohttp
import targets
from aiohttp_socks import ProxyConnector, ProxyError
from yarl import URL


async def main() -> None:
    socks_url = os.environ.get("SOCKS_URL")
    if not socks_url:
        print("没有设置 SOCKS_URL：先起一个 SOCKS5 代理，再把它的地址放进 SOCKS_URL")
        return
    async with targets.serve() as site:
        connector = ProxyConnector.from_url(socks_url)
        async with aiohttp.ClientSession(connector=connector) as session:
            for url in (site.http_url, site.https_url):
                async with session.get(url, ssl=site.ssl_context) as resp:
                    print(url, "→", resp.status, await resp.text())

        wrong = {
            "不带凭据": URL(socks_url).with_user(None),
            "密码错了": URL(socks_url).with_password("wrong"),
        }
        for name, proxy in wrong.items():
            connector = ProxyConnector.from_url(str(proxy))
            async with aiohttp.ClientSession(connector=connector) as session:
                try:
                    await session.get(site.http_url)  # 代理拒绝，不会有响应
                except ProxyError as exc:
                    print(f"{name}：{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    asyncio.run(main())
