"""前两个测试用 conftest.py 里共用的 client，第三个用 aiohttp_client 建自己的应用。"""

from app import create_app


async def test_hello(client):
    resp = await client.get("/")
    assert resp.status == 200
    assert await resp.text() == "你好"


async def test_not_found(client):
    resp = await client.get("/nope")
    assert resp.status == 404


async def test_own_app(aiohttp_client):
    own = await aiohttp_client(create_app())
    resp = await own.get("/")
    assert resp.status == 200
