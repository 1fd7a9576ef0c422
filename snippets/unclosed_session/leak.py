"""忘了关闭 ClientSession：请求成功了，程序却打印 “Unclosed client session”。"""

import asyncio

import aiohttp


async def fetch_text(url: str) -> str:
    session = aiohttp.ClientSession()  # 创建了会话，却没有关闭它
    async with session.get(url) as resp:
        return await resp.text()


async def main(url: str) -> None:
    text = await fetch_text(url)
    print(f"服务器回答：{text}")


if __name__ == "__main__":
    asyncio.run(main("http://127.0.0.1:8080/"))
