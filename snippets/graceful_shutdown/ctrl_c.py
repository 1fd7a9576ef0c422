"""启动 app.py，开两个 WebSocket 和一个慢请求，然后像按 Ctrl+C 那样发 SIGINT。"""

import asyncio
import os
import signal
import socket
import sys

import aiohttp


async def main(app_file: str = "app.py", sig: int = signal.SIGINT) -> None:
    with socket.socket() as sock:  # 给服务器找一个空闲端口
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    server = await asyncio.create_subprocess_exec(
        sys.executable, app_file, env=env, stdout=asyncio.subprocess.PIPE
    )
    await server.stdout.readline()  # "======== Running on ... ========"

    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
        sockets = [await session.ws_connect("/ws") for _ in range(2)]
        report = await session.get("/report")  # 响应头到了：处理器正在干活
        server.send_signal(sig)

        for ws in sockets:
            msg = await ws.receive()
            print(f"WebSocket 收到：{msg.type.name} {msg.data} {msg.extra}")
        try:
            await session.get("/report")
        except aiohttp.ClientConnectorError:
            print("新的连接：被拒绝")
        print("/report:", report.status, repr(await report.text()))
    print(f"服务器退出码：{await server.wait()}")


if __name__ == "__main__":
    asyncio.run(main())
