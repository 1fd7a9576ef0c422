"""一个只会回答 GET / 的“Elasticsearch”：手边没有真的 Elasticsearch 时用它。"""

import os

from aiohttp import web

INFO = {
    "name": "fake-es",
    "cluster_name": "fake-cluster",
    "version": {"number": "9.0.0"},
    "tagline": "You Know, for Search",
}


async def info(request: web.Request) -> web.Response:
    # 官方客户端只接受带这个响应头的服务器
    return web.json_response(INFO, headers={"X-Elastic-Product": "Elasticsearch"})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", info)
    return app


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "9200"))
    web.run_app(create_app(), host="127.0.0.1", port=port)
