"""Print the mutation score of the last ``mutmut run``; fail below a floor or on an
unexplained survivor.

Reads ``mutmut results --all true`` (one ``name: status`` line per mutant). Killed
means caught: by a failing test, a timeout, or the type checker. Every other status
(survived, no tests, suspicious, not checked) counts against the score. Every mutant
not caught must be listed as equivalent in ``docs/mutation.md``, and every mutant
listed there must still be one not caught (a stale name points at another change).

    python scripts/mutation_score.py --floor 95
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

CAUGHT = frozenset({"killed", "timeout", "caught by type check"})
PACKAGE = "mailpartner_async."
# A table row of docs/mutation.md: | `_core.protocol.x__parse_xml__mutmut_43` | ...
_LISTED = re.compile(r"^\|\s*`([\w.ǁ]+__mutmut_\d+)`", re.MULTILINE)


def read_results(mutmut: list[str]) -> dict[str, str]:
    """Each mutant's name and status, as ``mutmut results --all true`` prints them."""
    output = subprocess.run(
        [*mutmut, "results", "--all", "true"], check=True, capture_output=True, text=True
    ).stdout
    statuses: dict[str, str] = {}
    for line in output.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            statuses[name] = status
    return statuses


def read_equivalents(text: str) -> set[str]:
    """The full names of the mutants the equivalents table lists."""
    return {PACKAGE + name for name in _LISTED.findall(text)}


def report(statuses: dict[str, str], floor: float, equivalents: set[str]) -> int:
    """Print the score and the mutants not caught; 1 when the score is below ``floor``
    or the survivors and ``equivalents`` differ."""
    if not statuses:
        print("no mutants found: run `mutmut run` first", file=sys.stderr)
        return 1
    counts = collections.Counter(statuses.values())
    killed = sum(counts[status] for status in CAUGHT)
    total = len(statuses)
    score = 100 * killed / total
    missed = sorted(name for name, status in statuses.items() if status not in CAUGHT)
    for name in missed:
        note = "equivalent" if name in equivalents else "NOT LISTED in docs/mutation.md"
        print(f"  {statuses[name]:>12}  {name}  ({note})")
    stale = sorted(equivalents.difference(missed))
    for name in stale:
        print(f"  {'stale':>12}  {name}  (listed in docs/mutation.md, but caught or gone)")
    by_status = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    print(f"mutation score: {killed}/{total} killed = {score:.1f} % ({by_status})")
    failed = 0
    if score < floor:
        print(f"below the floor of {floor:g} %: pin the survivors or list them in docs/mutation.md")
        failed = 1
    if stale or not equivalents.issuperset(missed):
        print("docs/mutation.md is out of date: pin each unlisted survivor or list it with its")
        print("reason, and drop the stale names (`mutmut show <name>` shows a mutant)")
        failed = 1
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--floor", type=float, default=95.0, help="minimum score, in percent")
    parser.add_argument(
        "--equivalents",
        type=Path,
        default=Path("docs/mutation.md"),
        help="the page whose table lists the equivalent mutants",
    )
    args = parser.parse_args(argv)
    equivalents = read_equivalents(args.equivalents.read_text(encoding="utf-8"))
    return report(read_results([sys.executable, "-m", "mutmut"]), args.floor, equivalents)


if __name__ == "__main__":
    sys.exit(main())
