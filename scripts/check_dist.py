"""Build the sdist and the wheel from a clean copy of the tree, and check them as a
packager and a new user would; run by ``nox -s package``.

``build OUTDIR``: copies the files git tracks (as a fresh clone has them, with their
uncommitted edits) to a temporary directory, and builds there with ``python -m
build``: the sdist, then the wheel from the sdist, so the wheel can only hold what
the sdist does. OUTDIR must be empty.

``check OUTDIR``: the one sdist and the one wheel in OUTDIR:

- the sdist holds every tracked file that the tests, the docs build and the benches
  need (REQUIRED_DIRS, REQUIRED_FILES), and nothing else;
- the wheel carries the licence, and its long description (the README, PyPI's page)
  links nothing relatively;
- the wheel, installed with the ``cli`` extra in a fresh venv outside the tree,
  imports from that venv, reports its version, and runs the README's sandbox
  command, which prints what docs/index.md shows (its JSON lines in any order).

    python scripts/check_dist.py build dist && python scripts/check_dist.py check dist
"""

from __future__ import annotations

import argparse
import email
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
# What the sdist must hold, all of it as tracked: what `nox` needs to run the tests,
# build the docs and run the benches from an unpacked sdist.
REQUIRED_DIRS = ("mailpartner_async", "tests", "docs", "scripts", "bench")
REQUIRED_FILES = (
    "pyproject.toml",
    "noxfile.py",
    "mkdocs.yml",
    "README.md",
    "CHANGELOG.md",
    "CONTRIBUTING.md",
    "SECURITY.md",
    "LICENSE",
)
# Added by hatchling to every sdist: the metadata it writes, and .gitignore.
BACKEND_ADDS = ("PKG-INFO", ".gitignore")
# The README's sandbox command, after the venv's bin directory.
SANDBOX_COMMAND = re.compile(r"\bmailpartner cancel --sandbox(?: \d+)+")
# The page that shows what the sandbox command prints, in the text block after it.
SHOWN_OUTPUT = ROOT / "docs" / "index.md"
# A Markdown link or reference whose target is neither absolute nor an anchor.
RELATIVE_LINK = re.compile(r"\]\((?!https?://|#)[^)]*\)|^\[[^\]]+\]:\s*(?!https?://|#)\S+", re.M)


class DistError(Exception):
    """What is wrong with a built distribution, for the session's failure line."""


def run(
    *command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command``, its program looked up on PATH; DistError unless it exits 0."""
    program = shutil.which(str(command[0]))
    if program is None:
        raise DistError(f"{command[0]} not found on PATH")
    done = subprocess.run(
        [program, *map(str, command[1:])],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shown = shlex.join(map(str, command))
        raise DistError(f"`{shown}` exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def in_git_checkout() -> bool:
    return (ROOT / ".git").exists() and shutil.which("git") is not None


def tracked_files() -> list[str]:
    """The files a fresh clone has (git's index, those still on disk); outside a git
    checkout (an unpacked sdist), the files of REQUIRED_DIRS and REQUIRED_FILES."""
    if in_git_checkout():
        listed = run("git", "-C", ROOT, "ls-files", "-z", "--cached").stdout.split("\0")
        return sorted(name for name in listed if name and (ROOT / name).is_file())
    found = [ROOT / name for name in (*REQUIRED_FILES, ".gitignore")]
    for directory in REQUIRED_DIRS:
        found += (ROOT / directory).rglob("*")
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in found
        if path.is_file() and "__pycache__" not in path.parts
    )


def build(outdir: Path) -> None:
    """Build the sdist, then the wheel from it, from a copy of the tracked files."""
    outdir.mkdir(parents=True, exist_ok=True)
    if any(outdir.iterdir()):
        raise DistError(f"{outdir} is not empty: the check must see only this build")
    if in_git_checkout():
        untracked = run("git", "-C", ROOT, "ls-files", "--others", "--exclude-standard").stdout
        if untracked.strip():
            print(f"left out, not tracked by git:\n{untracked}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mailpartner-build-") as scratch:
        tree = Path(scratch, "tree")
        for name in tracked_files():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
        run(sys.executable, "-m", "build", "--installer", "uv", "--outdir", outdir.resolve(), tree)
    for path in sorted(outdir.iterdir()):
        print(f"built {path}")


def the_dists(outdir: Path) -> tuple[Path, Path]:
    """The one sdist and the one wheel in ``outdir``, of the same version."""
    sdists = sorted(outdir.glob("*.tar.gz"))
    wheels = sorted(outdir.glob("*.whl"))
    others = sorted(set(outdir.iterdir()) - {*sdists, *wheels})
    if len(sdists) != 1 or len(wheels) != 1 or others:
        found = [path.name for path in sorted(outdir.iterdir())]
        raise DistError(f"expected one sdist and one wheel in {outdir}, found {found}")
    sdist, wheel = sdists[0], wheels[0]
    if sdist.name.removesuffix(".tar.gz") != "-".join(wheel.name.split("-")[:2]):
        raise DistError(f"{sdist.name} and {wheel.name} are not the same release")
    return sdist, wheel


def check_sdist(sdist: Path) -> None:
    """Every tracked file the tests and the docs need is in it, and nothing else is."""
    with tarfile.open(sdist) as archive:
        members = [PurePosixPath(member.name) for member in archive if member.isfile()]
    top = sdist.name.removesuffix(".tar.gz")
    if any(member.parts[0] != top for member in members):
        raise DistError(f"{sdist.name}: not every file is under {top}/")
    held = {PurePosixPath(*member.parts[1:]).as_posix() for member in members}
    wanted = {
        name
        for name in tracked_files()
        if name in REQUIRED_FILES or name.split("/", 1)[0] in REQUIRED_DIRS
    }
    missing = sorted((wanted | set(REQUIRED_FILES)) - held)
    unexpected = sorted(held - wanted - set(BACKEND_ADDS))
    if missing or unexpected:
        raise DistError(f"{sdist.name}: missing {missing}, unexpected {unexpected}")
    print(f"{sdist.name}: the {len(held)} files the tests, docs and benches need")


def check_wheel_metadata(wheel: Path) -> None:
    """The licence is in the wheel and named in its metadata; the README's links work
    on PyPI's page."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(name.split("/")[0] for name in names if ".dist-info/" in name)
        meta = email.message_from_bytes(archive.read(f"{info}/METADATA"))
    if f"{info}/licenses/LICENSE" not in names:
        raise DistError(f"{wheel.name}: no {info}/licenses/LICENSE")
    if meta["License-Expression"] != "MIT" or meta.get_all("License-File") != ["LICENSE"]:
        raise DistError(f"{wheel.name}: the metadata does not declare the MIT LICENSE")
    description = str(meta.get_payload())
    relative = RELATIVE_LINK.findall(description)
    if relative:
        raise DistError(f"{wheel.name}: links that break on PyPI: {relative}")
    print(f"{wheel.name}: MIT, LICENSE included, the README's links absolute")


def check_installed(wheel: Path) -> None:
    """Install the wheel with the ``cli`` extra in a fresh venv; import it, run the
    README's sandbox command."""
    command = SANDBOX_COMMAND.search((ROOT / "README.md").read_text(encoding="utf-8"))
    if command is None:
        raise DistError("README.md shows no `mailpartner cancel --sandbox ...` command")
    _, subcommand, *arguments = command.group().split()
    ids = [argument for argument in arguments if argument.isdigit()]
    version = wheel.name.split("-")[1]
    with tempfile.TemporaryDirectory(prefix="mailpartner-venv-") as scratch:
        here = Path(scratch)  # outside the tree: nothing imports from the checkout
        venv = here / "venv"
        bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
        run("uv", "venv", "--quiet", "--python", sys.executable, venv)
        run("uv", "pip", "install", "--quiet", "--python", bin_dir / "python", f"{wheel}[cli]")
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("MAILPARTNER_", "VIRTUAL_ENV", "PYTHON"))
        }
        probe = (
            "import importlib.metadata, mailpartner_async;"
            "print(mailpartner_async.__file__);"
            "print(importlib.metadata.version('mailpartner-async'))"
        )
        where, found = run(bin_dir / "python", "-c", probe, cwd=here, env=env).stdout.split()
        if not Path(where).resolve().is_relative_to(venv.resolve()) or found != version:
            raise DistError(f"the venv imported {where}, version {found}, not the wheel's")
        cli = bin_dir / "mailpartner"
        printed = run(cli, "--version", cwd=here, env=env).stdout.strip()
        if printed != f"mailpartner {version}":
            raise DistError(f"`mailpartner --version` printed {printed!r}")
        done = run(cli, subcommand, *arguments, cwd=here, env=env)
    printed_lines = [*done.stdout.splitlines(), *done.stderr.splitlines()]
    if sorted(printed_lines) != sorted(shown_output(command.group())):
        shown = "\n".join(printed_lines)
        raise DistError(
            f"`{command.group()}` printed, unlike {SHOWN_OUTPUT.relative_to(ROOT)}:\n{shown}"
        )
    print(f"{wheel.name}: imported from a fresh venv; `{command.group()}` cancelled {ids}")


def shown_output(command: str) -> list[str]:
    """The lines of the first text block after ``command`` in SHOWN_OUTPUT."""
    page = SHOWN_OUTPUT.read_text(encoding="utf-8")
    block = re.search(re.escape(command) + r"\n.*?^```text\n(?P<lines>.*?)^```$", page, re.M | re.S)
    if block is None:
        raise DistError(f"{SHOWN_OUTPUT.relative_to(ROOT)} shows no output of `{command}`")
    return block.group("lines").splitlines()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("step", choices=["build", "check"])
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.step == "build":
            build(args.outdir)
        else:
            sdist, wheel = the_dists(args.outdir)
            check_sdist(sdist)
            check_wheel_metadata(wheel)
            check_installed(wheel)
    except DistError as error:
        print(f"check_dist: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
