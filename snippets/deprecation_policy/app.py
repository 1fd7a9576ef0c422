"""演示用的服务器：读出请求带来的 HTTP Basic 凭据，回报用户名（不校验密码）。"""

import base64
import os

from aiohttp import web


async def whoami(request: web.Request) -> web.Response:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        login = base64.b64decode(encoded, validate=True).decode().partition(":")[0]
    except ValueError:  # 不是 ASCII、不是 base64，或解出来不是 UTF-8
        login = ""
    if scheme.lower() != "basic" or not login:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="demo"'})
    return web.Response(text=f"服务器收到的用户名：{login}")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", whoami)
    return app


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    web.run_app(create_app(), host="127.0.0.1", port=port)
