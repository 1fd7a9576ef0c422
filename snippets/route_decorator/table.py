"""不用装饰器：处理器是普通函数，路由表集中写成一个列表。"""

import os

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=f"你好，{request.match_info['name']}\n")


async def create_order(request: web.Request) -> web.Response:
    order = await request.json()
    return web.json_response({"created": order}, status=201)


class StatusView(web.View):
    async def get(self) -> web.Response:
        return web.json_response({"status": "ok"})


def create_app() -> web.Application:
    app = web.Application()
    app.add_routes(
        [
            web.get("/hello/{name}", hello),
            web.post("/orders", create_order),
            web.view("/status", StatusView),
        ]
    )
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
