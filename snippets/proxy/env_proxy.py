"""trust_env=True：代理从环境变量 HTTP_PROXY、HTTPS_PROXY、NO_PROXY 读。

例如 HTTP_PROXY=http://user:secret@127.0.0.1:8888（HTTPS_PROXY 同样），
NO_PROXY=localhost。
"""

import asyncio

import aiohttp
import targets


async def main() -> None:
    async with targets.serve() as site:
        by_name = site.http_url.replace("127.0.0.1", "localhost")
        for trust_env in (False, True):
            async with aiohttp.ClientSession(trust_env=trust_env) as session:
                for url in (site.http_url, site.https_url, by_name):
                    async with session.get(url, ssl=site.ssl_context) as resp:
                        print(f"trust_env={trust_env} {url} → {await resp.text()}")


if __name__ == "__main__":
    asyncio.run(main())
