"""全局压缩：中间件为每个还没发出的响应打开压缩，编码按请求的 Accept-Encoding 选。"""

import os

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler


@web.middleware
async def compression_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    resp = await handler(request)
    # WebSocket 和已经开始发送的流式响应：响应头早已发出，不能再改
    if resp.prepared:
        return resp
    resp.headers.add(hdrs.VARY, hdrs.ACCEPT_ENCODING)
    # 没有响应体的 Response（例如 204）不能压缩：aiohttp 会断开连接
    if not (isinstance(resp, web.Response) and resp.body is None):
        resp.enable_compression()
    return resp


async def index(request: web.Request) -> web.Response:
    lines = [f"第 {i} 行：这段文字会被压缩后再发送\n" for i in range(200)]
    return web.Response(text="".join(lines))


async def stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_type = "text/plain"
    await resp.prepare(request)
    for i in range(3):
        await resp.write(f"第 {i} 块\n".encode())
    await resp.write_eof()
    return resp


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


def create_app() -> web.Application:
    app = web.Application(middlewares=[compression_middleware])
    app.router.add_get("/", index)
    app.router.add_get("/stream", stream)
    app.router.add_get("/ws", echo)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
