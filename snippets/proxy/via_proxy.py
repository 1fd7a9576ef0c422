"""经过 HTTP 代理请求 targets.py 的两个目标。

代理地址从环境变量 PROXY_URL 读，凭据写在 URL 里，例如
PROXY_URL=http://user:secret@127.0.0.1:8888；没有设置时 proxy=None，直接连接。
"""

import asyncio
import os

import aiohttp
import targets


async def main() -> None:
    proxy = os.environ.get("PROXY_URL")
    async with targets.serve() as site, aiohttp.ClientSession() as session:
        for url in (site.http_url, site.https_url):
            async with session.get(url, proxy=proxy, ssl=site.ssl_context) as resp:
                print(url, "→", resp.status, await resp.text())


if __name__ == "__main__":
    asyncio.run(main())
