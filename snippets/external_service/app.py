"""返回 Elasticsearch 的集群信息；Elasticsearch 在哪里，由 create_app 的参数决定。"""

import os
from collections.abc import AsyncIterator

import elasticsearch
from aiohttp import web

ES_URL = web.AppKey("es_url", str)
ES = web.AppKey("es", elasticsearch.AsyncElasticsearch)


async def es_client(app: web.Application) -> AsyncIterator[None]:
    es = elasticsearch.AsyncElasticsearch(app[ES_URL])
    app[ES] = es
    yield
    await es.close()


async def cluster_info(request: web.Request) -> web.Response:
    try:
        info = await request.app[ES].info()
    except elasticsearch.UnsupportedProductError as exc:
        # 对方回答了，但响应里没有 X-Elastic-Product: Elasticsearch
        raise web.HTTPBadGateway(text=f"不是 Elasticsearch：{exc}") from exc
    except elasticsearch.ConnectionError as exc:
        raise web.HTTPServiceUnavailable(text="连不上 Elasticsearch") from exc
    return web.json_response(info.body)


def create_app(es_url: str) -> web.Application:
    app = web.Application()
    app[ES_URL] = es_url
    app.cleanup_ctx.append(es_client)
    app.router.add_get("/", cluster_info)
    return app


if __name__ == "__main__":
    app = create_app(os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    web.run_app(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
