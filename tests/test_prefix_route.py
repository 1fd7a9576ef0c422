"""prefix_route: one handler for every method under /path/to/."""

import asyncio
import http.client
import json
import shutil
from pathlib import Path

import pytest

import pages
from prefix_route.app import create_app
from servers import python_program

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


@pytest.fixture
async def client(aiohttp_client):
    """A test client for the recipe's app, served on 127.0.0.1."""
    return await aiohttp_client(create_app())


@pytest.mark.parametrize("method", METHODS)
async def test_any_method_reaches_the_handler(client, method):
    resp = await client.request(method, "/path/to/some/thing")
    body = await resp.text()
    assert resp.status == 200, body
    if method != "HEAD":
        assert await resp.json() == {"method": method, "tail": "some/thing"}, body


@pytest.mark.parametrize(
    ("raw_path", "tail"),
    [
        ("/path/to/a", "a"),
        ("/path/to/a/b/c", "a/b/c"),
        ("/path/to/a%2Fb", "a/b"),
        ("/path/to/../../etc/passwd", "../../etc/passwd"),
        ("/path/to/%2e%2e/secret", "../secret"),
        ("/path/to//etc/passwd", "/etc/passwd"),
    ],
)
async def test_tail_holds_the_decoded_rest_of_the_path(client, raw_path, tail):
    # Sent byte for byte: aiohttp's own client would fold the ".." segments.
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(
        f"GET {raw_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    response = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 "), response
    assert json.loads(body)["tail"] == tail, response


@pytest.mark.parametrize("path", ["/path/to/", "/path/to", "/path/tox", "/", "/other"])
async def test_outside_the_prefix_is_404(client, path):
    resp = await client.get(path)
    assert resp.status == 404, await resp.text()


async def status_of(port: int, method: str) -> int:
    """The status a raw request with this method gets (aiohttp's client checks it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} /path/to/x HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    async with asyncio.timeout(5):
        status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


@pytest.mark.parametrize("method", ["PROPFIND", "MKCOL", "PURGE"])
async def test_methods_llhttp_knows_reach_the_handler(client, method):
    assert await status_of(client.port, method) == 200


async def test_a_made_up_method_is_refused_by_the_c_parser(client):
    assert await status_of(client.port, "FOO") == 400


def test_the_pure_python_parser_lets_a_made_up_method_through(tmp_path):
    app = Path(shutil.copy(pages.SNIPPETS / "prefix_route/app.py", tmp_path))
    with python_program(app, env={"AIOHTTP_NO_EXTENSIONS": "1"}) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("FOO", "/path/to/x")
        resp = conn.getresponse()
        body = resp.read().decode()
        conn.close()
    assert resp.status == 200, body
    assert json.loads(body) == {"method": "FOO", "tail": "x"}, body
