"""任意方法、以 /path/to/ 开头的请求都交给同一个处理器。"""

import os

from aiohttp import web


async def sink_handler(request: web.Request) -> web.Response:
    tail = request.match_info["tail"]
    return web.json_response({"method": request.method, "tail": tail})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/path/to/{tail:.+}", sink_handler)
    return app


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    web.run_app(create_app(), host="127.0.0.1", port=port)
