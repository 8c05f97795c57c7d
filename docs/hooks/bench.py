"""mkdocs hook: put the benchmark results of ``bench/`` into ``benchmarks.md``.

A line ``<!-- bench: NAME.md -->`` in a page is replaced by ``bench/NAME.md`` with its
headings moved under the page's second level, its relative links pointed at the repository, and its
images copied into the site. When the file is missing (results are written by the
bench session, not kept in every checkout), a note says where it comes from. Every
image of ``bench/`` (a plot) the included files do not show is added after the first
inclusion.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

BENCH = Path(__file__).resolve().parents[2] / "bench"
MARKER = re.compile(r"^<!-- bench: (?P<name>[\w.-]+\.md) -->$", re.MULTILINE)
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s")
INCLUDED_TOP_LEVEL = 3  # the included file's top headings go under the page's h2
SITE_DIR = "bench"  # where images go in the site, next to benchmarks.md
IMAGE_SUFFIXES = (".png", ".svg", ".jpg")
ORIGIN = {
    "RESULTS.md": "`nox -s bench` (which runs `bench/run.py`)",
    "FIRST_NUMBERS.md": "`python bench/first_numbers.py --markdown bench/FIRST_NUMBERS.md`",
}


def images() -> list[Path]:
    """The images in ``bench/``, by name."""
    if not BENCH.is_dir():
        return []
    return sorted(p for p in BENCH.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def on_files(files: Files, config: Any) -> Files:
    for image in images():
        files.append(File.generated(config, f"{SITE_DIR}/{image.name}", abs_src_path=str(image)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if MARKER.search(markdown) is None:
        return markdown
    shown: set[str] = set()
    first = True

    def include(match: re.Match[str]) -> str:
        nonlocal first
        name = match["name"]
        path = BENCH / name
        if not path.is_file():
            origin = ORIGIN.get(name, "the bench session")
            return (
                f'!!! note "No `bench/{name}` in this build"\n\n'
                f"    It is written by {origin}; build the site again after running it.\n"
            )
        text = _adapt(path.read_text(encoding="utf-8"), config, shown)
        if first:
            first = False
            extra = [p.name for p in images() if p.name not in shown]
            text += "".join(f"\n![{name}]({SITE_DIR}/{name})\n" for name in extra)
        return text

    return MARKER.sub(include, markdown)


def _adapt(text: str, config: Any, shown: set[str]) -> str:
    """Headings under the page's own, links that work from the site; code fences kept."""
    repo = str(config.get("repo_url") or "").rstrip("/")
    lines: list[str] = []
    headings: list[int] = []  # indexes of heading lines in ``lines``
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            if HEADING.match(line):
                headings.append(len(lines))
            line = LINK.sub(lambda m: _relink(m, repo, shown), line)
        lines.append(line)
    if headings:
        top = min(len(lines[i]) - len(lines[i].lstrip("#")) for i in headings)
        for i in headings:
            lines[i] = "#" * max(INCLUDED_TOP_LEVEL - top, 0) + lines[i]
    return "\n".join(lines) + "\n"


def _relink(match: re.Match[str], repo: str, shown: set[str]) -> str:
    target = match["target"]
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
        return match[0]
    if match["bang"]:
        name = Path(target).name
        if name not in {image.name for image in images()}:
            return f"(image `{target}` not found)"
        shown.add(name)
        return f"![{match['text']}]({SITE_DIR}/{name})"
    return f"[{match['text']}]({repo}/blob/main/bench/{target})"
