"""同一个请求，用 async with 管理会话：离开代码块时，会话连同它的连接一起关闭。"""

import asyncio

import aiohttp


async def fetch_text(url: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            return await resp.text()


async def main(url: str) -> None:
    text = await fetch_text(url)
    print(f"服务器回答：{text}")


if __name__ == "__main__":
    asyncio.run(main("http://127.0.0.1:8080/"))
