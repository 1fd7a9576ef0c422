"""同一个应用启动成多个进程：回答客户端的地址，以及本进程处理到了第几个请求。

python app.py                              监听 127.0.0.1:8080
python app.py --path /tmp/aiohttp-1.sock   只监听这个 Unix socket，放在 nginx 后面
gunicorn 'app:create_app()' ...            见 gunicorn.sh
"""

import argparse
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

# 经 TCP 连进来时，只有从这些地址（或网段）来的连接才是反向代理，
# 例如另一台机器上的 nginx："10.0.0.5"。经 Unix socket 连进来的总是可信。
TRUSTED_PROXIES: tuple[str, ...] = ()


@dataclass
class Stats:
    served: int = 0


STATS = web.AppKey("stats", Stats)


def last_entry(request: web.Request, name: str) -> str:
    """请求头 name 的最后一项：离应用最近的那个代理写进去的。"""
    values = request.headers.getall(name, [])
    return values[-1].split(",")[-1].strip() if values else ""


def forwarded(trusted_proxies: Iterable[str]) -> Middleware:
    """只在对端是反向代理时，才用 X-Forwarded-For / X-Forwarded-Proto。"""
    networks = [ipaddress.ip_network(proxy) for proxy in trusted_proxies]

    def from_proxy(request: web.Request) -> bool:
        if request.remote == "":  # Unix socket 的对端没有地址
            return True
        peer = ipaddress.ip_address(request.remote)
        return any(peer in network for network in networks)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not from_proxy(request):
            return await handler(request)  # 客户端直连：这两个请求头一概不看
        changes = {}
        client = last_entry(request, "X-Forwarded-For")
        try:
            changes["remote"] = str(ipaddress.ip_address(client))
        except ValueError:
            pass  # 没有这个请求头，或者最后一项不是 IP 地址
        scheme = last_entry(request, "X-Forwarded-Proto")
        if scheme in ("http", "https"):
            changes["scheme"] = scheme
        return await handler(request.clone(**changes))

    return middleware


async def index(request: web.Request) -> web.Response:
    stats = request.app[STATS]
    stats.served += 1  # 只在本进程的内存里加一
    text = (
        f"客户端 {request.remote}，协议 {request.scheme}，"
        f"这是本进程处理的第 {stats.served} 个请求\n"
    )
    return web.Response(text=text, headers={"X-Pid": str(os.getpid())})


def create_app(trusted_proxies: Iterable[str] = TRUSTED_PROXIES) -> web.Application:
    app = web.Application(middlewares=[forwarded(trusted_proxies)])
    app[STATS] = Stats()
    app.router.add_get("/", index)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", help="监听这个 Unix socket，不监听 TCP 端口")
    args = parser.parse_args()
    if args.path:
        web.run_app(create_app(), path=args.path)
    else:
        port = int(os.environ.get("PORT", "8080"))
        web.run_app(create_app(), host="127.0.0.1", port=port)
