"""``PickledState``: a frozen state's random generator thaws with its position unread until it draws."""

from __future__ import annotations

import copy
import random

import pytest

from inftool_env.backends.base import PickledState


class Drawing:
    def __init__(self) -> None:
        self.kept: list[int] = []
        self._rng = random.Random(11)


def draws(rng: random.Random) -> list[object]:
    items = list(range(10))
    rng.shuffle(items)
    return [rng.random(), rng.randint(1, 10**9), rng.choice("abcdef"), rng.getrandbits(70), rng.uniform(-1, 1),
            rng.gauss(0, 1), rng.randbytes(5), rng.sample(range(100), 3), items]  # fmt: skip


def test_a_thawed_generator_draws_what_the_original_draws_from_the_same_position() -> None:
    state = Drawing()
    state._rng.random()  # a position other than the seed's
    thawed = PickledState.thaw_state(PickledState().freeze_state(state))
    assert draws(thawed._rng) == draws(state._rng)
    assert thawed._rng.getstate() == state._rng.getstate()


def test_an_undrawn_thawed_generator_freezes_to_its_bytes_without_reading_its_position(monkeypatch) -> None:
    frozen = PickledState().freeze_state(Drawing())
    thawed = PickledState.thaw_state(frozen)

    def unread(self: random.Random) -> None:
        raise AssertionError("the position was read")

    monkeypatch.setattr(random.Random, "getstate", unread)
    assert PickledState().freeze_state(thawed) == frozen
    monkeypatch.undo()
    thawed._rng.random()
    assert PickledState().freeze_state(thawed) != frozen  # it drew: its new position is frozen


@pytest.mark.parametrize("how", ["deepcopy", "setstate", "seed"])
def test_a_thawed_generator_copied_or_reset_before_drawing_goes_on_as_a_plain_one(how: str) -> None:
    plain = random.Random(11)
    thawed = PickledState.thaw_state(PickledState().freeze_state(Drawing()))._rng
    if how == "deepcopy":
        thawed = copy.deepcopy(thawed)
    elif how == "setstate":
        plain.random()
        thawed.setstate(plain.getstate())
    else:
        plain.seed(5)
        thawed.seed(5)
    assert draws(thawed) == draws(plain)
