"""Multi-turn correctness the way BFCL judges it, executed on our compiled MCP servers.

The model's calls (grouped by user turn, then by assistant step) and the ground truth's are each
replayed on fresh state — one new backend instance per server, never a live one of an episode —
through the servers' own call path (argument validation, backend, result shaping). After every
user turn whose ground truth makes calls:

- state: every server's public state equals the ground truth's;
- response: the ground truth's results of that turn are an unordered sub-multiset of all the
  model's results so far, and the model made at least one call that turn.

Replaying rather than trusting the live episode is what BFCL's checker does too; it also makes
the check transport-independent (an episode run over stdio or HTTP is replayed in-process).

States are compared where they live, never serialised: a backend may offer
``state_matches(state, expected)`` (BFCL's classes compare their public attributes with ``==``,
as BFCL's checker does); any other is compared by its ``snapshot``. Where every backend is
``deterministic`` and offers ``copy_state``, the ground truth's side of a task — its results and
its states at each checked turn (copies, or frozen where the backend freezes, thawed when first
compared) — is kept once the task is seen a second time (a GRPO group, an eval of several
checkpoints), so later replays run only the model's side. A state is made
at its first call: a server neither side has called is as fresh on both, and on a deterministic
backend it is neither made nor compared. An episode whose calls were the ground truth's own, each
answered by the backend itself (none refused, unknown or cut off), on deterministic backends, is not
replayed at all: a replay would give its results and states again, so its own results (``live``)
stand for both sides. Where the backends also freeze their states (``freeze_state``, backends/base.py),
a kept side holds each turn's frozen states too: a rollout whose first turns are the ground truth's
calls starts from the ground truth's states after them, and one whose states are the ground truth's
whole (private parts included, so a moved generator tells) and whose calls left are its own ends
there, the rest being the ground truth's outcomes. So a rollout that goes wrong in one turn of many
replays about that turn. A call the server refuses before running it (an unknown tool, arguments
refused) changes no state, and its refusal is known without one (``CompiledServer.check``): a turn
whose other calls are the ground truth's counts as its calls, so a rollout that is refused and then
corrects itself takes the kept side too. A model's call whose checks passed while its turn was lined up
runs without them (``check``'s ``Checked``): each call is checked once.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from inftool_env.backends.base import data_key
from inftool_env.mcp.server import Checked, CompiledServer, result_text
from inftool_env.rewards.bfcl_ast import OK, Verdict
from inftool_env.tasks import Task, ToolCall
from inftool_env.trajectory import CallRecord, Trajectory

Steps = list[list[ToolCall]]  # one user turn: the calls of each assistant step
TRUTH_CACHE_SIZE = 128  # tasks (seen-once markers included); a GRPO group's rollouts come together


@dataclass(frozen=True)
class TurnOutcome:
    steps: Steps
    results: list[str]
    truth_calls: int
    truth_results: list[str]
    differ: tuple[str, ...] = ()  # servers whose state after this turn is not the ground truth's

    @property
    def responded(self) -> bool:
        return _responded(self.steps)

    @property
    def state_ok(self) -> bool:
        return not self.differ

    def missing(self, results_so_far: Sequence[str]) -> list[str]:
        pool = list(results_so_far)
        missing = []
        for item in self.truth_results:
            if item in pool:
                pool.remove(item)
            else:
                missing.append(item)
        return missing


def _responded(steps: Steps) -> bool:
    """BFCL's "empty turn" test: no step, or a single step with no call."""
    return not (not steps or (len(steps) == 1 and not steps[0]))


def is_replayable(servers: Mapping[str, CompiledServer]) -> bool:
    """A backend that forwards to a live system (proxy) must not be called again by a checker."""
    return all(getattr(s.backend, "replayable", True) for s in servers.values())


def steps_by_turn(trajectory: Trajectory) -> list[Steps]:
    """The trajectory's calls per user turn: an assistant reply without calls ends a turn."""
    return [[[ToolCall(name=c.name, arguments=c.arguments) for c in step] for step in turn]
            for turn in _records_by_turn(trajectory)]  # fmt: skip


def results_by_turn(trajectory: Trajectory) -> list[list[str]] | None:
    """The results the episode's calls got, per user turn as ``steps_by_turn`` groups them; None if a
    call was not answered by the backend itself (not offered, refused, timed out, the server's own
    failure), whose result a replay would not give again."""
    turns = _records_by_turn(trajectory)
    if any(c.is_error and c.error_kind != "execution" for turn in turns for step in turn for c in step):
        return None
    return [[c.result for step in turn for c in step] for turn in turns]


def _records_by_turn(trajectory: Trajectory) -> list[list[list[CallRecord]]]:
    turns: list[list[list[CallRecord]]] = [[]]
    for record in trajectory.turns:
        if record.calls:
            turns[-1].append(record.calls)
        elif record.parse_error is None:
            turns.append([])
    return turns


async def replay_turns(
    servers: Mapping[str, CompiledServer],
    task: Task,
    model: Sequence[Steps],
    *,
    seed: int,
    truths: TruthCache | None = None,
    live: Sequence[Sequence[str]] | None = None,
) -> list[TurnOutcome]:
    """Both sides on fresh state with the episode's seed and the task's initial state. ``truths``
    (default: the process's ``TRUTHS``) may hold the ground truth's side of the task already.
    ``live``: the episode's own results (``results_by_turn``), which stand for both sides where its
    calls were the ground truth's on deterministic backends."""
    return [turn async for turn in _replay(servers, task, model, seed=seed, truths=truths, live=live)]


async def verdict_multi_turn(
    servers: Mapping[str, CompiledServer],
    task: Task,
    model: Sequence[Steps],
    *,
    seed: int,
    truths: TruthCache | None = None,
) -> Verdict:
    """``check_multi_turn`` of the replay, replaying only through the first failing turn, as BFCL's
    checker does: the later turns cannot change the verdict (scores need them: ``replay_turns``)."""
    so_far: list[str] = []
    async with aclosing(_replay(servers, task, model, seed=seed, truths=truths, verdict=True)) as turns:
        k = 0
        async for turn in turns:
            failure = _failure(k, turn, so_far)
            if failure is not None:
                return failure
            k += 1
    return OK


async def _replay(
    servers: Mapping[str, CompiledServer],
    task: Task,
    model: Sequence[Steps],
    *,
    seed: int,
    truths: TruthCache | None,
    live: Sequence[Sequence[str]] | None = None,
    verdict: bool = False,
) -> AsyncGenerator[TurnOutcome, None]:
    """Each user turn's outcome as soon as both sides have run it. ``verdict``: only the verdict will be
    read, so a turn that fails before its states are looked at is not compared."""
    names = task.servers or list(servers)
    truth_turns = task.ground_truth
    owner: dict[str, str] = {}  # each tool's server (a later one's tool of the same name wins)
    for n in names:
        owner.update(dict.fromkeys(servers[n].tool_names, n))
    align = _Alignment(servers, owner, model, truth_turns, task.initial_state)
    unlike = next((k for k in range(max(len(model), len(truth_turns))) if align(k) is None), None)
    same = unlike is None
    turns = range(max(len(task.turns), len(truth_turns)))
    if same and live is not None and not align.refused and _deterministic(servers, names):
        # The episode's own results: nothing to replay (the calls it made were all answered, none refused).
        for k in turns:
            yield _as_truths(k, model, task, live, None)
        return
    kept = await (TRUTHS if truths is None else truths).truth(
        servers, names, owner, task, seed, same_calls=same, replayed=align.replayed
    )
    if kept is not None and same:
        # The ground truth's own calls on the same fresh state: a deterministic backend gives the same
        # results and states again, so one side's results are both sides' (a GRPO group's right answers).
        for k in turns:
            yield _as_truths(k, model, task, kept.results, align(k))
        return
    frozen, kept_results = (kept.frozen, kept.results) if kept is not None else (None, [])
    # The turns before the first unlike one are the ground truth's calls on its states: its outcomes,
    # and the model's side starts from the ground truth's states after them.
    start = min(unlike, len(turns), len(frozen)) if frozen is not None and unlike is not None else 0
    for k in range(start):
        yield _as_truths(k, model, task, kept_results, align(k))
    model_states = _States(servers, names, task, seed, base=frozen[start - 1] if frozen and start else None)
    truth_states = _States(servers, names, task, seed)  # with a kept side: only a fresh one to compare with
    last_unlike: int | None = None  # found at the first turn that could end the replay
    for k in turns[start:]:
        steps = list(model[k]) if k < len(model) else []
        truth = truth_turns[k] if k < len(truth_turns) else []
        if verdict and truth and not _responded(steps):
            yield TurnOutcome(steps, [], len(truth), [])  # BFCL's first check fails, whatever the states
            return
        results = []
        for call in (call for step in steps for call in step):
            result = align.refusals.get(id(call))  # refused, found lining the calls up: nothing to run
            if result is None:
                result = await _run(servers, owner, model_states, call, align.checked.get(id(call)))
            results.append(result)
        if kept is None:
            truth_results = [await _run(servers, owner, truth_states, call) for call in truth]
            expected: Mapping[str, Any] = truth_states.made
        else:
            truth_results, expected = (list(kept_results[k]), kept.states[k]) if k < len(kept_results) else ([], {})
        # Only turns whose ground truth calls something are checked.
        now = frozen[k] if frozen is not None and k < len(frozen) else None
        differ = _differ(servers, model_states, expected, truth_states, now) if truth else ()
        yield TurnOutcome(steps, results, len(truth), truth_results, differ)
        if now is None or differ or k + 1 >= len(turns):
            continue
        if last_unlike is None:
            ends = max(len(model), len(truth_turns))
            last_unlike = next(j for j in reversed(range(ends)) if align(j) is None)
        if k >= last_unlike and model_states.are(now):
            # Every state is now the ground truth's, whole, and the calls left are its own: so are the outcomes.
            for j in turns[k + 1 :]:
                yield _as_truths(j, model, task, kept_results, align(j))
            return


def _deterministic(servers: Mapping[str, CompiledServer], names: list[str]) -> bool:
    return all(getattr(servers[n].backend, "deterministic", False) for n in names)


def _as_truths(
    k: int, model: Sequence[Steps], task: Task, results: Sequence[Sequence[str]], aligned: Aligned | None
) -> TurnOutcome:
    """Turn ``k``'s outcome where the model's calls got the ground truth's own ``results``, and its
    refused calls (``aligned``, where it has some) their refusals."""
    got = list(results[k]) if k < len(results) else []
    truth_calls = len(task.ground_truth[k]) if k < len(task.ground_truth) else 0
    made = [got[x] if isinstance(x, int) else x for x in aligned] if aligned is not None else list(got)
    return TurnOutcome(list(model[k]) if k < len(model) else [], made, truth_calls, got)


def check_multi_turn(outcomes: Sequence[TurnOutcome]) -> Verdict:
    """BFCL's verdict: the first failing turn decides, in BFCL's order of checks."""
    so_far: list[str] = []
    for k, turn in enumerate(outcomes):
        failure = _failure(k, turn, so_far)
        if failure is not None:
            return failure
    return OK


def _failure(k: int, turn: TurnOutcome, so_far: list[str]) -> Verdict | None:
    """Turn ``k``'s verdict if it fails, in BFCL's order of checks; ``so_far`` (the model's results of
    the earlier turns) is extended with this turn's."""
    so_far.extend(turn.results)
    if not turn.truth_calls:
        return None
    if not turn.responded:
        return Verdict(False, "multi_turn:empty_turn_model_response", [f"Turn {k}: no call."])
    if not turn.state_ok:
        differ = sorted(turn.differ)
        return Verdict(False, "multi_turn:instance_state_mismatch", [f"Turn {k}: state of {differ} differs."])
    missing = turn.missing(so_far)
    if missing:
        return Verdict(False, "multi_turn:execution_response_mismatch", [f"Turn {k}: missing results {missing}."])
    return None


def turn_scores(outcomes: Sequence[TurnOutcome]) -> tuple[float | None, float | None]:
    """(state, response) as the fraction of checked turns that pass; None when no turn is checked."""
    checked = [k for k, t in enumerate(outcomes) if t.truth_calls]
    if not checked:
        return None, None
    so_far: list[str] = []
    response_ok = 0
    for k, turn in enumerate(outcomes):
        so_far.extend(turn.results)
        if k in checked and turn.responded and not turn.missing(so_far):
            response_ok += 1
    state_ok = sum(outcomes[k].state_ok for k in checked)
    return state_ok / len(checked), response_ok / len(checked)


class _States:
    """One side's states, each made at its first use: from ``base`` (a server's frozen state, where this
    side starts from the ground truth's states after some turns), else fresh (the episode's seed, the
    task's initial state). A server nobody called needs none (a fresh state is a fifth of a BFCL case's
    replay)."""

    def __init__(
        self,
        servers: Mapping[str, CompiledServer],
        names: list[str],
        task: Task,
        seed: int,
        base: Mapping[str, bytes] | None = None,
    ) -> None:
        self.servers, self.names, self.task, self.seed = servers, names, task, seed
        self.base: Mapping[str, bytes] = base or {}
        self.made: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self.made:
            backend: Any = self.servers[name].backend
            if name in self.base:
                self.made[name] = backend.thaw_state(self.base[name])
            else:
                self.made[name] = backend.new_state(seed=self.seed, initial=self.task.initial_for(name))
        return self.made[name]

    def untouched(self, name: str) -> bool:
        """Whether this side's state of ``name`` is still its base (or fresh, with none)."""
        return name not in self.made

    def are(self, frozen: Mapping[str, bytes]) -> bool:
        """Whether this side's states are ``frozen``'s, whole (one a side has and the other not: no)."""
        if self.made.keys() | self.base.keys() != frozen.keys():
            return False
        for name, state in frozen.items():
            if name in self.made:
                backend: Any = self.servers[name].backend
                if backend.freeze_state(self.made[name]) != state:  # None (cannot be frozen) is unlike too
                    return False
            elif self.base[name] != state:
                return False
        return True


def _differ(
    servers: Mapping[str, CompiledServer],
    model: _States,
    expected: Mapping[str, Any],
    fresh: _States,
    frozen: Mapping[str, bytes] | None = None,
) -> tuple[str, ...]:
    """The servers whose model state is not the expected one; ``expected`` lacks those the ground truth
    has not called (their state is ``fresh``'s). One neither side has called is as fresh on both: on a
    deterministic backend it is not compared; nor is one the model's side has not called since it
    started from the ground truth's state that ``frozen`` (the ground truth's now) still holds."""
    differ = []
    for n in model.names:
        backend = servers[n].backend
        if model.untouched(n):
            if n not in model.base and n not in expected and getattr(backend, "deterministic", False):
                continue
            if n in model.base and frozen is not None and frozen.get(n) is model.base[n]:
                continue
        want = expected[n] if n in expected else fresh[n]
        if not _matches(backend, model[n], want.state if type(want) is _Thaw else want):
            differ.append(n)
    return tuple(differ)


Aligned = list[int | str]  # a turn's calls: each the ground-truth call it is (its index), or its refusal's text


class _Alignment:
    """Turn by turn, whether the model's calls are the ground truth's (``alike``), or would be but
    for calls refused before they run (an unknown tool, arguments refused): such a call changes no state,
    so what it leaves is the ground truth's, and its result is its refusal, known without running it.
    A rollout that tries a call, is refused and corrects it is then the ground truth's."""

    def __init__(
        self,
        servers: Mapping[str, CompiledServer],
        owner: dict[str, str],
        model: Sequence[Steps],
        truth: list[list[ToolCall]],
        initial_state: Mapping[str, Any] | None = None,
    ) -> None:
        self.servers, self.owner, self.model, self.truth = servers, owner, model, truth
        self.initial_state = initial_state or {}
        self.turns: dict[int, Aligned | None] = {}
        self.refused = False  # whether an aligned turn holds a refused call
        self.refusals: dict[int, str] = {}  # id of a call found refused -> its refusal
        self.checked: dict[int, Checked] = {}  # id of a call whose checks passed lining up: not run twice
        self._truth_keys: dict[int, bytes | None] = {}

    def alike(self, k: int) -> bool:
        """Whether turn ``k``'s calls, in order, are the ground truth's: the same names, and arguments equal
        as JSON (``_same_json``: so 1, 1.0 and true differ, as the backends may see them)."""
        key = self._truth_key(k)
        return key is not None and key == _calls_key(self._made(k))  # one data_key a side, not one a call

    def replayed(self) -> tuple[bytes, ...] | None:
        """What a replay of the ground truth reads: each turn's calls and the initial state, as ``data_key``s
        (None where marshal cannot hold them: such a task's side is not kept). Bytes, not a copy of the
        data: a kept side holds few objects for the garbage collector to walk (each task's side outlives
        a collection of the young objects, and a full collection walks the whole heap)."""
        keys = [self._truth_key(k) for k in range(len(self.truth))] + [data_key(self.initial_state)]
        held = tuple(key for key in keys if key is not None)
        return held if len(held) == len(keys) else None

    def _truth_key(self, k: int) -> bytes | None:
        if k not in self._truth_keys:
            self._truth_keys[k] = _calls_key(self.truth[k] if k < len(self.truth) else [])
        return self._truth_keys[k]

    def _made(self, k: int) -> list[ToolCall]:
        """The model's calls of turn ``k``, its steps' in order."""
        return [call for step in self.model[k] for call in step] if k < len(self.model) else []

    def __call__(self, k: int) -> Aligned | None:
        """Turn ``k``'s calls lined up with the ground truth's, or None where they are not its own."""
        if k not in self.turns:
            self.turns[k] = self._align(k)
        return self.turns[k]

    def _align(self, k: int) -> Aligned | None:
        wanted = self.truth[k] if k < len(self.truth) else []
        if self.alike(k):
            return list(range(len(wanted)))
        made = self._made(k)
        aligned: Aligned = []
        j = 0  # the next ground-truth call
        for call in made:
            if j < len(wanted) and call.name == wanted[j].name and _same_json(call.arguments, wanted[j].arguments):
                aligned.append(j)
                j += 1
            elif (refusal := self._refusal(call)) is not None:
                aligned.append(refusal)
            else:
                return None
        if j != len(wanted):
            return None
        self.refused = True  # not alike, yet every call lined up: some were refused
        return aligned

    def _refusal(self, call: ToolCall) -> str | None:
        server = self.owner.get(call.name)
        if server is None:
            self.refusals[id(call)] = text = _unknown(call.name)
            return text
        result = self.servers[server].check(call.name, call.arguments)
        if isinstance(result, Checked):
            self.checked[id(call)] = result  # it runs without its checks: they passed here
            return None
        if result is None:
            return None
        self.refusals[id(call)] = text = result_text(result)
        return text


def _calls_key(calls: list[ToolCall]) -> bytes | None:
    """The calls' names and arguments, in order, as one ``data_key``."""
    return data_key([(call.name, call.arguments) for call in calls])


def _same_json(a: Any, b: Any) -> bool:
    """``a`` and ``b`` would be the same JSON text: their ``data_key``s (marshal, in C) are equal, so they are
    equal type for type (a bool is not an int, a tuple not a list), floats by their bits (0.0 and -0.0
    differ), keys in the same order (a backend may keep the order it was sent: the REST simulator's
    results do). What it calls unlike may be alike (a value marshal cannot hold, so not JSON's): that
    costs a replay, never a verdict."""
    if a is b:
        return True
    key = data_key(a)
    return key is not None and key == data_key(b)


def _matches(backend: Any, state: Any, expected: Any) -> bool:
    matches = getattr(backend, "state_matches", None)
    if matches is not None:
        return bool(matches(state, expected))
    return bool(backend.snapshot(state) == backend.snapshot(expected))


async def _run(
    servers: Mapping[str, CompiledServer],
    owner: dict[str, str],
    states: _States,
    call: ToolCall,
    checked: Checked | None = None,
) -> str:
    server = owner.get(call.name)
    if server is None:
        return _unknown(call.name)
    return await servers[server].call_text(call.name, call.arguments, states[server], checked=checked)


def _unknown(name: str) -> str:
    """A call to no server's tool: what a replay answers it."""
    return f"Unknown tool {name!r}."


# -- the ground truth's side, kept per task ---------------------------------------------------------
class _Thaw:
    """A kept state held as its frozen bytes and thawed at its first comparison: a replay compares the
    ground truth's state at the turn it left it, seldom the others, and a thaw costs what a copy does."""

    __slots__ = ("backend", "frozen", "_state")

    def __init__(self, backend: Any, frozen: bytes) -> None:
        self.backend, self.frozen, self._state = backend, frozen, _UNTHAWED

    @property
    def state(self) -> Any:
        if self._state is _UNTHAWED:
            self._state = self.backend.thaw_state(self.frozen)  # only read, so one thaw serves every replay
        return self._state


_UNTHAWED = object()


@dataclass(frozen=True)
class _Truth:
    results: list[tuple[str, ...]]  # per user turn (tuples of text: no object here for a collector to walk)
    states: list[dict[str, Any]]  # per user turn: each called server's state, copied or frozen ({} where unchecked)
    frozen: list[dict[str, bytes]] | None  # per turn before the last that calls: each called server's, whole


@dataclass(frozen=True)
class _Kept:
    servers: tuple[weakref.ref[CompiledServer], ...]  # an id in the key may be reused once its server is gone
    replayed: tuple[bytes, ...]  # _Alignment.replayed of the task whose side this is
    truth: _Truth

    def fits(self, servers: Mapping[str, CompiledServer], names: list[str], replayed: tuple[bytes, ...]) -> bool:
        return all(ref() is servers[n] for ref, n in zip(self.servers, names, strict=True)) and (
            self.replayed == replayed
        )


class TruthCache:
    """The ground truth's side of recently replayed tasks (results, copies of the states at the checked
    turns and, where the backends freeze, each turn's frozen states), for backends that are
    ``deterministic`` and offer ``copy_state``. A task's side
    is built the second time it is seen, so a one-off replay (an eval of one results file) pays for
    no copies — or the first time, when the model made the ground truth's own calls: then its one
    replay, with copies, stands for both sides. ``size`` tasks are remembered, least recently
    replayed dropped first."""

    def __init__(self, size: int = TRUTH_CACHE_SIZE) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[Any, ...], _Kept | None] = OrderedDict()  # None: seen once
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(entry is not None for entry in self._kept.values())

    async def truth(
        self,
        servers: Mapping[str, CompiledServer],
        names: list[str],
        owner: dict[str, str],
        task: Task,
        seed: int,
        *,
        same_calls: bool = False,
        replayed: Callable[[], tuple[bytes, ...] | None] | None = None,
    ) -> _Truth | None:
        """The task's ground-truth side where it may be reused, else None. ``same_calls``: the model's
        calls are the ground truth's, so building the side now costs no replay beyond the model's.
        ``replayed``: the task's ``_Alignment.replayed``, where the caller has lined calls up already."""
        backends = [servers[n].backend for n in names]
        if not all(getattr(b, "deterministic", False) and hasattr(b, "copy_state") for b in backends):
            return None
        key = (task.id, seed, tuple(names), tuple(id(servers[n]) for n in names))
        with self._lock:
            seen = key in self._kept
            entry = self._kept.get(key)
            if seen:
                self._kept.move_to_end(key)
            else:
                self._remember(key, None)
        if not seen and not (same_calls and self.size):
            return None
        content = (replayed or _Alignment({}, {}, [], task.ground_truth, task.initial_state).replayed)()
        if content is None:
            return None
        if entry is not None and entry.fits(servers, names, content):
            return entry.truth
        truth = await _replay_truth(servers, names, owner, task, seed)
        kept = _Kept(tuple(weakref.ref(servers[n]) for n in names), content, truth)
        with self._lock:
            self._remember(key, kept)
        return truth

    def _remember(self, key: tuple[Any, ...], entry: _Kept | None) -> None:
        self._kept[key] = entry
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)


TRUTHS = TruthCache()  # the process's own; TruthCache(size=0) keeps nothing


async def _replay_truth(
    servers: Mapping[str, CompiledServer], names: list[str], owner: dict[str, str], task: Task, seed: int
) -> _Truth:
    states = _States(servers, names, task, seed)
    results: list[tuple[str, ...]] = []
    copies: list[dict[str, Any]] = []
    latest: dict[str, Any] = {}  # each called server's latest copy
    freezes = all(hasattr(servers[n].backend, "freeze_state") for n in names)
    frozen: list[dict[str, bytes]] = []
    latest_frozen: dict[str, bytes | None] = {}
    last = max((k for k, turn in enumerate(task.ground_truth) if turn), default=-1)
    for k, turn in enumerate(task.ground_truth):
        results.append(tuple([await _run(servers, owner, states, call) for call in turn]))
        # Only a server called this turn can have changed: the others keep their latest copy (copies are
        # only read). One never called has none: its state is a fresh one. After the last turn that
        # calls, nothing runs on these states again: they are kept as they are, uncopied.
        for n in {owner[c.name] for c in turn if c.name in owner}:
            backend: Any = servers[n].backend  # the optional methods (backends/base.py)
            if k == last:
                latest[n] = states[n]
                continue
            now = latest_frozen[n] = backend.freeze_state(states[n]) if freezes else None
            latest[n] = _Thaw(backend, now) if now is not None else backend.copy_state(states[n])
        copies.append(dict(latest) if turn else {})  # {}: an unchecked turn
        if k < last:  # a replay that is the ground truth's up to its last turn that calls has no turn to skip
            freezes = freezes and None not in latest_frozen.values()  # a state that cannot be frozen: none kept
            frozen.append({n: f for n, f in latest_frozen.items() if f is not None})
    return _Truth(results, copies, frozen if freezes else None)
