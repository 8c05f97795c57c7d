"""The command line's value converters: each turns an option's text into its value,
or raises ``argparse.ArgumentTypeError`` with one line saying what is expected."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from .._core.errors import ConfigurationError
from .._core.settings import check_count, check_local_address, check_seconds

__all__ = ["port", "positive_int", "positive_seconds", "rate_limit", "source_address"]

T = TypeVar("T")


def positive_int(text: str) -> int:
    return _checked(
        text, "an integer of at least 1", lambda: check_count("the value", int(text), minimum=1)
    )


def positive_seconds(text: str) -> float:
    return _checked(
        text, "a positive number of seconds", lambda: check_seconds("the value", float(text))
    )


def _checked(text: str, expected: str, convert: Callable[[], T]) -> T:
    """``convert()``'s value; the ``ValueError`` it raises (a ``ConfigurationError`` is
    one too) said as the option's one line: what is ``expected``, and the ``text``."""
    try:
        return convert()
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None


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


def source_address(text: str) -> str:
    """An IP address of this host, for ``local_address``, in its canonical form."""
    try:
        address = check_local_address(text)
    except ConfigurationError as exc:
        # The settings' own reason, in the option's words: "must be an IP address ...".
        raise argparse.ArgumentTypeError(str(exc).removeprefix("local_address ")) from None
    return str(address)  # never None: text is a string
