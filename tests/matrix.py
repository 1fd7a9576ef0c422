"""The reader's environment and the version matrix: run by `nox -s matrix`.

Each FAQ page declares in its front matter what a reader installs::

    ---
    requires:
      - aiohttp>=3.9
      - aiosqlite>=0.20
    ---

For every page this runs, side by side:

- **the reader's environment**: a fresh virtual environment holding exactly
  those packages (their newest allowed releases) and nothing else; every block
  of the page runs there (programs started with that environment's ``python``,
  transcripts replayed, outputs compared);
- **the matrix**: for each declared package, the versions the page claims
  (below), the other packages at their newest; a version passes when the
  page's blocks pass in a reader's environment with it and the page's own test
  module passes in an environment with it and the test tools.

Versions, from PyPI's list of releases (no pre-releases, nothing yanked):
aiohttp: the claimed minimum, the newest release of every minor inside the
range and every release of the newest minor; any other package: the claimed
minimum, the first and the newest release of every major inside the range.
``--every-release`` runs every release inside each range instead. A version
the page excludes (``!=``) is run too and must fail: the record keeps the first
line of its failure, which the page shows.

Each result is cached under ``~/.cache/aiohttp-faq-matrix/results`` by a
digest of all it depends on (the page, its snippets, its test module, the
shared test machinery, the exact versions, the Python); the record for the
site is written to ``--record`` (`nox -s matrix` gives ``.nox/matrix.json``).
Exits 1 if a version inside a declared range fails or an excluded one passes.
"""

from __future__ import annotations

import argparse
import ast
import collections
import concurrent.futures
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pages  # noqa: E402

# Environments and results outlive a checkout: a fresh clone on the same
# machine reuses them (results are keyed by everything they depend on).
CACHE_HOME = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
WORK = CACHE_HOME / "aiohttp-faq-matrix"
# What every result depends on besides its page: the shared test machinery.
SHARED = ["tests/pages.py", "tests/servers.py", "tests/conftest.py"]
SHARED += ["tests/test_pages.py", "tests/claims.py"]
# How this module makes a run (its environments and its pytest command): raise
# it when a change here changes that. Record keeping and printing do not count.
RUN_FORMAT = 2
# ... and of the configuration files, only what a page's tests read: pytest's
# settings (pyproject.toml) and how includes are resolved (mkdocs.yml).
PYTEST_SETTINGS = tomllib.loads((pages.ROOT / "pyproject.toml").read_text("utf-8"))
INCLUDES = [
    e for e in pages.mkdocs_config()["markdown_extensions"] if "snippets" in str(e)
]
SETTINGS = json.dumps([PYTEST_SETTINGS["tool"]["pytest"], INCLUDES], sort_keys=True)
# What the page's test module needs besides the page's own packages. Versions
# are left to the resolver, which picks releases that support the pinned ones.
TEST_TOOLS = ["pytest>=8.3", "pytest-aiohttp", "pytest-asyncio>=0.24"]
TEST_TOOLS += ["pytest-codeblocks>=0.17", "pymdown-extensions>=10.14"]
TEST_TOOLS += ["markdown>=3.6", "pyyaml>=6", "packaging>=22"]
PYPI = "https://pypi.org/pypi/{}/json"


def group_requirements(group: str) -> list[str]:
    """A dependency group of pyproject.toml, its included groups expanded."""
    found = []
    for item in PYTEST_SETTINGS["dependency-groups"][group]:
        if isinstance(item, dict):
            found += group_requirements(item["include-group"])
        else:
            found.append(item)
    return found


@functools.cache
def test_extras(page: str) -> tuple[str, ...]:
    """What the page's test module imports beyond the page's packages and the
    test tools (trustme, say), as pyproject.toml's `test` group requires it."""
    tree = ast.parse(test_module(page).read_text("utf-8"))
    modules = {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    modules |= {
        n.module
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and not n.level
    }
    provided = importlib.metadata.packages_distributions()
    wanted = {
        canonicalize_name(dist)
        for module in modules
        for dist in provided.get(module.partition(".")[0], [])
    }
    have = [
        Requirement(r).name for r in [*pages.requirements(page_file(page)), *TEST_TOOLS]
    ]
    wanted -= {canonicalize_name(name) for name in have}
    return tuple(
        r
        for r in group_requirements("test")
        if canonicalize_name(Requirement(r).name) in wanted
    )


def pypi(name: str) -> dict[str, str]:
    """{version: its Requires-Python} of every release of ``name`` not yanked."""
    cache = WORK / "pypi" / f"{canonicalize_name(name)}.json"
    if not cache.exists() or time.time() - cache.stat().st_mtime > 3600:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(PYPI.format(name), timeout=60) as answer:
            data = json.load(answer)
        found = {
            version: files[0].get("requires_python") or ""
            for version, files in data["releases"].items()
            if files and not all(f.get("yanked") for f in files)
        }
        cache.write_text(json.dumps(found))
    return json.loads(cache.read_text())


def releases(name: str) -> list[Version]:
    """Every final, not yanked release of ``name`` on PyPI, oldest first."""
    versions = [Version(v) for v in pypi(name)]
    return sorted(v for v in versions if not v.is_prerelease and not v.is_devrelease)


def find_pythons() -> dict[str, tuple[str, str]]:
    """{"3.X": (interpreter, "3.X.Y")} for each CPython 3 here (PATH and pyenv)."""
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"]
    candidates = [
        # The interpreter behind this one (a venv's python is a link to it), so
        # environments made from it are found again from any checkout.
        os.path.realpath(sys.executable),
        *(shutil.which(f"python3.{minor}") for minor in range(8, 20)),
        *(str(p) for root in roots for p in sorted(root.glob("3.*/bin/python3"))),
    ]
    found: dict[str, tuple[str, str]] = {}
    for path in filter(None, candidates):
        if "shims" in Path(path).parts:  # pyenv's stand-ins, not interpreters
            continue
        version = subprocess.run(
            [path, "-c", "import platform; print(platform.python_version())"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        if version:
            found.setdefault(".".join(version.split(".")[:2]), (path, version))
    return found


PYTHONS = find_pythons()
DEFAULT_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def oldest_python(requirement: Requirement, table: dict[str, str]) -> str:
    """The oldest CPython 3.X on which pip installs some release in the range;
    ``table`` is {version: its Requires-Python}, as `pypi()` gives it."""
    found = []
    for version, needs in table.items():
        if not requirement.specifier.contains(version):
            continue
        try:
            spec = SpecifierSet(needs)
        except InvalidSpecifier:  # an unreadable Requires-Python: pip ignores it
            spec = SpecifierSet()
        found += [f"3.{m}" for m in range(6, 20) if spec.contains(f"3.{m}.0")]
    return min(found, key=Version)


def newer_python_than(target: str, paths: list[Path]) -> str:
    """vermin's report of what in ``paths`` needs a Python newer than ``target``.

    Annotations count where Python evaluates them, in a module without
    ``from __future__ import annotations`` (``AsyncIterator[None]`` fails on
    3.8); vermin is told which modules those are.
    """
    program = Path(sys.executable).with_name("vermin")  # installed beside pytest
    vermin = [str(program), "--no-tips", "--violations", "-q", f"--target={target}-"]
    postponed = [
        p for p in paths if "from __future__ import annotations" in p.read_text("utf-8")
    ]
    evaluated = [p for p in paths if p not in postponed]
    reports = []
    for options, group in [([], postponed), (["--eval-annotations"], evaluated)]:
        if group:
            result = subprocess.run(
                [*vermin, *options, *map(str, group)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )
            if result.returncode:
                reports.append(result.stdout.strip())
    return "\n".join(reports)


def builtin_timeout_handlers(source: str) -> list[int]:
    """Lines that catch the builtin TimeoutError, which before Python 3.11 is not
    the asyncio.TimeoutError that aiohttp and asyncio raise."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            names = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            if any(isinstance(n, ast.Name) and n.id == "TimeoutError" for n in names):
                lines.append(node.lineno)
    return lines


def python_problem(page: Path) -> str:
    """What the page's programs use that the oldest Python its install line
    installs on lacks (asyncio.timeout, TaskGroup, ... and, before 3.11, an
    `except TimeoutError` that misses asyncio's): a reader there copies them
    and they fail."""
    requirements = [Requirement(r) for r in pages.requirements(page)]
    target = max((oldest_python(r, pypi(r.name)) for r in requirements), key=Version)
    programs = sorted(
        p for p in (pages.SNIPPETS / page.stem).rglob("*.py")
        if "__pycache__" not in p.parts
    )  # fmt: skip
    found = [" ".join(newer_python_than(target, programs).split())]
    if Version(target) < Version("3.11"):
        found += [
            f"{p.relative_to(pages.SNIPPETS)} line {line}: use asyncio.TimeoutError"
            for p in programs
            for line in builtin_timeout_handlers(p.read_text("utf-8"))
        ]
    report = "; ".join(filter(None, found)).replace(f"{pages.SNIPPETS}/", "")
    if not report:
        return ""
    return f"{page.stem}: its requirements install on Python {target}: {report}"


def excluded(requirement: Requirement) -> list[Version]:
    """The releases a page excludes with ``!=``: each is run and must fail."""
    return [Version(s.version) for s in requirement.specifier if s.operator == "!="]


def in_range(requirement: Requirement) -> list[Version]:
    return [v for v in releases(requirement.name) if requirement.specifier.contains(v)]


def chosen_versions(requirement: Requirement, every_release: bool) -> list[Version]:
    """The versions of one package a page's matrix runs (see the module's doc)."""
    allowed = in_range(requirement)
    if not allowed:
        raise SystemExit(f"no release of PyPI's {requirement.name} is {requirement}")
    if every_release:
        return allowed
    chosen = {allowed[0], allowed[-1]}
    groups: dict[tuple[int, ...], list[Version]] = {}
    is_aiohttp = canonicalize_name(requirement.name) == "aiohttp"
    for version in allowed:
        key = version.release[:2] if is_aiohttp else version.release[:1]
        groups.setdefault(key, []).append(version)
    for versions in groups.values():
        chosen.add(versions[-1])
        if not is_aiohttp:
            chosen.add(versions[0])
    if is_aiohttp:
        chosen.update(groups[max(groups)])
    return sorted(chosen)


@dataclass(frozen=True)
class Run:
    """One page in one set of exact versions."""

    page: str
    pins: tuple[tuple[str, str], ...]  # (package, version), in declared order
    varied: str  # the package (or "Python") whose version this run is about
    expect_failure: bool
    python: str = DEFAULT_PYTHON

    @property
    def requirements(self) -> list[str]:
        return [f"{name}=={version}" for name, version in self.pins]

    def digest(self) -> str:
        parts = [pages.DOCS / f"{self.page}.md", test_module(self.page)]
        parts += sorted((pages.SNIPPETS / self.page).rglob("*"))
        parts += [pages.ROOT / p for p in SHARED]
        inputs = [self.pins, self.python, TEST_TOOLS, SETTINGS, RUN_FORMAT]
        inputs += test_extras(self.page)  # none: as before there were any
        digest = hashlib.sha256(json.dumps(inputs).encode())
        for path in parts:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(pages.ROOT)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
        return digest.hexdigest()[:20]


def plan(page: Path, every_release: bool) -> list[Run]:
    """The runs of one page: each package's versions, the others at their newest."""
    requirements = [Requirement(r) for r in pages.requirements(page)]
    newest = {r.name: in_range(r)[-1] for r in requirements}
    runs: dict[tuple, Run] = {}
    for requirement in requirements:
        versions = [(v, False) for v in chosen_versions(requirement, every_release)]
        lowest = in_range(requirement)[0]
        for spec in requirement.specifier:  # the claimed minimum is what runs first
            if spec.operator == ">=" and Version(spec.version) != lowest:
                raise SystemExit(
                    f"{page.name}: `{requirement}` claims {spec.version}, a release "
                    f"PyPI does not offer (yanked, or never made); the oldest one a "
                    f"reader can install is {lowest}: declare that"
                )
        versions += [(v, True) for v in excluded(requirement)]
        for version, broken in versions:
            pins = tuple(
                (r.name, str(version if r is requirement else newest[r.name]))
                for r in requirements
            )
            runs.setdefault(pins, Run(page.stem, pins, requirement.name, broken))
    # Every other Python here that the newest releases support, with them.
    newest_pins = tuple((r.name, str(newest[r.name])) for r in requirements)
    for python in sorted(PYTHONS, key=Version):
        supported = all(
            SpecifierSet(pypi(name)[version]).contains(f"{python}.0")
            for name, version in newest_pins
        )
        if python != DEFAULT_PYTHON and supported:
            runs[(python, newest_pins)] = Run(
                page.stem, newest_pins, "Python", False, python
            )
    return list(runs.values())


VENV_LOCKS: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)


def uv_run(argv: list[str], given: str | None = None) -> str:
    """Run uv (``given`` on its input); return what it printed, or raise
    InstallFailed with the first line of its complaint."""
    result = subprocess.run(
        argv, input=given, capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise InstallFailed(first_line(result.stderr or result.stdout))
    return result.stdout


def venv(uv: str, interpreter: str, requirements: list[str], kind: str) -> Path:
    """A virtual environment with exactly ``requirements`` (reused if it exists)."""
    key = json.dumps([kind, interpreter, sorted(requirements)])
    key = hashlib.sha256(key.encode()).hexdigest()
    folder = WORK / "venvs" / f"{kind}-{key[:16]}"
    python = folder / "bin" / "python"
    with VENV_LOCKS[folder.name]:
        if not (folder / ".complete").exists():
            uv_run([uv, "venv", "-q", "--clear", "-p", interpreter, str(folder)])
            # Not compiled here: the run writes the bytecode of what it imports
            # (PYTHONDONTWRITEBYTECODE is cleared in execute()), once. Compiling
            # every module at install took 22-35 % longer (measured: 3 pages'
            # 39 and 44 runs, 109.8 s and 69.7 s against 70.6 s and 54.3 s).
            install = [uv, "pip", "install", "-q", "--python", str(python)]
            uv_run([*install, *requirements])
            (folder / ".complete").write_text("")
    return python


def site_packages(python: Path) -> Path:
    """The site-packages folder of the virtual environment of ``python``."""
    found = sorted(python.parent.parent.glob("lib/python3.*/site-packages"))
    assert len(found) == 1, found
    return found[0]


def tester_venv(uv: str, interpreter: str, reader: Path, tools: list[str]) -> Path:
    """An environment for a page's test module: the reader's, and the test tools.

    The same packages as one environment holding the reader's requirements
    and ``tools``, resolved together, with the reader's exact versions. It is
    made of layers, so that what many runs share is installed and compiled to
    bytecode once: a virtual environment of its own whose site-packages adds
    (a ``.pth`` file) the reader's environment and then a folder holding only
    the tools and what they need beyond the reader's packages, shared by every
    run that resolves to the same tools. Programs the tests start with this
    Python see both; the reader's programs run with the reader's Python alone.
    Measured on 5 pages (62 runs) from no environments, uv's cache full: 301 s
    of CPU (175 s wall) with an environment of its own for each run's tests,
    264 s (149 s) with the layers.
    """
    frozen = uv_run([uv, "pip", "freeze", "-q", "--python", str(reader)]).split()
    provided = {canonicalize_name(line.partition("==")[0]) for line in frozen}
    key = hashlib.sha256(json.dumps([interpreter, frozen, tools]).encode())
    folder = WORK / "venvs" / f"test-{key.hexdigest()[:16]}"
    python = folder / "bin" / "python"
    with VENV_LOCKS[folder.name]:
        if (folder / ".complete").exists():
            return python
        # Resolved with the reader's packages held at their versions.
        constraints = folder.with_suffix(".constraints.txt")
        constraints.parent.mkdir(parents=True, exist_ok=True)
        constraints.write_text("\n".join(frozen) + "\n")
        compile_ = [uv, "pip", "compile", "-q", "--no-header", "--no-annotate"]
        compile_ += ["-p", interpreter, "-c", str(constraints), "-"]
        resolved = uv_run(compile_, "\n".join(frozen + tools)).splitlines()
        extra = sorted(
            line.strip()
            for line in resolved
            if line.strip() and not line.startswith("#")
            and canonicalize_name(line.partition("==")[0].strip()) not in provided
        )  # fmt: skip
        tools_key = hashlib.sha256(json.dumps([interpreter, extra]).encode())
        layer = WORK / "tools" / tools_key.hexdigest()[:16]
        with VENV_LOCKS[layer.name]:
            if not (layer / ".complete").exists():
                shutil.rmtree(layer, ignore_errors=True)
                install = [uv, "pip", "install", "-q", "--no-deps", "-p", interpreter]
                uv_run([*install, "--target", str(layer), *extra])
                (layer / ".complete").write_text("")
        uv_run([uv, "venv", "-q", "--clear", "-p", interpreter, str(folder)])
        layers = [site_packages(reader), layer]
        (site_packages(python) / "faq_layers.pth").write_text(
            "".join(f"import site; site.addsitedir({str(p)!r})\n" for p in layers)
        )
        # The programs the packages install (gunicorn, say), run by this Python.
        for script in [*reader.parent.iterdir(), *(layer / "bin").glob("*")]:
            target = folder / "bin" / script.name
            if target.exists() or not script.is_file() or script.is_symlink():
                continue
            lines = script.read_bytes().split(b"\n", 1)
            if not lines[0].startswith(b"#!") or b"python" not in lines[0]:
                continue
            target.write_bytes(b"#!" + bytes(python) + b"\n" + lines[1])
            target.chmod(0o755)
        (folder / ".complete").write_text("")
    return python


class InstallFailed(Exception):
    """uv could not install the requirements."""


def page_file(page: str) -> Path:
    return pages.DOCS / f"{page}.md"


def test_module(page: str) -> Path:
    return pages.ROOT / "tests" / f"test_{page}.py"


def first_line(output: str) -> str:
    """The line of a failed run that says what failed, without temporary paths."""
    output = re.sub(r"/tmp/\S*/", "", output)
    for pattern in (r"^E\s+(\S.*)$", r"^(FAILED .*)$", r"^(ERROR .*)$", r"^\s*(\S.*)$"):
        found = re.findall(pattern, output, re.M)
        if found:
            return found[0][:300]
    return "no output"


@functools.cache
def cache_file(run: Run) -> Path:
    """Where the outcome of ``run`` is kept (its inputs read once, at the start)."""
    return WORK / "results" / f"{run.page}-{run.digest()}.json"


def execute(batch: list[Run], uv: str) -> None:
    """Run the pages of ``batch`` (same versions, same Python) in one pytest run.

    Each page's outcome is written to its cache file: it passed if every test
    of its blocks and of its test module passed, and there was at least one
    of each. Pages share the process, so one page's failure can fail another
    (a pipe it left open, reported when the garbage collector runs during the
    other's test): when several pages fail, each runs again alone, and that
    outcome is the one kept.
    """
    start = time.perf_counter()
    first = batch[0]
    python = PYTHONS[first.python][0]
    names = [run.page for run in batch]
    try:
        reader = venv(uv, python, first.requirements, "reader")
        tools = TEST_TOOLS + list(test_extras(first.page))
        tester = tester_venv(uv, python, reader, tools)
    except InstallFailed as exc:
        outcomes = {page: (False, f"install failed: {exc}") for page in names}
    else:
        report = WORK / "reports" / f"{first.digest()}-{os.getpid()}.xml"
        report.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FAQ_READER_PYTHON": str(reader)}
        env["FAQ_PAGES"] = ",".join(names)
        env.pop("VIRTUAL_ENV", None)
        # This machine sets PYTHONDONTWRITEBYTECODE: without cached bytecode
        # every program a run starts compiles aiohttp again (0.4 s, not 0.2).
        env["PYTHONDONTWRITEBYTECODE"] = ""
        argv = [str(tester), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        argv += ["--continue-on-collection-errors", f"--junitxml={report}"]
        argv += ["tests/test_pages.py", *(str(test_module(page)) for page in names)]
        result = subprocess.run(
            argv, cwd=pages.ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, check=False,
        )  # fmt: skip
        outcomes = page_outcomes(report, names, result.stdout)
        failed = [run for run in batch if not outcomes[run.page][0]]
        if len(failed) > 1:
            for run in failed:
                execute([run], uv)
            batch = [run for run in batch if run not in failed]
            if not batch:
                return
    seconds = round((time.perf_counter() - start) / len(batch), 1)
    for run in batch:
        passed, reason = outcomes[run.page]
        outcome = {"passed": passed, "reason": reason, "seconds": seconds}
        cache_file(run).parent.mkdir(parents=True, exist_ok=True)
        cache_file(run).write_text(json.dumps(outcome))


def page_outcomes(
    report: Path, names: list[str], output: str
) -> dict[str, tuple[bool, str]]:
    """(passed, first line of the first failure) per page, from a JUnit report."""
    seen = {page: {"blocks": 0, "module": 0} for page in names}
    failures: dict[str, str] = {}
    cases = ElementTree.parse(report).iter("testcase") if report.exists() else []
    for case in cases:
        module = case.get("classname", "").rsplit(".", 1)[-1]
        if module == "test_pages":
            page, kind = case.get("name", "").split("[", 1)[1].split(".md")[0], "blocks"
        else:
            page, kind = module.removeprefix("test_"), "module"
        if page not in seen:
            continue
        seen[page][kind] += 1
        for problem in [*case.iter("failure"), *case.iter("error")]:
            text = problem.text or problem.get("message") or ""
            failures.setdefault(page, first_line(text))
    outcomes = {}
    for page in names:
        if page in failures:
            outcomes[page] = (False, failures[page])
        elif not all(seen[page].values()):
            outcomes[page] = (False, f"nothing ran: {first_line(output)}")
        else:
            outcomes[page] = (True, "")
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every-release", action="store_true")
    parser.add_argument("--jobs", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--uv", default="uv", help="the uv program")
    parser.add_argument(
        "--record", type=Path, default=pages.ROOT / ".nox" / "matrix.json"
    )
    parser.add_argument("pages", nargs="*", help="page names (default: all)")
    args = parser.parse_args()
    chosen = [p for p in pages.pages() if p.name != "index.md"]
    if args.pages:
        chosen = [p for p in chosen if p.stem in args.pages]
    runs = [run for page in chosen for run in plan(page, args.every_release)]
    for run in runs:  # what each run depends on, as it is now
        cache_file(run)
    start = time.perf_counter()
    # Pages that need the same versions on the same Python (and the same test
    # tools) share one pytest run.
    batches: dict[tuple, list[Run]] = {}
    for run in runs:
        if not cache_file(run).exists():
            key = (run.python, run.pins, test_extras(run.page))
            batches.setdefault(key, []).append(run)
    # The longest first (the most pages), so that the short ones fill the end.
    longest_first = sorted(batches.values(), key=len, reverse=True)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda batch: execute(batch, args.uv), longest_first))
    outcomes = [json.loads(cache_file(run).read_text()) for run in runs]
    # A reader on the oldest Python the page's range installs on runs them too.
    problems = list(filter(None, map(python_problem, chosen)))
    old = args.record.exists() and args.pages  # one page rerun: keep the others
    record = json.loads(args.record.read_text()) if old else {}
    for page in chosen:
        record[page.stem] = {
            "python": PYTHONS[DEFAULT_PYTHON][1],
            "requires": pages.requirements(page),
            "packages": {},
        }
    entries: dict[tuple[str, str, str], dict] = {}
    for run, outcome in zip(runs, outcomes, strict=True):
        if run.varied == "Python":
            ran = [("Python", PYTHONS[run.python][1])]
        else:  # the varied package, and the others at their newest releases
            ran = [
                (n, v) for n, v in run.pins if n == run.varied or not run.expect_failure
            ]
        for name, version in ran:
            entry = entries.get((run.page, name, version))
            if entry is None:
                excluded = run.expect_failure and name == run.varied
                entry = {"version": version, **outcome, "excluded": excluded}
                entries[run.page, name, version] = entry
                record[run.page]["packages"].setdefault(name, []).append(entry)
            elif entry["passed"] and not outcome["passed"]:
                entry.update(passed=False, reason=outcome["reason"])
        if outcome["passed"] == run.expect_failure:
            what = "passes although excluded" if run.expect_failure else "fails"
            why = outcome["reason"]
            version = dict(ran)[run.varied]
            problems.append(f"{run.page}: {run.varied} {version} {what}: {why}")
        mark = "ok  " if outcome["passed"] else "FAIL"
        pins = " ".join(run.requirements)
        took = outcome["seconds"]
        print(f"{mark} {run.page:22} Python {run.python} {pins} ({took} s)")
    for entry in record.values():
        for versions in entry["packages"].values():
            versions.sort(key=lambda e: Version(e["version"]))
    args.record.write_text(json.dumps(record, ensure_ascii=False, indent=1))
    took = time.perf_counter() - start
    print(f"matrix: {len(runs)} runs on {len(chosen)} pages in {took:.1f} s")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
