"""用 HTTPS 提供服务：web.run_app() 的 ssl_context 参数。"""

import os
import ssl

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=f"你好，这个请求走的是 {request.scheme}\n")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    return app


def server_context(
    certfile: str = "server.crt", keyfile: str = "server.key"
) -> ssl.SSLContext:
    """服务器用的 SSLContext：出示 certfile 里的证书链，用 keyfile 里的私钥。"""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


if __name__ == "__main__":
    from make_certs import ensure_certs

    ensure_certs()  # 本页的演示：还没有证书就先做一套
    web.run_app(
        create_app(),
        host="127.0.0.1",
        port=int(os.environ.get("PORT", 8080)),
        ssl_context=server_context(),
    )
