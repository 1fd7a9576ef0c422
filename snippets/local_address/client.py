"""先不绑定、再绑定到 127.0.0.2，各发一个请求，打印服务器看到的来源地址。"""

import asyncio

import aiohttp


async def seen_by_server(url: str, local_ip: str | None) -> str:
    local_addr = None if local_ip is None else (local_ip, 0)  # 端口 0：由系统挑选
    connector = aiohttp.TCPConnector(local_addr=local_addr)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(url) as resp:
            return (await resp.json())["remote"]


async def main(url: str, local_ip: str) -> None:
    print(f"不绑定：服务器看到 {await seen_by_server(url, None)}")
    print(f"绑定 {local_ip}：服务器看到 {await seen_by_server(url, local_ip)}")


if __name__ == "__main__":
    asyncio.run(main("http://127.0.0.1:8080/", "127.0.0.2"))
