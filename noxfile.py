"""Sessions for contributors. Plain `nox` runs everything a change must pass."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import nox

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tests"))
import sitebuild  # the build command, shared with the tests

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "tests", "matrix", "docs", "browser", "zensical"]

PYPROJECT = nox.project.load_toml("pyproject.toml")

# What the tests need from the system, and the Debian package that provides it:
# programs they start for real, and a CJK font so screenshots show Chinese text.
SYSTEM_PROGRAMS = {
    "redis-server": "redis-server",
    "curl": "curl",
    "nginx": "nginx",
    "openssl": "openssl",
    "tinyproxy": "tinyproxy",
    "microsocks": "microsocks",
    "chromium": "chromium",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc": "fonts-wqy-zenhei",
}


# Written by a full passing `tests` run; read by docs/_hooks/faq_box.py.
VERIFIED_RECORD = ".nox/verified.json"
# Written by `nox -s matrix` (tests/matrix.py); read by docs/_hooks/faq_box.py.
MATRIX_RECORD = ".nox/matrix.json"
RECORD_VERSIONS = """
import importlib.metadata, json, platform, sys
record = {"aiohttp": importlib.metadata.version("aiohttp"),
          "python": platform.python_version()}
open(sys.argv[1], "w").write(json.dumps(record))
"""


def install_groups(session: nox.Session, *groups: str) -> None:
    """Install the pyproject.toml dependency groups ``groups``.

    This machine sets PYTHONDONTWRITEBYTECODE. Without cached bytecode every
    process of a session (each page block, each build) compiles every module
    it imports again: `import aiohttp.web` takes 0.4 s instead of 0.2 s. The
    sessions write the bytecode of what they import, the first time; a
    reader's programs start from bytecode too (pip compiles what it installs).
    """
    requirements = []
    for group in groups:
        requirements += nox.project.dependency_groups(PYPROJECT, group)
    session.install(*requirements)
    session.env["PYTHONDONTWRITEBYTECODE"] = ""


def which(program: str) -> str | None:
    if os.path.isabs(program):
        return program if os.path.exists(program) else None
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")


def ensure_system_programs(session: nox.Session) -> None:
    """Install missing system programs with apt-get as root; otherwise stop."""
    missing = sorted({pkg for prog, pkg in SYSTEM_PROGRAMS.items() if not which(prog)})
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        session.error(
            f"missing system packages, install them first: {' '.join(missing)}"
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run(
        "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing,
        external=True, env=env,
    )  # fmt: skip
    still = [prog for prog in SYSTEM_PROGRAMS if not which(prog)]
    if still:
        session.error(f"still missing after apt-get: {' '.join(still)}")


@nox.session
def tests(session: nox.Session) -> None:
    """Run every recipe and every page block against real servers, with coverage."""
    ensure_system_programs(session)
    install_groups(session, "test")
    # A partial run (posargs such as -k) cannot reach 100 % coverage: don't ask it to.
    args = [*session.posargs, "--cov-fail-under", "0"] if session.posargs else ["-q"]
    # A page's blocks share its servers, so they run in one worker (loadgroup).
    # Many tests wait on other processes: one worker more than there are cores
    # (measured on 2 cores: 64 s with 2 workers, 59 s with 3; with 1821 tests,
    # 95 s with 3 and 98 s with 4).
    workers = str((os.cpu_count() or 1) + 1)
    xdist = ["--numprocesses", workers, "--dist", "loadgroup"]
    # ... and fail if a group ran in several workers (`python -m`: the plugin is
    # imported from this folder).
    xdist += ["-p", "tests.xdist_groups"]
    cov = ["--cov", "--cov-report", "term-missing"]
    session.run("python", "-m", "pytest", *xdist, *cov, *args)
    if not session.posargs:  # a full, passing run: the site says what it verified
        session.run("python", "-c", RECORD_VERSIONS, VERIFIED_RECORD)


# One built site, shared by the sessions of a run: `docs` builds it, `browser`
# reuses it when nothing the build reads has changed since.
SITE = os.path.join(".nox", "site")


def site_inputs() -> str:
    """A digest of everything the build reads, the test record included."""
    digest = hashlib.sha256()
    paths = [*sitebuild.INPUTS, VERIFIED_RECORD, MATRIX_RECORD]
    for top in paths:
        files = (
            [top]
            if os.path.isfile(top)
            else sorted(
                os.path.join(d, f)
                for d, _, fs in os.walk(top)
                if "__pycache__" not in d  # written by the build's own imports
                for f in fs
            )
        )
        for name in files:
            digest.update(name.encode() + b"\0")
            with open(name, "rb") as file:
                digest.update(file.read() + b"\0")
    return digest.hexdigest()


@nox.session
def matrix(session: nox.Session) -> None:
    """Run each page in a reader's environment, over the versions it claims.

    `nox -s matrix -- prefix_route` runs one page; `-- --every-release` runs
    every release in each range. See tests/matrix.py.
    """
    ensure_system_programs(session)
    install_groups(session, "test")
    import uv  # installed beside nox (README): the matrix makes its environments

    tools = ["--uv", uv.find_uv_bin(), "--record", MATRIX_RECORD]
    session.run("python", "tests/matrix.py", *tools, *session.posargs)


def build_site(session: nox.Session, *, reuse: bool = False) -> str:
    """Build the site strictly (any warning fails) into SITE; return its path."""
    stamp = os.path.join(SITE, ".inputs")
    inputs = site_inputs()
    if reuse and os.path.exists(stamp) and open(stamp).read() == inputs:
        session.log(f"{SITE} was built from the same inputs: reusing it")
        return SITE
    session.run(*sitebuild.build_command(SITE), env=sitebuild.ENV)
    with open(stamp, "w") as file:
        file.write(inputs)
    return SITE


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site (any warning fails); prove a broken link fails the build."""
    install_groups(session, "docs", "test")
    # The planted mistakes are built in a copy of the docs, not in SITE: that
    # check runs on another core while the site is built.
    pytest = ["pytest", "-q", "-p", "no:xdist", "--site", SITE]
    planted = [*pytest, "tests/built_site/test_strict_build.py"]
    session.log(" ".join(planted) + " &")
    path = os.pathsep.join([*session.bin_paths, os.environ.get("PATH", "")])
    env = {**os.environ, **session.env, "PATH": path}  # as session.run's
    env = {name: value for name, value in env.items() if value is not None}
    background = subprocess.Popen(
        planted, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        build_site(session)
        session.run(*pytest, "tests/built_site/test_search_index.py")
    finally:
        output = background.communicate()[0]
        print(output, end="")
    if background.returncode:
        session.error(f"{' '.join(planted)} failed")


@nox.session
def browser(session: nox.Session) -> None:
    """Check every built page in headless Chromium; write screenshots."""
    ensure_system_programs(session)
    install_groups(session, "docs", "test", "browser")
    site = build_site(session, reuse=True)
    shots = os.path.abspath(os.path.join(".nox", "screenshots"))
    args = session.posargs or ["-q"]
    checks = ["tests/built_site/test_browser.py", "--site", site]
    session.run("pytest", *checks, "--screenshots", shots, *args)
    session.log(f"screenshots: {shots}")


# What `nox -s bench` times, and each one's budget in start-ups of a reader's
# program (the yardstick: `python -c "import aiohttp.web"`, measured in the run).
BENCH_SESSIONS = {"tests": 60, "docs": 10, "browser": 40}


def yardstick(python: str, runs: int = 11, **env: str) -> float:
    """Median wall time of one reader's program starting: import aiohttp.web."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        argv = [python, "-c", "import aiohttp.web"]
        subprocess.run(argv, check=True, env={**os.environ, **env})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def uncompiled_python(session: nox.Session, folder: str) -> str:
    """A Python with the session's aiohttp installed and not compiled to bytecode.

    So were all environments here before the sessions wrote bytecode (this
    machine sets PYTHONDONTWRITEBYTECODE): the unit earlier numbers used.
    """
    version = session.run(
        "python", "-c", "import aiohttp; print(aiohttp.__version__)", silent=True
    ).strip()
    import uv  # installed beside nox (README)

    same = os.path.realpath(os.path.join(session.bin, "python"))
    session.run(uv.find_uv_bin(), "venv", "-q", "-p", same, folder, external=True)
    python = os.path.join(folder, "bin", "python")
    install = [uv.find_uv_bin(), "pip", "install", "-q", "--python", python]
    session.run(*install, f"aiohttp=={version}", external=True)
    return python


def timed_session(name: str) -> tuple[float, float]:
    """Run `nox -s name` (warm); return its wall time and the CPU time it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nox", "-s", name], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Write the site to site/ for a static host; SITE_URL is its address.

    Refuses to run without the records of a passing `nox` (tests and matrix):
    a published page never says "not verified".
    """
    install_groups(session, "docs", "test")
    records = {}
    for name, path in [("verified", VERIFIED_RECORD), ("matrix", MATRIX_RECORD)]:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as file:
                records[name] = json.load(file)
    requires = session.run(
        "python",
        "-c",
        "import json, sys; sys.path.insert(0, 'tests'); import pages;"
        "print(json.dumps({p.stem: pages.requirements(p) for p in pages.pages()"
        " if p.name != 'index.md'}))",
        silent=True,
    )
    problems = sitebuild.record_problems(records, json.loads(requires))
    if problems:
        session.error("run `nox` first; not publishable:\n" + "\n".join(problems))
    session.run(*sitebuild.build_command("site"), env=sitebuild.ENV)
    session.log(f"site/ is ready for {os.environ.get('SITE_URL', 'a local address')}")


@nox.session
def zensical(session: nox.Session) -> None:
    """Build with Zensical too: the same pages as MkDocs', and the Chromium checks."""
    ensure_system_programs(session)
    install_groups(session, "docs", "test", "browser", "zensical")
    mkdocs_site = os.path.abspath(build_site(session, reuse=True))
    # Zensical writes site/ and .cache/ beside mkdocs.yml: build a copy.
    work = os.path.abspath(os.path.join(session.create_tmp(), "zensical-build"))
    shutil.rmtree(work, ignore_errors=True)
    for name in sitebuild.INPUTS:
        copy = shutil.copytree if os.path.isdir(name) else shutil.copy
        copy(name, os.path.join(work, name))
    records = {
        "FAQ_VERIFIED_RECORD": os.path.abspath(VERIFIED_RECORD),
        "FAQ_MATRIX_RECORD": os.path.abspath(MATRIX_RECORD),
    }
    with session.chdir(work):
        session.run("zensical", "build", "--strict", env={**sitebuild.ENV, **records})
    site = os.path.join(work, "site")
    compare = ["tests/built_site/test_same_site.py", "--site", mkdocs_site]
    session.run("pytest", *compare, "--other-site", site, "-q", "-p", "no:xdist")
    shots = os.path.abspath(os.path.join(".nox", "screenshots", "zensical"))
    checks = ["tests/built_site/test_browser.py", "--site", site]
    session.run("pytest", *checks, "--screenshots", shots, *(session.posargs or ["-q"]))


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Time the sessions in start-ups of a reader's program; pages; 1,000 websockets.

    `nox -s bench -- --readme` also writes the numbers into README.md.
    """
    ensure_system_programs(session)
    install_groups(session, "docs", "test", "browser")
    # The first start writes the bytecode (as pip would have): the median is
    # a start from it.
    unit = yardstick(os.path.join(session.bin, "python"), PYTHONDONTWRITEBYTECODE="")
    with tempfile.TemporaryDirectory() as folder:
        source_only = uncompiled_python(session, folder)
        uncompiled = yardstick(source_only, PYTHONDONTWRITEBYTECODE="1")
    rows = [
        f'| 一次启动（`python -c "import aiohttp.web"`，{os.cpu_count()} 核，'
        f"11 次的中位数） | {unit:.2f} s | | | |",
        f"| 一次启动，不用缓存的字节码（括号里的单位） | {uncompiled:.2f} s | | | |",
    ]
    for name, budget in BENCH_SESSIONS.items():
        wall, cpu = timed_session(name)
        verdict = "✓" if wall / unit <= budget else "**超出**"
        cells = [
            f"`nox -s {name}`（环境已建好）",
            f"{wall:.1f} s = {wall / unit:.0f}（{wall / uncompiled:.0f}）次启动",
            f"{cpu:.1f} s = {cpu / unit:.0f}（{cpu / uncompiled:.0f}）次启动",
            f"{cpu / wall:.0%}",
            f"≤ {budget} 次启动 {verdict}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    table = "\n".join(
        [
            "| 项目 | 墙钟时间 | CPU 时间 | CPU 占用 | 预算 |",
            "| --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    pages = session.run(
        "python", "tests/built_site/bench.py", "--site", SITE, silent=True
    )
    fanout = session.run("python", "tests/bench_websocket_pubsub.py", silent=True)
    machine = f"{time.strftime('%Y-%m-%d')}，本机（{os.cpu_count()} 核）"
    output = f"{pages.strip()}\n\n{fanout.strip()}"
    report = f"{machine}`nox -s bench` 的输出：\n\n{table}\n\n```text\n{output}\n```\n"
    print(report)
    if "--readme" in session.posargs:
        write_readme_section("bench", report)


def write_readme_section(name: str, text: str) -> None:
    """Replace what stands between README's <!-- name --> and <!-- /name -->."""
    with open("README.md", encoding="utf-8") as file:
        readme = file.read()
    start, end = f"<!-- {name} -->\n", f"<!-- /{name} -->"
    head, found, rest = readme.partition(start)
    if not found or end not in rest:
        raise SystemExit(f"README.md has no {start.strip()} … {end} section")
    tail = rest[rest.index(end) :]
    with open("README.md", "w", encoding="utf-8") as file:
        file.write(head + start + text + tail)


@nox.session(default=False)
def serve(session: nox.Session) -> None:
    """Serve the site with live reload at http://127.0.0.1:8000/."""
    install_groups(session, "docs")
    session.log("the site is at http://127.0.0.1:8000/ (Ctrl+C stops it)")
    address = ["--dev-addr", "127.0.0.1:8000"]
    session.run("mkdocs", "serve", *address, *session.posargs, env=sitebuild.ENV)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting of the snippets, the tests and this file."""
    install_groups(session, "lint")
    paths = session.posargs or ["snippets", "tests", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    if not session.posargs:  # the publishing workflow, which cannot run here
        workflows = [".github/workflows/pages.yml"]
        schema = ["--builtin-schema", "vendor.github-workflows"]
        session.run("check-jsonschema", *schema, *workflows)
        session.run("zizmor", "--offline", *workflows)


@nox.session(default=False)
def mutation(session: nox.Session) -> None:
    """Mutation-test snippets/ with mutmut (see pyproject.toml); print the kill rate."""
    ensure_system_programs(session)
    install_groups(session, "test", "mutation")
    # mutmut names a mutant after its file's path less a leading "src.", and the
    # tests import `<name>.app`: in this folder, src/ is snippets/ (pyproject.toml).
    work = os.path.join(os.path.abspath(session.create_tmp()), "mutmut")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "mutants"))
    for name in ["src", "snippets", "docs", "tests", "mkdocs.yml", "pyproject.toml"]:
        target = "snippets" if name == "src" else name
        os.symlink(os.path.abspath(target), os.path.join(work, name))
    # mutmut tells the mutant's name to the test process, and also in the environment:
    # programs the tests start would inherit it and look for mutmut's settings.
    with open(os.path.join(work, "mutants", "conftest.py"), "w") as conftest:
        conftest.write(
            "import os\n\n\ndef pytest_configure(config):\n"
            '    os.environ.pop("MUTANT_UNDER_TEST", None)\n'
        )
    session.chdir(work)
    # mutmut ends a test run that overruns, not what its tests started (redis-server,
    # app.py): it runs in a process group of its own, and what is left there is ended.
    script = 'mutmut run --max-children "$1"; s=$?; trap "" TERM; kill 0; exit $s'
    children = str(os.cpu_count() or 1)
    session.run("setsid", "--wait", "sh", "-c", script, "sh", children, external=True)
    session.run("mutmut", "results")  # the survivors: `mutmut show NAME` in work/
    session.run("mutmut", "export-cicd-stats", silent=True)
    with open(os.path.join(work, "mutants", "mutmut-cicd-stats.json")) as file:
        stats = json.load(file)
    killed = stats["killed"] + stats["timeout"]
    total = stats["total"] - stats["skipped"]
    session.log(f"mutants killed: {killed}/{total} = {killed / total:.1%} (in {work})")
    if killed < 0.9 * total:
        session.error("fewer than 90 % of the mutants were killed")
