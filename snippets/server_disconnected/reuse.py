"""同一个会话，等服务器关掉空闲连接之后再发请求：看 aiohttp 什么时候会报错。"""

import asyncio
import time
import traceback
from types import SimpleNamespace

import aiohttp
from idle_server import IDLE_TIMEOUT, IdleServer

PAUSE = 1.0  # 比服务器的空闲时限长，比客户端的 keepalive_timeout（默认 15 秒）短


async def on_reuse(session, context: SimpleNamespace, params) -> None:
    print("  从连接池取出一个连接")


async def on_create(session, context: SimpleNamespace, params) -> None:
    print("  新建一个连接")


def tracing() -> aiohttp.TraceConfig:
    """每次从连接池取出连接、每次新建连接，都打印一行。"""
    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(on_reuse)
    trace.on_connection_create_end.append(on_create)
    return trace


def hold_the_loop(seconds: float) -> None:
    """演示用：time.sleep() 占住事件循环，这期间它读不到任何 socket 事件。"""
    print(f"—— time.sleep({seconds})：事件循环被占住")
    time.sleep(seconds)


async def send(session: aiohttp.ClientSession, method: str) -> None:
    print(f"{method} /")
    data = b"x" * 10 if method == "POST" else None
    try:
        async with session.request(method, "/", data=data) as resp:
            print(f"  {resp.status}，{await resp.text()}")
    except aiohttp.ClientError as exc:
        print("  " + traceback.format_exception_only(exc)[-1].rstrip())


async def main(idle_timeout: float = IDLE_TIMEOUT, pause: float = PAUSE) -> None:
    trace = tracing()
    with IdleServer(idle_timeout) as server:
        async with aiohttp.ClientSession(server.url, trace_configs=[trace]) as session:
            await send(session, "POST")
            await send(session, "POST")

            print(f"—— await asyncio.sleep({pause})：事件循环空着")
            await asyncio.sleep(pause)
            await send(session, "POST")

            for method in ("POST", "GET"):
                await send(session, method)  # 用过的连接回到池里
                hold_the_loop(pause)
                await send(session, method)


if __name__ == "__main__":
    asyncio.run(main())
