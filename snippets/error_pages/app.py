"""错误页中间件：/api/ 下的错误回 JSON，其他地址回 HTML；意外的异常变成 500。"""

import html
import json
import logging
import os
from functools import partial

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("app")

API_PREFIX = "/api/"
# 没有自己写 text 的 HTTPException 用这些说明；{method} 换成请求的方法
MESSAGES = {
    400: "请求的格式不对",
    401: "需要先登录",
    403: "没有权限访问这个地址",
    404: "找不到这个地址",
    405: "这个地址不接受 {method} 请求",
    500: "服务器出错了，请稍后再试",
}
# 描述响应体的响应头：错误页换了响应体，这些不能照搬
BODY_HEADERS = {"content-type", "content-length", "content-encoding"}
PAGE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
<p>{message}</p>
<p><a href="/">回到首页</a></p>
</body>
</html>
"""
dumps = partial(json.dumps, ensure_ascii=False)  # 中文原样输出，不转成 \uXXXX


def wants_json(request: web.Request) -> bool:
    """按路径决定：/api/ 下的地址给程序调用，回 JSON；其他地址给浏览器看，回 HTML。"""
    return request.path.startswith(API_PREFIX)


def error_response(
    request: web.Request, status: int, reason: str, message: str
) -> web.Response:
    if wants_json(request):
        body = {"status": status, "error": reason, "message": message}
        return web.json_response(body, status=status, reason=reason, dumps=dumps)
    page = PAGE.format(
        title=html.escape(f"{status} {reason}"), message=html.escape(message)
    )
    return web.Response(
        text=page, content_type="text/html", status=status, reason=reason
    )


def message_of(request: web.Request, exc: web.HTTPException) -> str:
    """处理器自己写的 text 原样给客户端；没写的（"404: Not Found"）换成中文说明。"""
    if exc.text and exc.text != f"{exc.status}: {exc.reason}":
        return exc.text
    return MESSAGES.get(exc.status, exc.reason).format(method=request.method)


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if request.writer.output_size:  # 响应已经开始发送，换不成错误页了
            # 原样抛出的话，aiohttp 会把它接着写进同一条连接，成了第二个响应
            raise RuntimeError(f"响应开始发送之后抛出了 {exc!r}") from exc
        if exc.status < 400:
            raise  # 重定向（3xx）和 2xx 原样交给 aiohttp
        resp = error_response(request, exc.status, exc.reason, message_of(request, exc))
        for name, value in exc.headers.items():  # Allow、WWW-Authenticate 等
            if name.lower() not in BODY_HEADERS:
                resp.headers.add(name, value)
        for morsel in exc.cookies.values():  # set_cookie()、del_cookie() 设的 cookie
            resp.cookies[morsel.key] = morsel
        return resp
    except Exception:  # 不接住 asyncio.CancelledError：它不是 Exception 的子类
        if request.writer.output_size:  # 响应已经开始发送，换不成错误页了
            raise
        log.exception("%s %s 出错", request.method, request.path)
        return error_response(request, 500, "Internal Server Error", MESSAGES[500])


ITEMS = {"1": {"id": 1, "name": "苹果"}}


async def home(request: web.Request) -> web.Response:
    return web.Response(text="<h1>首页</h1>\n", content_type="text/html")


async def old_home(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/")


async def get_item(request: web.Request) -> web.Response:
    item_id = request.match_info["id"]
    if item_id not in ITEMS:
        raise web.HTTPNotFound(text=f"没有编号为 {item_id} 的商品")
    return web.json_response(ITEMS[item_id], dumps=dumps)


async def me(request: web.Request) -> web.Response:
    raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="api"'})


def create_app() -> web.Application:
    app = web.Application(middlewares=[error_pages])  # 放在第一个，外层的中间件先运行
    app.router.add_get("/", home)
    app.router.add_get("/old-home", old_home)
    app.router.add_get("/api/items/{id}", get_item)
    app.router.add_get("/api/me", me)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)  # 错误和回溯写到标准错误
    web.run_app(
        create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080"))
    )
