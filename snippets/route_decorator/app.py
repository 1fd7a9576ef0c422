"""用 web.RouteTableDef 的装饰器登记路由，写法接近 Flask 的 @app.route。"""

import os

from aiohttp import web

routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return web.Response(text="首页\n")


@routes.get("/users/{name}")
async def show_user(request: web.Request) -> web.Response:
    return web.json_response({"user": request.match_info["name"]})


@routes.post("/echo")
async def echo(request: web.Request) -> web.Response:
    return web.json_response({"received": await request.text()})


@routes.view("/items/{id}")
class ItemView(web.View):
    """一个路径，多个方法：GET 与 DELETE 各是一个方法，其余方法得到 405。"""

    async def get(self) -> web.Response:
        return web.json_response({"id": self.request.match_info["id"]})

    async def delete(self) -> web.Response:
        return web.json_response({"deleted": self.request.match_info["id"]})


def create_app() -> web.Application:
    app = web.Application()
    app.add_routes(routes)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
