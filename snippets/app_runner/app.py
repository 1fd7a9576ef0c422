"""在自己的 asyncio.run(main()) 里运行 aiohttp：两个端口、Unix socket、周期任务。"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger(__name__)


@dataclass
class Ticks:
    """周期任务的间隔（秒）和它已经运行的次数。"""

    interval: float
    count: int = 0


TICKS = web.AppKey("ticks", Ticks)


async def run_every(interval: float, job: Callable[[], Awaitable[None]]) -> None:
    """每隔 interval 秒运行一次 job，直到被取消。

    节拍从开始时刻往后推算，job 自己花的时间不会让后面的节拍越来越晚；
    某一次运行超过了间隔，错过的节拍就跳过。job 抛出的异常记进日志，下一拍照常运行。
    """
    loop = asyncio.get_running_loop()
    next_run = loop.time() + interval
    while True:
        await asyncio.sleep(next_run - loop.time())
        try:
            await job()
        except Exception:
            log.exception("周期任务出错")
        next_run += interval
        while next_run <= loop.time():
            next_run += interval


async def count_tick(app: web.Application) -> None:
    """周期任务要做的事。真实程序在这里清理过期数据、刷新缓存、上报指标……"""
    ticks = app[TICKS]
    ticks.count += 1
    print(f"周期任务：第 {ticks.count} 次")


async def periodic_task(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx：yield 之前启动周期任务，yield 之后取消它，并等它真正结束。"""
    task = asyncio.create_task(run_every(app[TICKS].interval, lambda: count_tick(app)))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    print("周期任务已停止")


async def hello(request: web.Request) -> web.Response:
    # 这个连接进来的本地地址：TCP 是 (host, port)，Unix socket 是文件路径
    where = request.get_extra_info("sockname")
    if isinstance(where, tuple):
        where = f"{where[0]}:{where[1]}"
    ticks = request.app[TICKS].count
    return web.Response(text=f"{where}：周期任务已运行 {ticks} 次\n")


def create_app(interval: float = 1.0) -> web.Application:
    app = web.Application()
    app[TICKS] = Ticks(interval)
    app.cleanup_ctx.append(periodic_task)
    app.router.add_get("/", hello)
    return app


async def main(app: web.Application, ports: Iterable[int], unix_path: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)  # Ctrl+C 只是设置这个事件

    runner = web.AppRunner(app)
    await runner.setup()  # 运行 cleanup_ctx 里 yield 之前的部分：周期任务开始
    try:
        sites = [web.TCPSite(runner, "127.0.0.1", port) for port in ports]
        sites.append(web.UnixSite(runner, unix_path))
        for site in sites:
            await site.start()
        print("在这些地址上提供服务：" + ", ".join(site.name for site in sites))
        await stop.wait()  # 你自己的其他 asyncio 代码也可以在这里运行
        print("收到停止信号，正在关闭……")
    finally:
        # 和 web.run_app() 停机时一样：关闭监听 socket，等进行中的请求做完，
        # 再运行 cleanup_ctx 里 yield 之后的部分
        await runner.cleanup()


if __name__ == "__main__":
    # 要监听的 TCP 端口，逗号分隔；可以用环境变量换掉：PORT=9000,9001 python app.py
    ports = [int(port) for port in os.environ.get("PORT", "8080,8081").split(",")]
    asyncio.run(main(create_app(), ports, "app.sock"))
    print("已退出")  # asyncio.run() 返回了：main() 正常结束
