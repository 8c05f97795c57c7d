"""Print the mutation score of the last ``mutmut run`` and fail below a floor.

Reads ``mutmut results --all true`` (one ``name: status`` line per mutant). Killed
means caught: by a failing test, a timeout, or the type checker. Every other status
(survived, no tests, suspicious, not checked) counts against the score.

    python scripts/mutation_score.py --floor 95
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys

CAUGHT = frozenset({"killed", "timeout", "caught by type check"})


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


def report(statuses: dict[str, str], floor: float) -> int:
    """Print the score and the mutants not caught; 1 when the score is below ``floor``."""
    if not statuses:
        print("no mutants found: run `mutmut run` first", file=sys.stderr)
        return 1
    counts = collections.Counter(statuses.values())
    killed = sum(counts[status] for status in CAUGHT)
    total = len(statuses)
    score = 100 * killed / total
    missed = sorted(name for name, status in statuses.items() if status not in CAUGHT)
    for name in missed:
        print(f"  {statuses[name]:>12}  {name}")
    by_status = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    print(f"mutation score: {killed}/{total} killed = {score:.1f} % ({by_status})")
    if score < floor:
        print(f"below the floor of {floor:g} %: pin the survivors or list them in docs/mutation.md")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--floor", type=float, default=95.0, help="minimum score, in percent")
    args = parser.parse_args(argv)
    return report(read_results([sys.executable, "-m", "mutmut"]), args.floor)


if __name__ == "__main__":
    sys.exit(main())
