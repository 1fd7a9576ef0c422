"""external_service: the app reaches Elasticsearch at a configured URL.

Tests point it at real loopback servers: the recipe's fake_es.py, a server
without the product header, a port nothing listens on. The reader's own test
file, test_app.py, is run as the reader runs it (pytest in a copy of the folder)
and once more in this process, so that its lines count for coverage.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

import pages
from external_service import fake_es
from external_service.app import ES, create_app
from servers import free_port

pytest_plugins = ["pytester"]

FOLDER = pages.SNIPPETS / "external_service"
CONFIG = "external_service/pyproject.toml"
CONFIG_NAME = Path(CONFIG).name
INFO_OUTPUT = "external_service/info.json"
NOT_ES_OUTPUT = "external_service/not_es.txt"
READER_TESTS = 3


def shown(path: str) -> str:
    """What the page shows for a snippet file, without its final newline."""
    return (pages.SNIPPETS / path).read_text("utf-8").rstrip("\n")


@pytest.fixture
async def es_url(aiohttp_server):
    """The URL of the recipe's fake Elasticsearch, served on 127.0.0.1."""
    server = await aiohttp_server(fake_es.create_app())
    return str(server.make_url("/"))


async def test_fake_es_answers_like_elasticsearch(aiohttp_client):
    client = await aiohttp_client(fake_es.create_app())
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 200, body
    assert resp.headers["X-Elastic-Product"] == "Elasticsearch", resp.headers
    assert await resp.json() == fake_es.INFO, body


async def test_app_returns_cluster_info(aiohttp_client, es_url):
    client = await aiohttp_client(create_app(es_url))
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 200, body
    assert body == shown(INFO_OUTPUT)


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Elastic-Product": "OpenSearch"}],
    ids=["no-header", "other-product"],
)
async def test_a_server_that_is_not_elasticsearch_is_502(
    aiohttp_client, aiohttp_server, headers
):
    async def info(request: web.Request) -> web.Response:
        return web.json_response(fake_es.INFO, headers=headers)

    other = web.Application()
    other.router.add_get("/", info)
    server = await aiohttp_server(other)
    client = await aiohttp_client(create_app(str(server.make_url("/"))))
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 502, body
    assert body == shown(NOT_ES_OUTPUT)


async def test_unreachable_elasticsearch_is_503(aiohttp_client):
    client = await aiohttp_client(create_app(f"http://127.0.0.1:{free_port()}"))
    resp = await client.get("/")
    body = await resp.text()
    assert resp.status == 503, body
    assert body == "连不上 Elasticsearch"


async def test_cleanup_closes_the_client(aiohttp_client, es_url):
    client = await aiohttp_client(create_app(es_url))
    resp = await client.get("/")
    assert resp.status == 200, await resp.text()
    [node] = client.app[ES].transport.node_pool.all()
    session = node.session
    assert session is not None and not session.closed
    await client.close()
    assert session.closed


@pytest.fixture
def reader_copy(tmp_path):
    """The snippet folder copied as a reader copies it: files only, no caches."""
    copy = tmp_path / "external_service"
    shutil.copytree(FOLDER, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def run_pytest(folder):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )


def test_reader_runs_the_tests_in_a_copy_of_the_folder(reader_copy):
    result = run_pytest(reader_copy)
    assert result.returncode == 0, result.stdout
    assert f"configfile: {CONFIG_NAME}" in result.stdout, result.stdout
    assert f" {READER_TESTS} passed in " in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("setting", "exit_code", "message"),
    [
        ("asyncio_mode", 1, "async def functions are not natively supported"),
        (
            "asyncio_default_fixture_loop_scope",
            3,  # INTERNALERROR: the warning is an error before any test runs
            'The configuration option "asyncio_default_fixture_loop_scope" is unset',
        ),
    ],
)
def test_each_setting_is_needed(reader_copy, setting, exit_code, message):
    lines = shown(CONFIG).splitlines()
    kept = [line for line in lines if not line.startswith(f"{setting} =")]
    assert len(kept) == len(lines) - 1, lines
    (reader_copy / CONFIG_NAME).write_text("\n".join(kept) + "\n", "utf-8")
    result = run_pytest(reader_copy)
    assert result.returncode == exit_code, result.stdout
    assert message in result.stdout, result.stdout


def test_reader_tests_pass_in_this_process(pytester):
    """Same run in-process (pytest picks the folder's own config), for coverage."""
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", str(FOLDER))
    result.assert_outcomes(passed=READER_TESTS)
    result.stdout.fnmatch_lines([f"configfile: {CONFIG_NAME}"])
