"""WebSocket 心跳：服务器定时发 PING，客户端不回应就断开连接，处理器记下原因。"""

import logging
import os

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

HEARTBEAT = web.AppKey("heartbeat", float)


async def echo(request: web.Request) -> web.WebSocketResponse:
    # 每隔 heartbeat 秒发一个 PING；发出后 heartbeat / 2 秒内没有回应，就断开连接
    ws = web.WebSocketResponse(heartbeat=request.app[HEARTBEAT])
    await ws.prepare(request)
    peer = request.remote
    log.info(f"{peer} 连上了")
    try:
        async for msg in ws:  # 一直读：PONG 也是在这里处理的
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type is WSMsgType.ERROR:
                log.warning(f"{peer} 出错：{msg.data!r}")
    finally:  # 处理器被取消时也会运行：在这里清理这个连接用到的资源
        code, exc = ws.close_code, ws.exception()
        log.info(f"{peer} 断开了，关闭码 {code}，异常 {exc!r}")
    return ws


def create_app(heartbeat: float = 30.0) -> web.Application:
    app = web.Application()
    app[HEARTBEAT] = heartbeat
    app.router.add_get("/ws", echo)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
