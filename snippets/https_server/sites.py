"""AppRunner + TCPSite：同一个应用，一个 HTTPS 端口，一个普通 HTTP 端口。"""

import asyncio
import ssl

import aiohttp
from aiohttp import web
from app import create_app, server_context
from make_certs import ensure_certs


async def main() -> None:
    ensure_certs()  # 本页的演示：还没有证书就先做一套
    runner = web.AppRunner(create_app())
    await runner.setup()
    sites = [
        web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context()),
        web.TCPSite(runner, "127.0.0.1", 0),  # 没有 ssl_context：普通的 HTTP
    ]
    try:
        for site in sites:
            await site.start()  # 端口 0：系统挑一个空闲的端口
        trusting = ssl.create_default_context(cafile="ca.pem")
        async with aiohttp.ClientSession() as session:
            for site in sites:
                async with session.get(site.name, ssl=trusting) as resp:
                    print(
                        f"GET {site.name} → {resp.status} {await resp.text()}", end=""
                    )
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
