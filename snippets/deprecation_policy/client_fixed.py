"""同一个请求的新写法：自己生成 Authorization 头，不再用 BasicAuth 和 auth=。"""

import asyncio
import os

import aiohttp


async def fetch(url: str, login: str, password: str) -> str:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": aiohttp.encode_basic_auth(login, password)}
        async with session.get(url, headers=headers) as resp:
            resp.raise_for_status()
            return await resp.text()


if __name__ == "__main__":
    password = os.environ.get("API_PASSWORD", "")
    print(asyncio.run(fetch("http://127.0.0.1:8080/", "alice", password)))
