"""带 HTTP Basic 认证请求一个地址。旧写法：aiohttp 3.14 起会发出两条弃用警告。"""

import asyncio
import os

import aiohttp


async def fetch(url: str, login: str, password: str) -> str:
    async with aiohttp.ClientSession() as session:
        auth = aiohttp.BasicAuth(login, password)
        async with session.get(url, auth=auth) as resp:
            resp.raise_for_status()
            return await resp.text()


if __name__ == "__main__":
    password = os.environ.get("API_PASSWORD", "")
    print(asyncio.run(fetch("http://127.0.0.1:8080/", "alice", password)))
