"""一个不再回应的客户端：握手之后什么也不发，PING 也不回。服务器多久之后发现？"""

import asyncio
import base64
import io
import logging
import os

from aiohttp import web
from app import create_app

OPCODES = {0x8: "关闭帧", 0x9: "PING", 0xA: "PONG"}


def handshake(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    ).encode()


async def main(heartbeat: float = 2.0) -> None:
    server_log = io.StringIO()  # 这里收集服务器日志，最后打印
    logging.getLogger("app").addHandler(logging.StreamHandler(server_log))
    logging.getLogger("app").setLevel(logging.INFO)

    runner = web.AppRunner(create_app(heartbeat))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # 端口 0：让系统挑一个空闲端口
    await site.start()
    host, port = runner.addresses[0][:2]
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(handshake("/ws"))
        head = await reader.readuntil(b"\r\n\r\n")
        print(head.split(b"\r\n")[0].decode())
        start = loop.time()
        while True:  # 只看服务器发来什么，一个字节也不回
            try:
                first, second = await reader.readexactly(2)  # 帧头
                payload = await reader.readexactly(second & 0x7F)
            except asyncio.IncompleteReadError:
                seconds = round(loop.time() - start)
                print(f"{seconds} 秒：连接被服务器关闭，没有收到关闭帧")
                break
            seconds = round(loop.time() - start)
            name = OPCODES.get(first & 0x0F, hex(first & 0x0F))
            print(f"{seconds} 秒：收到 {name}（{len(payload)} 字节），不回")
        writer.close()
    finally:
        await runner.cleanup()

    for line in server_log.getvalue().splitlines():
        print("服务器日志：", line, sep="")


if __name__ == "__main__":
    asyncio.run(main())
