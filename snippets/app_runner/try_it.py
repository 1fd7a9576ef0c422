"""启动 app.py，等周期任务跑两次，从三个地址各请求一次，再像按 Ctrl+C 那样发 SIGINT。"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import aiohttp


def free_ports(count: int) -> list[int]:
    """让系统挑几个空闲端口。"""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


async def get(url: str, connector: aiohttp.BaseConnector | None = None) -> str:
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(url) as resp:
            return f"{resp.status} {(await resp.text()).strip()}"


async def main(app_file: str = "app.py", sig: int = signal.SIGINT) -> None:
    port, second_port = free_ports(2)
    env = {**os.environ, "PORT": f"{port},{second_port}"}
    env["PYTHONUNBUFFERED"] = "1"  # app.py 的输出一行一行地到达
    server = await asyncio.create_subprocess_exec(
        sys.executable, app_file, env=env, stdout=asyncio.subprocess.PIPE
    )
    while True:  # 读 app.py 的输出，直到周期任务跑完第 2 次
        raw = await server.stdout.readline()
        if not raw:
            sys.exit(f"app.py 提前退出了，退出码：{await server.wait()}")
        line = raw.decode().rstrip()
        print(f"[app.py] {line}")
        if line == "周期任务：第 2 次":
            break

    for p in (port, second_port):
        print(f"GET http://127.0.0.1:{p}/ ->", await get(f"http://127.0.0.1:{p}/"))
    unix = aiohttp.UnixConnector(path="app.sock")  # 主机名随便写，连接走 socket 文件
    print("GET unix:app.sock ->", await get("http://localhost/", unix))

    print(f"发送 {signal.Signals(sig).name}")
    server.send_signal(sig)
    async for line in server.stdout:
        print(f"[app.py] {line.decode().rstrip()}")
    print(f"app.py 的退出码：{await server.wait()}")


if __name__ == "__main__":
    asyncio.run(main())
