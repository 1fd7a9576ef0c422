"""ssl=False 不检查证书：别的 CA 签发、签给别的主机名的证书，也照样接受。"""

import asyncio
import ssl

import aiohttp
import trustme
from https_app import fetch, serve
from trust_ca import trusting


def impostor_context() -> ssl.SSLContext:
    """冒充者的证书：它自己的 CA 签发，签给 other.example。"""
    cert = trustme.CA().issue_cert("other.example")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


async def main() -> None:
    async with (
        serve() as real,
        serve(impostor_context()) as impostor,
        aiohttp.ClientSession() as session,
    ):
        for name, url in [("真的服务器", real), ("冒充者", impostor)]:
            print(f"—— {name}，ssl=False")
            await fetch(session, url, ssl=False)
            print(f"—— {name}，ssl=trusting()")
            await fetch(session, url, ssl=trusting())


if __name__ == "__main__":
    asyncio.run(main())
