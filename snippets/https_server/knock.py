"""像 curl https:// 那样，对只讲 HTTP 的 aiohttp 端口做 TLS 握手：服务器记下什么？"""

import asyncio
import contextlib
import logging
import ssl
import sys
import traceback
from collections.abc import AsyncIterator

from aiohttp import web
from app import create_app

ACCESS_LOG_FORMAT = '%a "%r" %s'  # 访问日志：对方地址、请求行、状态码


class OneLineErrors(logging.Formatter):
    """异常只写类型和消息（缩进四格），不写回溯。"""

    def formatException(self, exc_info) -> str:
        lines = traceback.format_exception_only(exc_info[1])
        return "".join(lines).rstrip("\n").replace("\n", "\n    ").join(["    ", ""])


def show_logs() -> None:
    """aiohttp 的日志从 DEBUG 级别起，用 logging 的默认格式打印到标准输出。"""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(OneLineErrors(logging.BASIC_FORMAT))
    logging.basicConfig(handlers=[handler])
    logging.getLogger("aiohttp").setLevel(logging.DEBUG)


def client_hello() -> bytes:
    """TLS 客户端连上之后发的第一段字节（ClientHello）：用 MemoryBIO 拿，不连网络。"""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    context = ssl.create_default_context()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):  # 等服务器回答：这里不等
        tls.do_handshake()
    return outgoing.read()


@contextlib.asynccontextmanager
async def serve_plain() -> AsyncIterator[int]:
    """在 127.0.0.1 的一个空闲端口上提供普通 HTTP（没有 ssl_context），给出端口。"""
    runner = web.AppRunner(create_app(), access_log_format=ACCESS_LOG_FORMAT)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    try:
        await site.start()
        yield site.port
    finally:
        await runner.cleanup()


async def send(port: int, data: bytes) -> str:
    """把 data 原样发给服务器，读到服务器关闭连接；返回回答的状态行。"""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    reply = await reader.read()
    writer.close()
    await writer.wait_closed()
    return reply.split(b"\r\n", 1)[0].decode()


async def main() -> None:
    show_logs()
    hello = client_hello()
    print(f"ClientHello 的前 3 个字节：{hello[:3]!r}")
    async with serve_plain() as port:
        print(f"发给 http://127.0.0.1:{port}/")
        print(f"服务器回答：{await send(port, hello)}")


if __name__ == "__main__":
    asyncio.run(main())
