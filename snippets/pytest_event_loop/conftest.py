"""整个测试会话只启动一次应用，所有测试共用一个连着它的客户端。"""

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from app import create_app


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client():
    async with TestClient(TestServer(create_app())) as client:
        yield client
