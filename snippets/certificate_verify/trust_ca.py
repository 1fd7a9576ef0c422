"""信任 ca.pem：做一个信任它的 SSLContext，用 ssl= 交给 aiohttp。"""

import asyncio
import ssl

import aiohttp
from https_app import HOST, fetch, serve


def trusting(cafile: str = "ca.pem") -> ssl.SSLContext:
    """只信任 cafile 里的 CA：系统自带的 CA 不再信任。"""
    return ssl.create_default_context(cafile=cafile)


def trusting_also(cafile: str = "ca.pem") -> ssl.SSLContext:
    """系统自带的 CA 照常信任，再加上 cafile 里的 CA。"""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=cafile)
    return context


async def main() -> None:
    async with serve() as url:
        async with aiohttp.ClientSession() as session:
            print("—— 一个请求：get(url, ssl=trusting())")
            await fetch(session, url, ssl=trusting())

        connector = aiohttp.TCPConnector(ssl=trusting_also())
        async with aiohttp.ClientSession(connector=connector) as session:
            print("—— 会话的每个请求：TCPConnector(ssl=trusting_also())")
            await fetch(session, url)
            print("—— 同一个服务器，地址里写 IP，不写证书上的主机名")
            await fetch(session, url.replace(HOST, "127.0.0.1"))


if __name__ == "__main__":
    asyncio.run(main())
