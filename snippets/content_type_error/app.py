"""用各种方式回 JSON 的服务器：看看 resp.json() 遇到每一种会怎样。"""

import json
import os

from aiohttp import hdrs, web

ITEM = {"id": 1, "name": "苹果"}
# 反向代理（比如 nginx）连不上后端时回的那种 HTML 错误页
BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
    "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


async def ok(request: web.Request) -> web.Response:
    """正确的 JSON：Content-Type 是 application/json。"""
    return web.json_response(ITEM)


async def problem(request: web.Request) -> web.Response:
    """404，错误说明是 JSON，类型是 application/problem+json（RFC 9457）。"""
    details = {"title": "没有这件商品", "status": 404}
    return web.json_response(
        details, status=404, content_type="application/problem+json"
    )


async def html_json(request: web.Request) -> web.Response:
    """响应体是 JSON，Content-Type 却写成了 text/html。"""
    return web.Response(text=json.dumps(ITEM), content_type="text/html")


async def no_type(request: web.Request) -> web.Response:
    """响应体是 JSON，没有 Content-Type（由 drop_content_type 删掉）。"""
    return web.Response(body=json.dumps(ITEM).encode())


async def broken(request: web.Request) -> web.Response:
    """类型是 application/json，响应体却只发了一半。"""
    return web.Response(text='{"id": 1, "name": ', content_type="application/json")


async def bad_gateway(request: web.Request) -> web.Response:
    """502，响应体是代理的 HTML 错误页。"""
    return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")


async def drop_content_type(request: web.Request, response: web.StreamResponse):
    # aiohttp 在 prepare() 时给有响应体却没有类型的响应补上
    # application/octet-stream；这个信号在那之后、发出响应头之前运行
    if request.path == "/no-type":
        response.headers.popall(hdrs.CONTENT_TYPE, None)


def create_app() -> web.Application:
    app = web.Application()
    app.on_response_prepare.append(drop_content_type)
    app.router.add_get("/ok", ok)
    app.router.add_get("/problem", problem)
    app.router.add_get("/html-json", html_json)
    app.router.add_get("/no-type", no_type)
    app.router.add_get("/broken", broken)
    app.router.add_get("/bad-gateway", bad_gateway)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
