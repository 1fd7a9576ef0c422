"""环境变量 SSL_CERT_FILE：在 import aiohttp 之后才设置，默认设置看不到它。"""

import asyncio
import os
import ssl

import aiohttp
from https_app import fetch, serve


async def main() -> None:
    async with serve() as url, aiohttp.ClientSession() as session:
        os.environ["SSL_CERT_FILE"] = "ca.pem"  # import aiohttp 之后才设置
        print("—— 设置之后新建的 ssl.create_default_context()")
        await fetch(session, url, ssl=ssl.create_default_context())
        print("—— 默认设置（ssl=True）")
        await fetch(session, url)


if __name__ == "__main__":
    asyncio.run(main())
