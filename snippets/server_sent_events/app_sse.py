"""用 aiohttp-sse 推送一个任务的进度；断线重连时，从 Last-Event-ID 之后那一步接着报。"""

import asyncio
import logging
import os

from aiohttp import web
from aiohttp_sse import sse_response

logger = logging.getLogger("sse")

STEPS = 4
STEP_SECONDS = web.AppKey("step_seconds", float)


def steps_done(last_event_id: str | None) -> int:
    """客户端已经收到的步数：Last-Event-ID 的值，没有或者不对时从头开始。"""
    try:
        return min(max(int(last_event_id or 0), 0), STEPS)
    except ValueError:
        return 0


async def progress(request: web.Request) -> web.StreamResponse:
    # sse_response 设好响应头、发出它们，之后默认每 15 秒发一行 ": ping"
    async with sse_response(request) as resp:
        try:
            for step in range(steps_done(resp.last_event_id) + 1, STEPS + 1):
                await asyncio.sleep(request.app[STEP_SECONDS])  # 假装在干活
                await resp.send(f"已完成 {step * 100 // STEPS}%", id=str(step))
            await resp.send("全部完成", event="done")
        except ConnectionResetError as exc:  # 客户端走了：send() 时才知道
            logger.info("客户端断开：%r", exc)
        return resp


def create_app(step_seconds: float = 0.25) -> web.Application:
    app = web.Application()
    app[STEP_SECONDS] = step_seconds
    app.router.add_get("/progress", progress)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    port = int(os.environ.get("PORT", "8080"))
    web.run_app(create_app(), host="127.0.0.1", port=port)
