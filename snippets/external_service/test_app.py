"""app.py 的测试：让应用连一个真实的本地服务器，而不是给客户端打补丁。"""

import fake_es
from aiohttp import web
from aiohttp.test_utils import unused_port
from app import create_app


async def test_cluster_info(aiohttp_client, aiohttp_server):
    es = await aiohttp_server(fake_es.create_app())
    client = await aiohttp_client(create_app(str(es.make_url("/"))))
    resp = await client.get("/")
    assert resp.status == 200
    assert (await resp.json())["cluster_name"] == "fake-cluster"


async def no_product_header(request: web.Request) -> web.Response:
    return web.json_response(fake_es.INFO)


async def test_server_that_is_not_elasticsearch(aiohttp_client, aiohttp_server):
    other = web.Application()
    other.router.add_get("/", no_product_header)
    server = await aiohttp_server(other)
    client = await aiohttp_client(create_app(str(server.make_url("/"))))
    resp = await client.get("/")
    assert resp.status == 502


async def test_elasticsearch_down(aiohttp_client):
    client = await aiohttp_client(create_app(f"http://127.0.0.1:{unused_port()}"))
    resp = await client.get("/")
    assert resp.status == 503
