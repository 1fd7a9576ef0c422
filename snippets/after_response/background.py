"""把后续工作交给后台任务：应用记住每个任务，关闭时等它们做完或取消它们。"""

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

Notify = Callable[[str], Awaitable[None]]
NOTIFY = web.AppKey("notify", Notify)
GRACE = web.AppKey("grace", float)
TASKS = web.AppKey("tasks", set[asyncio.Task[None]])


async def send_notification(order_id: str) -> None:
    """模拟一个慢的外部调用，例如发邮件、调用 webhook。"""
    await asyncio.sleep(1)
    print(f"已发送通知：订单 {order_id}", flush=True)


async def create_order(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]
    tasks = request.app[TASKS]
    task = asyncio.create_task(request.app[NOTIFY](order_id))
    tasks.add(task)  # 保留引用：事件循环对任务只持有弱引用
    task.add_done_callback(tasks.discard)
    return web.json_response({"order": order_id, "status": "accepted"})


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    app[TASKS] = tasks = set()
    yield
    # 关闭时：最多等 GRACE 秒，还没做完的取消掉，并等它们真正结束
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=app[GRACE])
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def create_app(
    notify: Notify = send_notification, grace: float = 10.0
) -> web.Application:
    app = web.Application()
    app[NOTIFY] = notify
    app[GRACE] = grace
    app.cleanup_ctx.append(background_tasks)
    app.router.add_post("/orders/{order_id}", create_order)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
