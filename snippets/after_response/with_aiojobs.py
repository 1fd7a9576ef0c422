"""用 aiojobs 管理后台任务：关闭应用时它先等任务做完，超时再取消。"""

import asyncio
import os
from collections.abc import Awaitable, Callable

import aiojobs.aiohttp
from aiohttp import web

Notify = Callable[[str], Awaitable[None]]
NOTIFY = web.AppKey("notify", Notify)


async def send_notification(order_id: str) -> None:
    """模拟一个慢的外部调用，例如发邮件、调用 webhook。"""
    await asyncio.sleep(1)
    print(f"已发送通知：订单 {order_id}", flush=True)


async def create_order(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]
    await aiojobs.aiohttp.spawn(request, request.app[NOTIFY](order_id))
    return web.json_response({"order": order_id, "status": "accepted"})


def create_app(
    notify: Notify = send_notification, grace: float = 10.0
) -> web.Application:
    app = web.Application()
    app[NOTIFY] = notify
    aiojobs.aiohttp.setup(app, wait_timeout=grace)
    app.router.add_post("/orders/{order_id}", create_order)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
