"""The command line's value converters: each turns an option's text into its value,
or raises ``argparse.ArgumentTypeError`` with one line saying what is expected."""

from __future__ import annotations

import argparse
import math

from .._core.settings import check_count

__all__ = ["port", "positive_int", "positive_seconds", "rate_limit"]


def positive_int(text: str) -> int:
    try:
        return check_count("the value", int(text), minimum=1)
    except ValueError:  # ConfigurationError is one too
        raise argparse.ArgumentTypeError(
            f"must be an integer of at least 1, got {text!r}"
        ) from None


def positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return seconds


def port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}")
    return number


def rate_limit(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    return positive_int(text)
