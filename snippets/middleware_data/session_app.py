"""aiohttp-session：它的中间件和 get_session() 也是把数据挂在 request 上。"""

import os

import aiohttp_session
from aiohttp import web
from aiohttp_session import SimpleCookieStorage, get_session


async def visits(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["visits"] = session.get("visits", 0) + 1
    return web.Response(text=f"第 {session['visits']} 次访问\n")


def create_app() -> web.Application:
    app = web.Application()
    # 只用于演示：SimpleCookieStorage 把会话明文放在 cookie 里，不加密也不签名
    aiohttp_session.setup(app, SimpleCookieStorage())
    app.router.add_get("/", visits)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
