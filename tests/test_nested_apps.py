"""nested_apps: a sub-app's routes, middleware and cleanup context stay its own."""

import pytest
from aiohttp import web

from nested_apps.app import ADMIN, DB, create_app


@pytest.fixture
async def client(aiohttp_client):
    """A test client for the main app (with /admin mounted), served on 127.0.0.1."""
    return await aiohttp_client(create_app())


@pytest.mark.parametrize(
    ("path", "status", "admin_header"),
    [
        ("/", 200, None),
        ("/admin/users/alice", 200, "yes"),
        ("/admin/users/bob", 200, "yes"),
        # A raised HTTPException passes the middleware before the header is set.
        ("/admin/users/zoe", 404, None),
        ("/nowhere", 404, None),
        ("/users/alice", 404, None),
    ],
)
async def test_subapp_middleware_only_touches_subapp_responses(
    client, path, status, admin_header
):
    resp = await client.get(path)
    text = await resp.text()
    assert resp.status == status, text
    assert resp.headers.get("X-Admin") == admin_header, (dict(resp.headers), text)


@pytest.mark.parametrize(
    ("name", "role"), [("alice", "admin"), ("bob", "editor"), ("zoe", None)]
)
async def test_subapp_handler_reads_its_own_database(client, name, role):
    resp = await client.get(f"/admin/users/{name}")
    text = await resp.text()
    if role is None:
        assert (resp.status, text) == (404, f"没有用户 {name}\n"), text
    else:
        assert await resp.json() == {"name": name, "role": role}, text


async def test_main_app_links_to_a_named_subapp_route_with_prefix(client):
    resp = await client.get("/")
    text = await resp.text()
    assert text == "alice 的管理页面：/admin/users/alice\n", text
    url = text.rsplit(" ", 1)[1].strip()
    followed = await client.get(url)
    assert await followed.json() == {"name": "alice", "role": "admin"}, url


def test_route_names_belong_to_their_own_app():
    app = create_app()
    admin = app[ADMIN]
    assert "user" in admin.router
    assert "user" not in app.router
    assert str(admin.router["user"].url_for(name="b o")) == "/admin/users/b%20o"


async def test_subapp_cleanup_ctx_runs_with_the_main_app(aiohttp_server):
    app = create_app()
    admin = app[ADMIN]
    assert DB not in admin  # nothing opened before the main app starts
    server = await aiohttp_server(app)
    db = admin[DB]
    async with db.execute("SELECT count(*) FROM users") as cursor:
        assert await cursor.fetchone() == (2,)
    assert DB not in app  # the main app never sees the sub-app's resource
    await server.close()
    with pytest.raises(ValueError, match="no active connection"):
        await db.execute("SELECT 1")


async def test_subapp_is_frozen_once_mounted():
    admin = create_app()[ADMIN]

    async def late(request: web.Request) -> web.Response:
        raise AssertionError("never registered")

    with pytest.raises(RuntimeError, match="frozen router"):
        admin.router.add_get("/late", late)
    with pytest.raises(RuntimeError, match="frozen list"):
        admin.middlewares.append(late)
