"""GET / 回答收到的请求有多大。用 python app.py 运行时，放宽了请求行和请求头的上限。"""

import os

from aiohttp import web

# aiohttp 服务器的默认值：max_line_size=8190，max_field_size=8190，max_headers=128
LIMITS = {"max_line_size": 16384, "max_field_size": 16384, "max_headers": 256}


async def sizes(request: web.Request) -> web.Response:
    cookie = request.headers.get("Cookie", "")
    return web.Response(
        text=f"URL {len(request.raw_path)} 字节，Cookie {len(cookie)} 字节，"
        f"{len(request.headers)} 个请求头"
    )


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", sizes)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(),
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8080")),
        **LIMITS,  # 交给 AppRunner，再交给每个连接的 HTTP 解析器
    )
