"""绑定到一个不属于本机的地址：在 bind() 这一步就失败，连接根本没有发出。"""

import asyncio
import errno

import aiohttp


async def main(url: str, local_ip: str) -> None:
    connector = aiohttp.TCPConnector(local_addr=(local_ip, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            async with session.get(url) as resp:
                print(f"从 {local_ip} 连接成功：HTTP {resp.status}")
        except aiohttp.ClientConnectorError as exc:
            print(f"{type(exc).__name__}: {exc}")
            code = exc.os_error.errno
            print(f"errno {code}（{errno.errorcode[code]}）")


if __name__ == "__main__":
    asyncio.run(main("http://127.0.0.1:8080/", "203.0.113.1"))
