"""一个保持连接、空闲一会儿就关掉连接的 HTTP/1.1 服务器（asyncio 原始 socket）。

它在后台线程里运行自己的事件循环，所以客户端的事件循环被占住时，它照样按时关闭连接。
drop=N：前 N 个请求读完就关闭连接、不回答，模拟处理请求时崩溃的后端。
"""

import asyncio
import socket
import threading
import time

IDLE_TIMEOUT = 0.5  # 连接空闲这么多秒就关闭


class IdleServer:
    def __init__(self, idle_timeout: float = IDLE_TIMEOUT, drop: int = 0) -> None:
        self.idle_timeout = idle_timeout
        self.drop = drop
        self.log: list[str] = []  # 服务器收到的每个请求
        self._connections = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),))

    def __enter__(self) -> "IdleServer":
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        async with server:
            self._ready.set()
            await self._stop.wait()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._connections += 1
        number, served = self._connections, 0
        try:
            while True:
                try:
                    # 等下一个请求最多 idle_timeout 秒，等不到就关闭连接
                    head = await asyncio.wait_for(
                        reader.readuntil(b"\r\n\r\n"), self.idle_timeout
                    )
                except (asyncio.TimeoutError, asyncio.IncompleteReadError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                served += 1
                self.log.append(f"{method} {path}，{length} 字节，连接 {number}")
                if len(self.log) <= self.drop:
                    return  # 读完请求，不回答，直接关闭
                text = f"连接 {number} 的第 {served} 个请求，收到 {len(body)} 字节"
                data = text.encode()
                head = (
                    b"HTTP/1.1 200 OK\r\n"
                    b"Content-Type: text/plain; charset=utf-8\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(data)
                )
                # HEAD 的响应没有响应体
                writer.write(head if method == "HEAD" else head + data)
                await writer.drain()
        finally:
            writer.close()


def main() -> None:
    """不用 aiohttp，直接用 socket 看服务器怎样对待一个空闲的连接。"""
    with IdleServer() as server:
        host, port = server.url.removeprefix("http://").split(":")
        with (
            socket.create_connection((host, int(port))) as sock,
            sock.makefile("rb") as reply,
        ):
            started = time.monotonic()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            lines = iter(reply.readline, b"\r\n")  # 读到空行：响应头结束
            head = [line.decode().rstrip("\r\n") for line in lines]
            length = int(head[-1].split(":")[1])  # 最后一行是 Content-Length
            print("\n".join(head), reply.read(length).decode(), sep="\n\n")
            rest = sock.recv(4096)  # 阻塞，直到服务器关闭连接
            waited = time.monotonic() - started
        longer = "超过" if waited >= server.idle_timeout else "不到"
        print(f"发出请求{longer} {server.idle_timeout} 秒后，recv() 返回 {rest!r}")


if __name__ == "__main__":
    main()
