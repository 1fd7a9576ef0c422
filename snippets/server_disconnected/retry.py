"""客户端中间件：幂等的请求遇到断开时，退避后重试，最多试几次。"""

import asyncio
import logging
import sys

import aiohttp
from idle_server import IdleServer

log = logging.getLogger(__name__)

# RFC 9110 第 9.2.2 节列出的幂等方法；POST、PATCH 不在其中
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# 请求发出去了、却没有拿到完整的响应（也包括连不上：ClientConnectorError）
RETRY_ON = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


def retry_idempotent(
    attempts: int = 3, backoff: float = 0.2
) -> aiohttp.ClientMiddlewareType:
    """最多试 attempts 次；第 n 次失败后等 backoff * 2**(n-1) 秒。"""

    async def middleware(
        req: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if req.method not in IDEMPOTENT:
            return await handler(req)  # 不知道服务器做没做，不能重发
        for attempt in range(1, attempts):
            try:
                return await handler(req)
            except RETRY_ON as exc:
                delay = backoff * 2 ** (attempt - 1)
                log.warning(
                    "%s %s 第 %d 次失败（%s），%s 秒后重试",
                    req.method,
                    req.url.path,
                    attempt,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
        return await handler(req)  # 最后一次：失败就把异常交给调用者

    return middleware


async def send(session: aiohttp.ClientSession, method: str, data: bytes | None) -> None:
    try:
        async with session.request(method, "/", data=data) as resp:
            print(f"{method}：{resp.status}，{await resp.text()}")
    except aiohttp.ClientError as exc:
        print(f"{method}：{type(exc).__name__}: {exc}")


async def main(backoff: float = 0.2) -> None:
    middleware = retry_idempotent(attempts=3, backoff=backoff)
    for method, data, drop in [
        ("GET", None, 2),  # 前两次断开，第三次成功
        ("PUT", b"x" * 1000, 2),  # 请求体每次都完整地重发
        ("POST", b"x" * 1000, 2),  # 不重试
        ("GET", None, 9),  # 每次都断开
    ]:
        print(f"—— 服务器断开前 {drop} 个请求")
        with IdleServer(drop=drop) as server:
            async with aiohttp.ClientSession(
                server.url, middlewares=[middleware]
            ) as session:
                await send(session, method, data)
        print("服务器收到：")
        for line in server.log:
            print(f"  {line}")


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, format="  %(message)s")
    asyncio.run(main())
