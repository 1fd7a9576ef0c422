"""用 web.StreamResponse 手写服务器发送事件（SSE）。

POST /publish 发布一条消息，GET /events 把消息推给所有连着的客户端，
GET / 是一个用浏览器的 EventSource 显示消息的页面。
"""

import asyncio
import collections
import logging
import os
import re

from aiohttp import web

logger = logging.getLogger("sse")

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>服务器发送事件</title>
<p id="status">正在连接……</p>
<ul id="events"></ul>
<script>
  const status = document.getElementById("status");
  const list = document.getElementById("events");
  const source = new EventSource("/events");
  source.onopen = () => { status.textContent = "已连接"; };
  source.onerror = () => { status.textContent = "连接断开，等待重连"; };
  source.onmessage = (event) => {
    const item = document.createElement("li");
    item.textContent = `${event.lastEventId}：${event.data}`;
    list.append(item);
  };
</script>
"""

Event = tuple[int, str]  # (id, 数据)


class Broker:
    """每个客户端一个队列；最近的消息留一份，补发给带 Last-Event-ID 重连的客户端。"""

    def __init__(self, keep: int = 100) -> None:
        self.last_id = 0
        self.history: collections.deque[Event] = collections.deque(maxlen=keep)
        self.queues: set[asyncio.Queue[Event | None]] = set()

    def publish(self, data: str) -> int:
        self.last_id += 1
        self.history.append((self.last_id, data))
        for queue in self.queues:
            queue.put_nowait((self.last_id, data))
        return self.last_id

    def subscribe(self, after: int | None) -> tuple[asyncio.Queue, list[Event]]:
        """新的队列，和 id 大于 after 的历史消息（after 为 None 时不补发）。"""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.queues.add(queue)
        missed = [] if after is None else [e for e in self.history if e[0] > after]
        return queue, missed

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.queues.discard(queue)

    def close_all(self) -> None:
        """让每个连接的处理器结束响应（服务器关闭时调用）。"""
        for queue in self.queues:
            queue.put_nowait(None)


BROKER = web.AppKey("broker", Broker)
PING_INTERVAL = web.AppKey("ping_interval", float)
STREAM_SECONDS = web.AppKey("stream_seconds", float)
RETRY_MS = web.AppKey("retry_ms", int)


def format_event(event_id: int, data: str) -> bytes:
    """一条事件：一行 id，数据的每一行一个 data 字段，最后一个空行。"""
    lines = re.split(r"\r\n|\r|\n", data)  # 浏览器把这三种都当作换行
    fields = [f"id: {event_id}", *(f"data: {line}" for line in lines)]
    return ("\n".join(fields) + "\n\n").encode()


def last_event_id(request: web.Request) -> int | None:
    """请求头 Last-Event-ID 里的数字；没有这个头或者不是数字时为 None。"""
    try:
        return int(request.headers["Last-Event-ID"])
    except (KeyError, ValueError):
        return None


async def events(request: web.Request) -> web.StreamResponse:
    app = request.app
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await resp.prepare(request)  # 发出状态行和响应头，响应体还没有结束
    queue, missed = app[BROKER].subscribe(after=last_event_id(request))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + app[STREAM_SECONDS]
    try:
        await resp.write(f"retry: {app[RETRY_MS]}\n\n".encode())
        for event_id, data in missed:
            await resp.write(format_event(event_id, data))
        while (left := deadline - loop.time()) > 0:
            try:
                wait = min(app[PING_INTERVAL], left)
                item = await asyncio.wait_for(queue.get(), wait)
            except asyncio.TimeoutError:
                await resp.write(b": ping\n\n")  # 注释行：浏览器不理会，只为发现断开
                continue
            if item is None:  # 服务器正在关闭
                break
            await resp.write(format_event(*item))  # 每次 write() 都马上发出去
    except ConnectionResetError as exc:  # 客户端走了：下一次 write() 才知道
        logger.info("客户端断开：%r", exc)
    finally:
        app[BROKER].unsubscribe(queue)
    return resp


async def publish(request: web.Request) -> web.Response:
    # 演示用：真实项目里，发布消息的接口要检查权限
    try:
        text = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(text="消息必须是 UTF-8 文本\n") from None
    return web.json_response({"id": request.app[BROKER].publish(text)})


async def index(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def close_streams(app: web.Application) -> None:
    app[BROKER].close_all()


def create_app(
    ping_interval: float = 15.0, stream_seconds: float = 300.0, retry_ms: int = 3000
) -> web.Application:
    app = web.Application()
    app[BROKER] = Broker()
    app[PING_INTERVAL] = ping_interval  # 没有消息时，每隔多少秒发一行注释
    app[STREAM_SECONDS] = stream_seconds  # 一条连接最多推送多少秒，然后结束响应
    app[RETRY_MS] = retry_ms  # 告诉浏览器：连接结束后等多少毫秒再重连
    app.on_shutdown.append(close_streams)
    app.router.add_get("/", index)
    app.router.add_get("/events", events)
    app.router.add_post("/publish", publish)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    port = int(os.environ.get("PORT", "8080"))
    web.run_app(create_app(), host="127.0.0.1", port=port)
