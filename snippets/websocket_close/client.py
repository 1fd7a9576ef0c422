"""alice 开两个连接、bob 开一个；alice 登出后看看谁被关掉了。"""

from __future__ import annotations

import asyncio

import aiohttp


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def until_closed(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    while not ws.closed:  # 一直读，直到收到关闭帧
        await ws.receive()
    return ws.close_code


async def main(base_url: str) -> None:
    async with aiohttp.ClientSession(base_url) as session:
        alice = bearer("demo-token-alice")
        bob = await session.ws_connect("/echo", headers=bearer("demo-token-bob"))
        alice_sockets = [
            await session.ws_connect("/echo", headers=alice) for _ in range(2)
        ]
        readers = [asyncio.create_task(until_closed(ws)) for ws in alice_sockets]

        async with session.post("/logout", headers=alice) as resp:
            print("POST /logout ->", resp.status, await resp.json())
        for code in await asyncio.gather(*readers):
            print(f"alice 的连接已关闭，关闭码 {code}")

        await bob.send_str("bob 还在吗？")
        print(f"bob 收到回声：{await bob.receive_str()}")
        await bob.close()


if __name__ == "__main__":
    asyncio.run(main("http://127.0.0.1:8080"))
