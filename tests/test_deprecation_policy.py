"""deprecation_policy: a project's pytest fails on aiohttp's DeprecationWarning."""

import base64
import contextlib
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from deprecation_policy import client, client_fixed
from deprecation_policy.app import create_app

pytest_plugins = ["pytester"]

SNIPPETS = Path(__file__).resolve().parent.parent / "snippets"
PYPROJECT = SNIPPETS / "deprecation_policy/pyproject.toml"
PROJECT_FILES = ["app.py", "client.py", "test_client.py"]
BASIC_AUTH_WARNING = "BasicAuth is deprecated and will be removed in aiohttp 4.0"
AUTH_PARAM_WARNING = "The 'auth' parameter is deprecated and will be removed in v4"
RUN_TIMEOUT = 120
FAILS_ON_BASIC_AUTH = ({"failed": 1}, BASIC_AUTH_WARNING)
FAILS_ON_AUTH_PARAM = ({"failed": 1}, AUTH_PARAM_WARNING)
PASSES = ({"passed": 1}, None)


@pytest.fixture
async def server(aiohttp_server):
    """The recipe's demo server on 127.0.0.1."""
    return await aiohttp_server(create_app())


@pytest.fixture
def project(tmp_path) -> Path:
    """A reader's project: the pyproject.toml fragment, app.py, client.py, the test."""
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    for name in PROJECT_FILES:
        shutil.copy(PYPROJECT.parent / name, tmp_path / name)
    return tmp_path


def run_pytest(cwd: Path) -> subprocess.CompletedProcess:
    """``python -m pytest`` in ``cwd``, with this environment's pytest and plugins."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and k != "PYTHONWARNINGS"
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RUN_TIMEOUT,
    )


async def test_old_client_warns_twice_from_the_callers_line(server):
    url = str(server.make_url("/"))
    with pytest.warns(DeprecationWarning) as record:
        text = await client.fetch(url, "alice", "pw")
    assert text == "服务器收到的用户名：alice"
    messages = [str(w.message) for w in record]
    assert len(messages) == 2, messages
    assert messages[0].startswith(BASIC_AUTH_WARNING), messages
    assert messages[1].startswith(AUTH_PARAM_WARNING), messages
    # Blamed on the reader's module, not on aiohttp: that is why Python's default
    # filters hide them when client.py is imported instead of run as a script.
    assert {w.filename for w in record} == {client.__file__}, record


async def test_fixed_client_sends_the_same_login_without_warnings(server):
    url = str(server.make_url("/"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        text = await client_fixed.fetch(url, "alice", "pw")
    assert text == "服务器收到的用户名：alice"
    assert record == [], [str(w.message) for w in record]


async def echo_authorization(request: web.Request) -> web.Response:
    return web.Response(text=request.headers["Authorization"])


@pytest.mark.parametrize("module", [client, client_fixed], ids=["old", "fixed"])
async def test_both_clients_send_the_password(aiohttp_server, module):
    app = web.Application()
    app.router.add_get("/", echo_authorization)
    url = str((await aiohttp_server(app)).make_url("/"))
    with pytest.deprecated_call() if module is client else contextlib.nullcontext():
        sent = await module.fetch(url, "alice", "p:w")
    scheme, _, encoded = sent.partition(" ")
    assert (scheme, base64.b64decode(encoded)) == ("Basic", b"alice:p:w"), sent


async def test_server_reads_the_login_before_the_first_colon(server):
    """A password may hold a colon; a login may not (RFC 7617)."""
    url = str(server.make_url("/"))
    text = await client_fixed.fetch(url, "alice", "p:w")
    assert text == "服务器收到的用户名：alice", text


async def test_server_refuses_base64_followed_by_junk(aiohttp_client):
    """b64decode() would skip the "!" were it not for validate=True."""
    app_client = await aiohttp_client(create_app())
    resp = await app_client.get("/", headers={"Authorization": "Basic YWxpY2U6cHc=!"})
    assert resp.status == 401, await resp.text()


async def test_encodings_differ_for_non_ascii_logins(server):
    """BasicAuth encodes latin-1 by default, encode_basic_auth() UTF-8."""
    url = str(server.make_url("/"))
    assert await client_fixed.fetch(url, "zoë", "pw") == "服务器收到的用户名：zoë"
    with pytest.deprecated_call(), pytest.raises(aiohttp.ClientResponseError):
        await client.fetch(url, "zoë", "pw")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer abc", "Basic !!!", "Basic OnB3", "Basic /w==", "Basic é"],
    ids=["missing", "not-basic", "not-base64", "empty-login", "not-utf8", "not-ascii"],
)
async def test_server_asks_for_basic_credentials(aiohttp_client, authorization):
    app_client = await aiohttp_client(create_app())
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = await app_client.get("/", headers=headers)
    body = await resp.text()
    assert resp.status == 401, body
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="demo"', body


def test_fragment_fails_the_suite_on_the_old_client(project):
    result = run_pytest(project)
    assert result.returncode == 1, result.stdout
    assert f"E       DeprecationWarning: {BASIC_AUTH_WARNING}" in result.stdout, (
        result.stdout
    )
    assert "1 failed" in result.stdout, result.stdout


def test_fragment_passes_once_the_client_is_fixed(project):
    shutil.copy(PYPROJECT.parent / "client_fixed.py", project / "client.py")
    result = run_pytest(project)
    assert result.returncode == 0, result.stdout
    assert "1 passed" in result.stdout, result.stdout
    assert "warning" not in result.stdout, result.stdout


def test_without_the_error_line_the_warnings_only_reach_the_summary(project):
    fragment = (project / "pyproject.toml").read_text("utf-8")
    (project / "pyproject.toml").write_text(fragment.replace('    "error",\n', ""))
    result = run_pytest(project)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 warnings" in result.stdout, result.stdout
    assert "warnings summary" in result.stdout, result.stdout


def test_error_line_needs_the_loop_scope_setting(project):
    """pytest-asyncio warns at start-up without it; "error" makes that fatal."""
    fragment = (project / "pyproject.toml").read_text("utf-8")
    line = 'asyncio_default_fixture_loop_scope = "function"\n'
    assert line in fragment, fragment
    (project / "pyproject.toml").write_text(fragment.replace(line, ""))
    result = run_pytest(project)
    assert result.returncode != 0, result.stdout
    assert "INTERNALERROR" in result.stdout, result.stdout
    assert "asyncio_default_fixture_loop_scope" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("exemptions", "expected"),
    [
        ([], FAILS_ON_BASIC_AUTH),
        (["ignore::DeprecationWarning"], PASSES),
        (["ignore:BasicAuth is deprecated:DeprecationWarning"], FAILS_ON_AUTH_PARAM),
        (
            [
                "ignore:BasicAuth is deprecated:DeprecationWarning",
                "ignore:The 'auth' parameter is deprecated:DeprecationWarning",
            ],
            PASSES,
        ),
        (["ignore::DeprecationWarning:aiohttp"], FAILS_ON_BASIC_AUTH),
    ],
    ids=["fragment", "all-ignored", "one-of-two", "both-by-message", "by-module"],
)
def test_snippet_folder_with_exemptions(pytester, exemptions, expected):
    """The snippet files, collected in-process under the fragment plus exemptions."""
    outcome, raised = expected
    entries = "".join(f'    "{entry}",\n' for entry in exemptions)
    fragment = PYPROJECT.read_text("utf-8")
    assert '    "error",\n' in fragment, fragment
    config = pytester.makepyprojecttoml(
        fragment.replace('    "error",\n', '    "error",\n' + entries)
    )
    result = pytester.runpytest_inprocess(
        str(PYPROJECT.parent), "-c", str(config), "-p", "no:cacheprovider"
    )
    result.assert_outcomes(**outcome)
    if raised is not None:
        result.stdout.fnmatch_lines([f"E *DeprecationWarning: {raised}*"])
