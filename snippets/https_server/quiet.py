"""日志过滤器：不讲 HTTP 的连接（TLS 握手、扫描器）留下的日志不记，其他的照常记。"""

import asyncio
import logging

from aiohttp.http_exceptions import BadHttpMethod
from knock import client_hello, send, serve_plain, show_logs


class NotHTTPFilter(logging.Filter):
    """丢掉两种记录：

    - aiohttp.server 上异常是 BadHttpMethod 的：请求行的开头就不是 HTTP 方法；
    - aiohttp.access 上 "UNKNOWN / HTTP/1.0" 400 那种：aiohttp 没能解析的请求，
      原因记在 aiohttp.server 上（不是 BadHttpMethod 的照常在 ERROR 级别留着）。
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BadHttpMethod):
            return False
        # 访问日志格式里有 %r、%s 时，记录带着 first_request_line 和 response_status
        unparsed = getattr(record, "first_request_line", None) == "UNKNOWN / HTTP/1.0"
        return not (unparsed and getattr(record, "response_status", None) == 400)


def install() -> None:
    """给 aiohttp 的两个日志器装上过滤器。"""
    not_http = NotHTTPFilter()
    for name in ("aiohttp.server", "aiohttp.access"):
        logging.getLogger(name).addFilter(not_http)


KNOCKS = [
    ("TLS 握手", client_hello()),
    ("SSH 客户端", b"SSH-2.0-OpenSSH_9.6\r\n"),
    ("请求头里有空格的名字", b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n"),
    ("正常的请求", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
]


async def main() -> None:
    show_logs()
    install()
    async with serve_plain() as port:
        for name, data in KNOCKS:
            print(f"—— {name}")
            print(f"服务器回答：{await send(port, data)}")


if __name__ == "__main__":
    asyncio.run(main())
