"""换两种连接器设置，重做 reuse.py 里出错的那一步：池里的连接放久了再用。"""

import asyncio

import aiohttp
from idle_server import IDLE_TIMEOUT, IdleServer
from reuse import PAUSE, hold_the_loop, send, tracing


async def main(idle_timeout: float = IDLE_TIMEOUT, pause: float = PAUSE) -> None:
    trace = tracing()
    settings = [
        # 比服务器的空闲时限短：客户端先放弃这个连接
        {"keepalive_timeout": idle_timeout / 2},
        # 每个响应之后就关闭连接，池里什么也不留
        {"force_close": True},
    ]
    with IdleServer(idle_timeout) as server:
        for setting in settings:
            print(f"==== TCPConnector({setting})")
            connector = aiohttp.TCPConnector(**setting)
            async with aiohttp.ClientSession(
                server.url, connector=connector, trace_configs=[trace]
            ) as session:
                await send(session, "POST")
                await send(session, "POST")
                hold_the_loop(pause)
                await send(session, "POST")


if __name__ == "__main__":
    asyncio.run(main())
