"""route_decorator: routes from RouteTableDef decorators and from a web.get() list."""

import pytest

from route_decorator import app as decorated
from route_decorator import table

APPS = {"app.py": decorated.create_app, "table.py": table.create_app}


@pytest.fixture(params=sorted(APPS))
async def client(request, aiohttp_client):
    """A test client for one of the page's two apps, served on 127.0.0.1."""
    return await aiohttp_client(APPS[request.param]())


def cases(app: str, rows: list[tuple]) -> list:
    return [pytest.param(app, *row, id=f"{app}-{row[0]}-{row[1]}") for row in rows]


ANSWERED = cases(
    "app.py",
    [
        ("GET", "/", None, 200, "首页\n"),
        ("HEAD", "/", None, 200, ""),
        ("GET", "/users/alice", None, 200, '{"user": "alice"}'),
        ("HEAD", "/users/alice", None, 200, ""),
        ("POST", "/echo", "hello", 200, '{"received": "hello"}'),
        ("GET", "/items/42", None, 200, '{"id": "42"}'),
        ("DELETE", "/items/42", None, 200, '{"deleted": "42"}'),
    ],
) + cases(
    "table.py",
    [
        ("GET", "/hello/bob", None, 200, "你好，bob\n"),
        ("HEAD", "/hello/bob", None, 200, ""),
        ("POST", "/orders", '{"item": "book"}', 201, '{"created": {"item": "book"}}'),
        ("GET", "/status", None, 200, '{"status": "ok"}'),
    ],
)


@pytest.mark.parametrize(("app", "method", "path", "data", "status", "body"), ANSWERED)
async def test_every_route_answers(
    aiohttp_client, app, method, path, data, status, body
):
    client = await aiohttp_client(APPS[app]())
    resp = await client.request(method, path, data=data)
    text = await resp.text()
    assert (resp.status, text) == (status, body), text


NOT_ALLOWED = cases(
    "app.py",
    [
        ("PUT", "/items/42", "DELETE,GET"),
        ("POST", "/items/42", "DELETE,GET"),
        ("PATCH", "/items/42", "DELETE,GET"),
        # A class-based view answers HEAD only if it defines head().
        ("HEAD", "/items/42", "DELETE,GET"),
        ("POST", "/", "GET,HEAD"),
        ("DELETE", "/users/alice", "GET,HEAD"),
        ("GET", "/echo", "POST"),
    ],
) + cases(
    "table.py",
    [
        ("POST", "/status", "GET"),
        ("PUT", "/status", "GET"),
        ("GET", "/orders", "POST"),
        ("POST", "/hello/bob", "GET,HEAD"),
    ],
)


@pytest.mark.parametrize(("app", "method", "path", "allow"), NOT_ALLOWED)
async def test_other_methods_get_405_with_allow(
    aiohttp_client, app, method, path, allow
):
    client = await aiohttp_client(APPS[app]())
    resp = await client.request(method, path)
    text = await resp.text()
    assert resp.status == 405, text
    assert resp.headers["Allow"] == allow, text


@pytest.mark.parametrize("path", ["/nowhere", "/users/", "/items/"])
async def test_unknown_paths_are_404(client, path):
    resp = await client.get(path)
    assert resp.status == 404, await resp.text()


def test_decorators_fill_the_table_and_return_the_handler():
    registered = [(r.method, r.path, r.handler) for r in decorated.routes]
    assert registered == [
        ("GET", "/", decorated.index),
        ("GET", "/users/{name}", decorated.show_user),
        ("POST", "/echo", decorated.echo),
        ("*", "/items/{id}", decorated.ItemView),
    ], registered


async def test_one_table_serves_two_apps(aiohttp_client):
    first = await aiohttp_client(decorated.create_app())
    second = await aiohttp_client(decorated.create_app())
    for client in (first, second):
        resp = await client.get("/users/bob")
        assert await resp.json() == {"user": "bob"}, await resp.text()


@pytest.mark.parametrize(
    ("app", "path", "body", "content_type"),
    [
        ("app.py", "/echo", b"\xff\xfe", "text/plain"),
        ("app.py", "/echo", b"hello", "text/plain; charset=no-such-charset"),
        ("table.py", "/orders", b"{", "application/json"),
        ("table.py", "/orders", b"", "application/json"),
    ],
)
async def test_a_body_it_cannot_read_is_a_500(
    aiohttp_client, app, path, body, content_type
):
    """What the page's note says: the examples do not check what they are sent."""
    client = await aiohttp_client(APPS[app]())
    resp = await client.post(path, data=body, headers={"Content-Type": content_type})
    assert resp.status == 500, await resp.text()
