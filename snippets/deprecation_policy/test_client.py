"""client.fetch 把用户名带给了服务器。"""

from app import create_app
from client import fetch


async def test_fetch_sends_the_login(aiohttp_server):
    server = await aiohttp_server(create_app())
    text = await fetch(str(server.make_url("/")), "alice", "pw")
    assert text == "服务器收到的用户名：alice"
