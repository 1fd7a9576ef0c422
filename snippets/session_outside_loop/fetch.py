"""一次性脚本：在 main() 里用 async with 创建并关闭 ClientSession。"""

import asyncio

import aiohttp


async def main(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            print(resp.status, await resp.text(), end="")


if __name__ == "__main__":
    asyncio.run(main("http://127.0.0.1:8080/"))
