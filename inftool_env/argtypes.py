"""argparse ``type=`` converters shared by every command (the main CLI, ``rollout``, ``evolve``): a bad
value is refused by argparse itself with one line naming the option and what it expected."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def at_least(least: int) -> Callable[[str], int]:
    """A whole number of at least ``least`` (``--steps``, ``--group``, …)."""

    def whole_number(text: str) -> int:
        if not least <= _whole(text):
            bound = "0 or more" if least == 0 else f"at least {least}"
            raise argparse.ArgumentTypeError(f"expected a whole number of {bound}, not {text!r}")
        return int(text)

    return whole_number


positive_int = at_least(1)
seed_arg = at_least(0)  # a seed: gymnasium refuses one below 0, and only at an episode's reset


def port(text: str) -> int:
    if not 0 <= _whole(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, not {text!r}")
    return int(text)


def _whole(text: str) -> int:
    """The whole number written, else -1 (refused by every range check above). ASCII digits only:
    "²".isdigit(), but int() refuses it."""
    return int(text) if text.isascii() and text.isdigit() else -1


def positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, not {text!r}")
    return value


def share(text: str) -> float:
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1), not {text!r}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")  # refused by every range check above
