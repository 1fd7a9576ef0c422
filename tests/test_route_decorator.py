"""route_decorator: routes from RouteTableDef decorators and from a web.get() list."""

import json
import logging
from pathlib import Path

import pytest
from aiohttp import web

from route_decorator import app as decorated
from route_decorator import table as table_module

APPS = {"app.py": decorated.create_app, "table.py": table_module.create_app}


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


@pytest.mark.claim("`@routes.get` 登记的路由也应答 `HEAD`")
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


@pytest.mark.claim("视图不会自动应答 `HEAD`")
@pytest.mark.claim("响应头 `Allow` 列出类里实际定义的方法")
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


@pytest.mark.claim("模块里的 `index` 仍是原来那个函数，没有被包装")
def test_decorators_fill_the_table_and_return_the_handler():
    registered = [(r.method, r.path, r.handler) for r in decorated.routes]
    assert registered == [
        ("GET", "/", decorated.index),
        ("GET", "/users/{name}", decorated.show_user),
        ("POST", "/echo", decorated.echo),
        ("*", "/items/{id}", decorated.ItemView),
    ], registered
    # ... and each is the function its module defines, not a wrapper around it
    source = Path(decorated.__file__).resolve()
    assert Path(decorated.index.__code__.co_filename).resolve() == source
    assert not hasattr(decorated.index, "__wrapped__")

    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    assert web.RouteTableDef().get("/")(handler) is handler


@pytest.mark.claim("同一张表可以交给多个应用")
async def test_one_table_serves_two_apps(aiohttp_client):
    first = await aiohttp_client(decorated.create_app())
    second = await aiohttp_client(decorated.create_app())
    for client in (first, second):
        resp = await client.get("/users/bob")
        assert await resp.json() == {"user": "bob"}, await resp.text()


def routes_of(app: web.Application) -> list[tuple[str, str, object]]:
    return [(r.method, r.resource.canonical, r.handler) for r in app.router.routes()]


@pytest.mark.claim("与装饰器记进表里的是同一种对象")
@pytest.mark.claim("两种写法注册的是同样的路由，也可以混用")
def test_a_list_and_a_table_register_the_same_routes():
    table = web.RouteTableDef()
    table.get("/hello/{name}")(table_module.hello)
    table.post("/orders")(table_module.create_order)
    table.view("/status")(table_module.StatusView)
    listed = [
        web.get("/hello/{name}", table_module.hello),
        web.post("/orders", table_module.create_order),
        web.view("/status", table_module.StatusView),
    ]
    assert {type(d) for d in [*table, *listed]} == {web.RouteDef}
    from_table, from_list = web.Application(), web.Application()
    from_table.add_routes(table)
    from_list.add_routes(listed)
    assert (
        routes_of(from_table)
        == routes_of(from_list)
        == routes_of(table_module.create_app())
    )
    mixed = decorated.create_app()
    mixed.add_routes(listed)
    assert routes_of(mixed) == routes_of(decorated.create_app()) + routes_of(from_list)


@pytest.mark.claim(
    "`DeprecationWarning: Inheritance class ... from web.Application is discouraged`"
)
def test_inheriting_from_application_is_deprecated():
    with pytest.warns(
        DeprecationWarning,
        match="Inheritance class MyApplication from web.Application is discouraged",
    ):

        class MyApplication(web.Application):
            pass


ERRORS = {
    "not-utf-8": UnicodeDecodeError,
    "unknown-charset": LookupError,
    "not-json": json.JSONDecodeError,
    "empty": json.JSONDecodeError,
}


@pytest.mark.claim("在请求体不是 UTF-8 时抛出 `UnicodeDecodeError`")
@pytest.mark.claim("声明了 Python 不认识的 charset 时抛出 `LookupError`")
@pytest.mark.claim("在请求体不是 JSON 时抛出 `json.JSONDecodeError`")
@pytest.mark.claim("客户端得到 500，服务器日志里记一条 “Error handling request”")
@pytest.mark.parametrize(
    ("app", "path", "body", "content_type"),
    [
        ("app.py", "/echo", b"\xff\xfe", "text/plain"),
        ("app.py", "/echo", b"hello", "text/plain; charset=no-such-charset"),
        ("table.py", "/orders", b"{", "application/json"),
        ("table.py", "/orders", b"", "application/json"),
    ],
    ids=list(ERRORS),
)
async def test_a_body_it_cannot_read_is_a_500(
    aiohttp_client, caplog, request, app, path, body, content_type
):
    """What the page's note says: the examples do not check what they are sent."""
    client = await aiohttp_client(APPS[app]())
    resp = await client.post(path, data=body, headers={"Content-Type": content_type})
    assert resp.status == 500, await resp.text()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert errors[0].getMessage().startswith("Error handling request"), errors
    raised = errors[0].exc_info[1]
    assert type(raised) is ERRORS[request.node.callspec.id], raised
