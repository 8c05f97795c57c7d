"""The arguments of ``mailpartner rescue submit|work|status``: a rescue shared through Redis.

Every subcommand names the campaign's Redis (``--redis-url``, else
``$MAILPARTNER_REDIS_URL``: prefer the variable when the URL holds a password) and the
campaign (``--campaign``). ``submit`` reads ids as ``cancel`` does; ``work`` builds its
client from ``cancel``'s own options, on a budget shared through Redis (``--pool``);
``status`` prints the campaign's progress, or ``--json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Final

from .._core.errors import ConfigurationError
from .._core.redis_rescue import MIN_LEASE, check_lease
from .._core.settings import DEFAULT_RATE_LIMIT
from .converters import positive_int, positive_seconds
from .parser import add_client_options, add_input_options

__all__ = ["DEFAULT_POOL", "REDIS_URL_ENV", "rescue_parser"]

REDIS_URL_ENV: Final = "MAILPARTNER_REDIS_URL"
DEFAULT_POOL: Final = "mailpartner"  # cancel's --redis-key: one budget unless told


def rescue_parser(commands: Any, keys: Sequence[str]) -> argparse.ArgumentParser:
    """``rescue`` and its three subcommands; ``commands`` holds each by name."""
    rescue: Any = commands.add_parser(
        "rescue",
        keys=keys,
        help="share one rescue between many workers through Redis",
        description=(
            "Rescue a campaign with a fleet of workers sharing one queue in Redis (the "
            "redis extra): submit its ids once, run 'work' on every host, watch 'status'."
        ),
    )
    steps = rescue.add_subparsers(
        dest="rescue_command", required=True, metavar="STEP", parser_class=type(rescue)
    )
    rescue.commands["submit"] = _submit_parser(steps, keys)
    rescue.commands["work"] = _work_parser(steps, keys)
    rescue.commands["status"] = _status_parser(steps, keys)
    parser: argparse.ArgumentParser = rescue
    return parser


def _campaign_options(step: argparse.ArgumentParser) -> None:
    step.add_argument(
        "--redis-url",
        metavar="URL",
        help=f"the Redis the campaign lives on (default: ${REDIS_URL_ENV}; prefer the "
        "variable when the URL holds a password: arguments are visible to other users)",
    )
    step.add_argument(
        "--campaign",
        metavar="NAME",
        required=True,
        help="the campaign's name: every worker and submit of one rescue gives the same",
    )


def _submit_parser(steps: Any, keys: Sequence[str]) -> argparse.ArgumentParser:
    submit: argparse.ArgumentParser = steps.add_parser(
        "submit",
        keys=keys,
        help="queue a campaign's ids (again: each id is queued once)",
        description=(
            "Queue ids for the campaign, read as 'mailpartner cancel' reads them; an id "
            "already queued is not queued again. Prints how many were newly queued and "
            "the plan for what is left."
        ),
    )
    _campaign_options(submit)
    add_input_options(submit, verb="queue")
    submit.add_argument(
        "--pools",
        type=positive_int,
        default=1,
        metavar="N",
        help="plan for N budgets of --rate-limit: N addresses the workers leave from",
    )
    submit.add_argument(
        "--rate-limit",
        type=positive_int,
        default=DEFAULT_RATE_LIMIT,
        metavar="N",
        help="requests a minute each address may make, for the plan (the provider's cap)",
    )
    return submit


def _work_parser(steps: Any, keys: Sequence[str]) -> argparse.ArgumentParser:
    work: argparse.ArgumentParser = steps.add_parser(
        "work",
        keys=keys,
        help="cancel the campaign's ids, the earliest cut-off first, with the fleet",
        description=(
            "Take the campaign's ids from Redis, the earliest cut-off first across the "
            "fleet, and cancel them until none is left anywhere. Exit 0 when no email "
            "of the campaign will go out, 1 when any may, 2 for usage errors."
        ),
    )
    _campaign_options(work)
    work.add_argument(
        "--pool",
        default=DEFAULT_POOL,
        metavar="KEY",
        dest="redis_key",
        help="the Redis key of this worker's rate-limit budget: one per address the "
        "workers leave from, shared by every worker leaving from it",
    )
    work.add_argument(
        "--lease",
        type=_lease,
        default=30.0,
        metavar="SECONDS",
        help="how long this worker holds an id before another worker may take it back "
        f"(at least {MIN_LEASE:g})",
    )
    add_client_options(work)
    # Not offered: its outcomes would be recorded in the campaign as real ones.
    work.add_argument("--sandbox", action="store_true", help=argparse.SUPPRESS)
    return work


def _status_parser(steps: Any, keys: Sequence[str]) -> argparse.ArgumentParser:
    status: argparse.ArgumentParser = steps.add_parser(
        "status",
        keys=keys,
        help="the campaign's progress across the fleet",
        description=(
            "Print the campaign's progress: done and total, the rate, the time left, "
            "the outcomes, the workers seen in the last minute and the ids in flight."
        ),
    )
    _campaign_options(status)
    status.add_argument(
        "--json", action="store_true", help="print it as one JSON object, for scripts"
    )
    return status


def _lease(text: str) -> float:
    seconds = positive_seconds(text)
    try:
        return check_lease(seconds)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds of at least {MIN_LEASE:g}, got {text!r}"
        ) from exc
