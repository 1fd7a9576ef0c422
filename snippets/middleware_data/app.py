"""中间件把请求 ID 存进 request，处理器用同一个带类型的键取出来。"""

import os
import re
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

REQUEST_ID = web.RequestKey("request_id", str)
VALID_ID = re.compile(r"[0-9A-Za-z-]{1,64}")  # 客户端给的 ID 只接受这种格式


@web.middleware
async def request_id_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    given = request.headers.get("X-Request-ID", "")
    request_id = given if VALID_ID.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    response = await handler(request)
    response.headers["X-Request-ID"] = request_id
    return response


async def hello(request: web.Request) -> web.Response:
    request_id = request[REQUEST_ID]  # 类型检查器知道它是 str
    return web.Response(text=f"请求 ID：{request_id}\n")


def create_app() -> web.Application:
    app = web.Application(middlewares=[request_id_middleware])
    app.router.add_get("/", hello)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
