"""先把完整的响应发给客户端，再在同一个处理器里做后续工作。"""

import asyncio
import os
from collections.abc import Awaitable, Callable

from aiohttp import web

Notify = Callable[[str], Awaitable[None]]
NOTIFY = web.AppKey("notify", Notify)


async def send_notification(order_id: str) -> None:
    """模拟一个慢的外部调用，例如发邮件、调用 webhook。"""
    await asyncio.sleep(1)
    print(f"已发送通知：订单 {order_id}", flush=True)


async def create_order(request: web.Request) -> web.StreamResponse:
    order_id = request.match_info["order_id"]
    resp = web.json_response({"order": order_id, "status": "accepted"})
    await resp.prepare(request)
    await resp.write_eof()  # 到这里客户端已经收到了完整的响应
    await request.app[NOTIFY](order_id)  # 仍然在这个处理器的任务里运行
    return resp


def create_app(notify: Notify = send_notification) -> web.Application:
    app = web.Application()
    app[NOTIFY] = notify
    app.router.add_post("/orders/{order_id}", create_order)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
