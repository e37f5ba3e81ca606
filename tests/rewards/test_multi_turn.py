"""The multi-turn replay's shortcuts change nothing: states compared in place give the snapshots'
answer, and a ground truth's side kept from an earlier replay gives a cold replay's outcomes."""

from __future__ import annotations

import copy
import json
import random

import pytest

from inftool_env.backends.base import PickledState
from inftool_env.backends.bfcl import BfclBackend, bfcl_multi_turn_tasks
from inftool_env.backends.python import PythonBackend, suite_from_class
from inftool_env.eval.bfcl_data import domain_servers
from inftool_env.mcp import CompiledServer
from inftool_env.mcp.server import Checked
from inftool_env.rewards.multi_turn import (
    _UNTHAWED,
    TruthCache,
    _Thaw,
    check_multi_turn,
    replay_turns,
    results_by_turn,
    steps_by_turn,
    turn_scores,
    verdict_multi_turn,
)
from inftool_env.spec.ir import ToolSuite
from inftool_env.tasks import Task, ToolCall
from inftool_env.trajectory import CallRecord, Trajectory, TurnRecord
from tests.rewards.multi_turn_cases import mutations

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def servers():
    return domain_servers()


@pytest.fixture(scope="module")
def tasks():
    # a file system, a two-class entry and a random-drawing class (TravelAPI) among them
    return bfcl_multi_turn_tasks("multi_turn_base", limit=12)


def as_tuple(outcomes):
    return [(o.steps, o.results, o.truth_calls, o.truth_results, o.differ) for o in outcomes]


async def test_a_kept_ground_truth_gives_the_outcomes_of_a_cold_replay(servers, tasks):
    cold, warm = TruthCache(size=0), TruthCache()
    for task in tasks:
        for label, steps in mutations(task):
            expected = as_tuple(await replay_turns(servers, task, steps, seed=0, truths=cold))
            for _ in range(3):  # seen once, then built, then reused
                got = await replay_turns(servers, task, steps, seed=0, truths=warm)
                assert as_tuple(got) == expected, (task.id, label)
    assert len(cold) == 0
    assert len(warm) == len(tasks)


async def test_a_kept_side_holds_frozen_states_and_thaws_only_those_compared(servers, tasks, monkeypatch):
    """Where the backends freeze, the kept side's states at the checked turns are their frozen bytes,
    not copies, thawed at a replay's first comparison with them (that thaw serves every later replay)."""

    def uncopied(state: object) -> None:
        raise AssertionError("a state was copied where it is frozen")

    monkeypatch.setattr(BfclBackend, "copy_state", staticmethod(uncopied))
    kept = TruthCache()
    cold = {task.id: [as_tuple(await replay_turns(servers, task, steps, seed=0, truths=TruthCache(size=0)))
                      for _, steps in mutations(task)] for task in tasks}  # fmt: skip

    async def warm_pass() -> dict[int, int]:
        for task in tasks:
            warm = [as_tuple(await replay_turns(servers, task, s, seed=0, truths=kept)) for _, s in mutations(task)]
            assert warm == cold[task.id], task.id
        entries = [entry for entry in kept._kept.values() if entry is not None]
        # The states after each turn before the last that calls (the last's are the replay's own, uncopied).
        frozen = [s for e in entries for turn in e.truth.states for s in turn.values() if isinstance(s, _Thaw)]
        thawed = {id(s): id(s._state) for s in frozen if s._state is not _UNTHAWED}
        assert 0 < len(thawed) < len(frozen)  # those a replay compared, not all
        return thawed

    first = await warm_pass()
    assert len(kept) == len(tasks)
    assert await warm_pass() == first  # the same thawed states, none thawed again


async def test_the_verdict_replays_only_through_the_first_failing_turn(servers, tasks, replayed):
    """BFCL's checker stops at the first failing turn; so does ``verdict_multi_turn``, with the verdict
    of the whole replay."""
    stopped_early = 0
    for task in tasks:
        for label, steps in mutations(task):
            whole = TruthCache(size=0)
            del replayed[:]
            expected = check_multi_turn(await replay_turns(servers, task, steps, seed=0, truths=whole))
            replayed_all = len(replayed)
            del replayed[:]
            assert await verdict_multi_turn(servers, task, steps, seed=0, truths=whole) == expected, (task.id, label)
            assert len(replayed) <= replayed_all
            stopped_early += len(replayed) < replayed_all
            assert expected.valid or label != "ground_truth"
    assert stopped_early > len(tasks)  # the mutations fail at the first busy turn; later turns are skipped


async def test_a_right_answer_seen_first_stands_for_both_sides(servers, tasks, replayed):
    """The ground truth's own calls, seen first, are replayed once (no second side), and that replay
    is kept; a wrong answer seen first is replayed on both sides and keeps nothing."""
    for task in tasks:
        (_, right), (_, wrong) = [m for m in mutations(task) if m[0] in ("ground_truth", "empty_turn")]
        cache = TruthCache()
        del replayed[:]
        assert check_multi_turn(await replay_turns(servers, task, right, seed=0, truths=cache)).valid
        assert len(replayed) == sum(map(len, task.ground_truth)) and len(cache) == 1, task.id
        cache = TruthCache()
        assert not check_multi_turn(await replay_turns(servers, task, wrong, seed=0, truths=cache)).valid
        assert len(cache) == 0


async def test_an_episode_that_made_the_ground_truths_calls_is_scored_from_its_own_results(servers, tasks, replayed):
    """``live`` (the episode's own results) stands for both sides only where the calls were the ground
    truth's: then nothing is replayed and the outcomes are a cold replay's; other calls are replayed."""
    for task in tasks:
        for label, steps in mutations(task):
            cold = await replay_turns(servers, task, steps, seed=0, truths=TruthCache(size=0))
            live = [turn.results for turn in cold]  # what the episode's own calls got
            del replayed[:]
            got = await replay_turns(servers, task, steps, seed=0, truths=TruthCache(size=0), live=live)
            assert as_tuple(got) == as_tuple(cold), (task.id, label)
            assert (not replayed) == (label in ("ground_truth", "one_call_per_step")), (task.id, label, replayed)


async def test_calls_refused_beside_the_ground_truths_take_the_kept_side(servers, tasks, replayed):
    """A rollout that tries a call, is refused (an unknown tool, a wrongly typed argument) and then makes
    the ground truth's calls left no state of its own: with a kept side it is scored without a replay,
    its refusals among the results, and its outcomes are a cold replay's. A refused call with the right
    first call never made leaves the turn unlike the ground truth's: it fails, as a cold replay says."""
    taken = 0
    for task in tasks:
        truth = [[turn] if turn else [] for turn in task.ground_truth]
        k = next(j for j, turn in enumerate(task.ground_truth) if turn)
        first = task.ground_truth[k][0]
        param = next(iter(first.arguments), None)
        if param is None:
            continue
        retyped = ToolCall(name=first.name, arguments={**first.arguments, param: [1, {"x": 2}]})
        unknown = ToolCall(name="no_such_tool", arguments={})
        right, wrong = copy.deepcopy(truth), copy.deepcopy(truth)
        right[k] = [[retyped], [unknown, *task.ground_truth[k]]]  # refused twice, then the right calls
        wrong[k] = [[retyped, *task.ground_truth[k][1:]]]  # refused, and the right first call never made
        kept = TruthCache()
        await replay_turns(servers, task, truth, seed=0, truths=kept)  # the right answer, seen first, is kept
        for steps, valid in ((right, True), (wrong, False)):
            cold = await replay_turns(servers, task, steps, seed=0, truths=TruthCache(size=0))
            del replayed[:]
            got = await replay_turns(servers, task, steps, seed=0, truths=kept)
            assert as_tuple(got) == as_tuple(cold), (task.id, valid)
            assert check_multi_turn(got).valid == valid, task.id
            made = sum(len(call) for turn in steps for call in turn)
            assert len(replayed) < made, (task.id, replayed)  # a refusal found lining up is not run again
        del replayed[:]
        outcomes = await replay_turns(servers, task, right, seed=0, truths=kept)
        assert not replayed, (task.id, replayed)
        assert "Unknown tool 'no_such_tool'." in outcomes[k].results
        assert any(r.startswith(f"Invalid arguments for {first.name!r}") for r in outcomes[k].results)
        taken += 1
    assert taken >= 8


async def test_a_model_call_s_arguments_are_checked_once_per_replay(servers, tasks, monkeypatch):
    """Lining a turn's calls up checks the model's arguments (is the call refused?); a call that passed
    runs without its checks again. Every call is still checked once, and the outcomes are those of a
    replay that checks each call where it runs."""
    checks: list[int] = []
    for server in servers.values():
        errors = server._argument_errors
        monkeypatch.setattr(server, "_argument_errors", lambda t, a, run=errors: checks.append(id(a)) or run(t, a))
    check = CompiledServer.check
    truth_checked = 0
    for task in tasks:
        for label, shared in mutations(task):
            steps = copy.deepcopy(shared)  # the model's own arguments, not the ground truth's objects
            with monkeypatch.context() as undone:  # a passed check not handed on: checked again where run
                undone.setattr(CompiledServer, "check", lambda *a: None if type(c := check(*a)) is Checked else c)
                twice = as_tuple(await replay_turns(servers, task, steps, seed=0, truths=TruthCache(size=0)))
            del checks[:]
            got = await replay_turns(servers, task, steps, seed=0, truths=TruthCache(size=0))
            assert as_tuple(got) == twice, (task.id, label)
            made = {id(call.arguments) for turn in steps for step in turn for call in step}
            assert max((checks.count(a) for a in made), default=1) <= 1, (task.id, label)
            truth_checked += any(id(c.arguments) in checks for turn in task.ground_truth for c in turn)
    assert truth_checked  # the ground truth's own calls are checked where they run


async def test_a_verdict_on_an_empty_turn_compares_no_state(servers, tasks, monkeypatch):
    """BFCL checks that a turn responded before its states: the verdict of a turn left empty is that,
    and no state is compared (nor thawed) for it; ``replay_turns`` still compares, for the scores."""
    from inftool_env.rewards import multi_turn

    compared: list[int] = []
    differ = multi_turn._differ
    monkeypatch.setattr(multi_turn, "_differ", lambda *a: compared.append(1) or differ(*a))
    for task in tasks:
        kept = TruthCache()
        for label, steps in mutations(task):
            if label not in ("empty_turn", "missing_last_turn"):
                continue
            whole = check_multi_turn(await replay_turns(servers, task, steps, seed=0, truths=kept))
            assert whole.error_type == "multi_turn:empty_turn_model_response", (task.id, label)
            del compared[:]
            assert await verdict_multi_turn(servers, task, steps, seed=0, truths=kept) == whole, (task.id, label)
            assert not compared, (task.id, label)


def test_results_by_turn_groups_as_steps_by_turn_and_refuses_what_a_replay_would_not_give_again():
    def record(name, result, kind=None):
        return CallRecord(name=name, arguments={}, result=result, is_error=kind is not None, error_kind=kind)

    turns = [
        TurnRecord(step=0, calls=[record("a", "1"), record("b", "no such file", "execution")]),
        TurnRecord(step=1, calls=[record("c", "3")]),
        TurnRecord(step=2, content="done"),  # ends the user turn
        TurnRecord(step=3, parse_error="bad JSON"),  # does not
        TurnRecord(step=4, calls=[record("d", "4")]),
    ]
    trajectory = Trajectory(env_id="e", task_id="t", seed=0, turns=turns)
    assert [[[c.name for c in step] for step in turn] for turn in steps_by_turn(trajectory)] == [
        [["a", "b"], ["c"]],
        [["d"]],
    ]
    assert results_by_turn(trajectory) == [["1", "no such file", "3"], ["4"]]
    for kind in ("unknown_tool", "schema", "timeout", "infrastructure"):
        turns[4].calls[0] = record("d", "refused", kind)
        assert results_by_turn(trajectory) is None, kind


async def test_a_changed_ground_truth_under_the_same_id_is_replayed_again(servers, tasks):
    cache = TruthCache()
    task = next(t for t in tasks if t.servers == ["GorillaFileSystem"])
    steps = [[turn] if turn else [] for turn in task.ground_truth]
    for _ in range(3):
        assert check_multi_turn(await replay_turns(servers, task, steps, seed=0, truths=cache)).valid
    first = next(k for k, turn in enumerate(task.ground_truth) if turn)
    changed = task.model_copy(deep=True)
    changed.ground_truth[first] = [ToolCall(name="mkdir", arguments={"dir_name": "elsewhere"})]
    verdict = check_multi_turn(await replay_turns(servers, changed, steps, seed=0, truths=cache))
    assert not verdict.valid
    assert verdict.error_type == "multi_turn:instance_state_mismatch"


async def test_a_kept_side_is_the_task_data_s_own_not_its_id_s(servers, tasks, monkeypatch):
    """The kept side is found by the task's id and reused only while what a replay reads (the ground
    truth's calls and the initial state, as data_key bytes) is the same: an equal copy takes it, a copy
    with another initial state is replayed again."""
    from inftool_env.rewards import multi_turn

    built: list[Task] = []
    real = multi_turn._replay_truth

    async def counted(servers, names, owner, task, seed):  # type: ignore[no-untyped-def]
        built.append(task)
        return await real(servers, names, owner, task, seed)

    monkeypatch.setattr(multi_turn, "_replay_truth", counted)
    cache = TruthCache()
    task = next(t for t in tasks if t.servers == ["GorillaFileSystem"])
    steps = [[turn] if turn else [] for turn in task.ground_truth]
    for copy_of in (task, task, task.model_copy(deep=True)):
        assert check_multi_turn(await replay_turns(servers, copy_of, steps, seed=0, truths=cache)).valid
    assert built == [task]
    moved = task.model_copy(deep=True)
    root = moved.initial_state["GorillaFileSystem"]["root"]
    next(iter(root.values()))["contents"]["added.txt"] = {"type": "file", "content": "not in the first"}
    await replay_turns(servers, moved, steps, seed=0, truths=cache)
    assert built == [task, moved]


async def test_replays_leave_the_task_as_it_was(servers, tasks):
    before = [t.model_copy(deep=True) for t in tasks]
    cache = TruthCache()
    for task in tasks:
        for _, steps in mutations(task):
            await replay_turns(servers, task, steps, seed=0, truths=cache)
    assert tasks == before


async def test_state_matches_agrees_with_the_snapshots(servers, tasks):
    """Walk every ground truth call by call; at each step compare a state with the ground truth's
    own states (equal) and with one that missed a call (different), both ways."""
    for task in tasks:
        for name in task.servers:
            backend = servers[name].backend
            assert isinstance(backend, BfclBackend)
            state = backend.new_state(seed=0, initial=task.initial_for(name))
            behind = backend.new_state(seed=0, initial=task.initial_for(name))
            tools = {t.name for t in servers[name].suite.tools}
            for call in [c for turn in task.ground_truth for c in turn if c.name in tools]:
                kept = backend.copy_state(state)
                await servers[name].call(call.name, copy.deepcopy(call.arguments), state)
                same = backend.snapshot(state) == backend.snapshot(behind)
                assert backend.state_matches(state, behind) is same
                assert backend.state_matches(behind, state) is same
                assert backend.state_matches(behind, kept)  # a copy equals the state it was taken of
                await servers[name].call(call.name, copy.deepcopy(call.arguments), behind)
                assert backend.state_matches(state, behind)
                assert backend.state_matches(state, backend.copy_state(state))


async def test_a_copied_state_does_not_follow_its_original(servers, tasks):
    task = next(t for t in tasks if t.servers == ["GorillaFileSystem"])
    backend = servers["GorillaFileSystem"].backend
    state = backend.new_state(seed=0, initial=task.initial_for("GorillaFileSystem"))
    kept = backend.copy_state(state)
    await servers["GorillaFileSystem"].call("mkdir", {"dir_name": "brand_new"}, state)
    assert not backend.state_matches(state, kept)
    assert backend.state_matches(backend.new_state(seed=0, initial=task.initial_for("GorillaFileSystem")), kept)


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def add(self, n: int) -> int:
        self.value += n
        return self.value


async def test_other_backends_are_compared_by_snapshot_and_never_kept():
    suite: ToolSuite = suite_from_class(Counter)
    server = CompiledServer(suite, PythonBackend(Counter))
    add = [ToolCall(name="add", arguments={"n": n}) for n in (2, 3, 4)]
    task = Task(id="t", turns=["add", "add"], servers=[suite.name], ground_truth=[[add[0]], [add[1]]])
    cache = TruthCache()
    right, wrong = [[[add[0]]], [[add[1]]]], [[[add[0]]], [[add[2]]]]
    for _ in range(3):
        assert check_multi_turn(await replay_turns({suite.name: server}, task, right, seed=0, truths=cache)).valid
        outcomes = await replay_turns({suite.name: server}, task, wrong, seed=0, truths=cache)
        assert [o.differ for o in outcomes] == [(), (suite.name,)]
        assert turn_scores(outcomes) == (0.5, 0.5)
    assert len(cache) == 0


def test_only_the_very_same_calls_reuse_the_ground_truths_side():
    """A rollout that makes exactly the ground truth's calls takes the kept side without replaying;
    arguments are compared as JSON, so a value a backend may take differently (1.0, true) replays."""
    from inftool_env.rewards.multi_turn import _Alignment

    def turn_alike(model, truth, k):
        return _Alignment({}, {}, model, truth).alike(k)

    def same(model, truth):
        return all(turn_alike(model, truth, k) for k in range(max(len(model), len(truth))))

    truth = [[ToolCall(name="add", arguments={"a": 1, "b": [2], "c": {"d": 0.5}})], []]
    alike = [[[ToolCall(name="add", arguments={"a": 1, "b": [2], "c": {"d": 0.5}})]], []]
    assert same(alike, truth) and same([[[c] for c in turn] for turn in truth], truth)
    # Keys in another order: a backend may keep the order in its results (the REST simulator does).
    assert not same([[[ToolCall(name="add", arguments={"c": {"d": 0.5}, "b": [2], "a": 1})]], []], truth)
    for a in (1.0, True, "1", None, [1]):
        assert not same([[[ToolCall(name="add", arguments={"a": a, "b": [2], "c": {"d": 0.5}})]], []], truth)
    for b in ([2.0], [True], [2, 2], []):
        assert not same([[[ToolCall(name="add", arguments={"a": 1, "b": b, "c": {"d": 0.5}})]], []], truth)
    signed = [[ToolCall(name="add", arguments={"x": 0.0})]]
    assert not same([[[ToolCall(name="add", arguments={"x": -0.0})]]], signed)
    pair = [[ToolCall(name="add", arguments={"x": [1, 2]})]]
    assert not same([[[ToolCall(name="add", arguments={"x": (1, 2)})]]], pair)

    class Name(str):
        """Not JSON's own type, which marshal (data_key) cannot hold: unlike, even beside an equal one."""

    named = [[ToolCall(name="add", arguments={"x": Name("a")})]]
    assert not same([[[ToolCall(name="add", arguments={"x": Name("a")})]]], named)
    assert not same([[[ToolCall(name="add", arguments={"x": "a"})]]], named)
    assert not same([alike[0]], truth[:1] + [[ToolCall(name="add", arguments={})]])
    assert not same(alike + [[[ToolCall(name="add", arguments={})]]], truth)
    model = [alike[0], [[ToolCall(name="sub", arguments={})]], []]
    assert [turn_alike(model, [*truth, []], k) for k in range(3)] == [True, False, True]


class Gauge:
    def __init__(self) -> None:
        self.level = 0

    def set_level(self, level: int) -> int:
        self.level = level
        return level


class _Deterministic(PythonBackend):
    deterministic = True


async def test_a_server_neither_side_calls_gets_no_state_and_no_comparison():
    made: list[str] = []

    def counting(cls):
        backend = _Deterministic(cls)
        new_state = backend.new_state
        backend.new_state = lambda **kw: made.append(cls.__name__) or new_state(**kw)
        return CompiledServer(suite_from_class(cls), backend)

    servers = {"Counter": counting(Counter), "Gauge": counting(Gauge)}
    add = [ToolCall(name="add", arguments={"n": n}) for n in (2, 3, 4)]
    task = Task(id="t", turns=["add", "add"], servers=["Counter", "Gauge"], ground_truth=[[add[0]], [add[1]]])
    outcomes = await replay_turns(servers, task, [[[add[0]]], [[add[2]]]], seed=0, truths=TruthCache(size=0))
    assert [o.differ for o in outcomes] == [(), ("Counter",)]
    assert made == ["Counter", "Counter"]  # one a side; Gauge, never called, is as fresh on both
    del made[:]
    set_gauge = ToolCall(name="set_level", arguments={"level": 1})
    outcomes = await replay_turns(servers, task, [[[add[0], set_gauge]], [[add[1]]]], seed=0, truths=TruthCache(0))
    assert [o.differ for o in outcomes] == [("Gauge",), ("Gauge",)]  # called by one side only: compared
    assert sorted(made) == ["Counter", "Counter", "Gauge", "Gauge"]


async def test_a_rollout_that_leaves_the_ground_truth_and_returns_replays_only_where_it_left(servers, tasks, replayed):
    """With a kept side, turns whose calls are the ground truth's start the model's side from the ground
    truth's states, and once the states are the ground truth's whole and the calls left are its own,
    the rest is its outcomes: a cold replay's outcomes either way, with fewer calls."""
    saved = {"prefix": 0, "rest": 0}
    for task in [t for t in tasks if sum(bool(turn) for turn in t.ground_truth) > 1]:
        truth = [[turn] if turn else [] for turn in task.ground_truth]
        last = max(k for k, turn in enumerate(truth) if turn)
        harmless = copy.deepcopy(truth)  # an unknown tool first: refused, it changes nothing
        harmless[0] = [[ToolCall(name="no_such_tool", arguments={}), *(truth[0][0] if truth[0] else [])]]
        for label, steps in (("prefix", [*truth[:last], []]), ("rest", harmless)):
            cold = as_tuple(await replay_turns(servers, task, steps, seed=0, truths=TruthCache(size=0)))
            kept = TruthCache()
            await replay_turns(servers, task, truth, seed=0, truths=kept)  # the right answer, seen first, is kept
            del replayed[:]
            assert as_tuple(await replay_turns(servers, task, steps, seed=0, truths=kept)) == cold, (task.id, label)
            model_calls = sum(len(call) for turn in steps for call in turn)
            assert len(replayed) <= model_calls, (task.id, label)
            saved[label] += len(replayed) < model_calls
    assert saved["prefix"] >= 5 and saved["rest"] >= 5, saved


class Dice:
    """A public record of rolls, and a private generator that ``look`` moves without a trace."""

    def __init__(self) -> None:
        self.rolls: list[int] = []
        self._rng = random.Random(7)

    def look(self) -> str:
        self._rng.random()
        return "ok"

    def roll(self) -> int:
        self.rolls.append(self._rng.randint(1, 1_000_000))
        return self.rolls[-1]


class _Pickled(PickledState, _Deterministic):
    copy_state = staticmethod(copy.deepcopy)


async def test_a_state_alike_only_in_public_is_replayed_on():
    """The rest of a rollout is taken as the ground truth's only where its states are the ground
    truth's whole: an extra ``look`` leaves the public state alike but moves the generator, so the
    next turn's roll differs and the verdict fails, as a cold replay says."""
    servers = {"Dice": CompiledServer(suite_from_class(Dice), _Pickled(Dice))}
    look, roll = ToolCall(name="look", arguments={}), ToolCall(name="roll", arguments={})
    task = Task(id="dice", turns=["look", "roll"], servers=["Dice"], ground_truth=[[look], [roll]])
    kept = TruthCache()
    assert (await verdict_multi_turn(servers, task, [[[look]], [[roll]]], seed=0, truths=kept)).valid
    moved = [[[look, look]], [[roll]]]
    cold = await replay_turns(servers, task, moved, seed=0, truths=TruthCache(size=0))
    assert [o.differ for o in cold] == [(), ("Dice",)]
    assert as_tuple(await replay_turns(servers, task, moved, seed=0, truths=kept)) == as_tuple(cold)
    verdict = await verdict_multi_turn(servers, task, moved, seed=0, truths=kept)
    assert verdict.error_type == "multi_turn:instance_state_mismatch"
    unknown = [[[look, ToolCall(name="no_such_tool", arguments={})]], [[roll]]]  # refused: the state is whole
    assert (await verdict_multi_turn(servers, task, unknown, seed=0, truths=kept)).valid
    # A rollout that starts from the ground truth's frozen state after turn 0 rolls on from its generator.
    three = task.model_copy(update={"turns": [*task.turns, "roll"], "ground_truth": [[look], [roll], [roll]]})
    await replay_turns(servers, three, [[[look]], [[roll]], [[roll]]], seed=0, truths=kept)  # kept
    for steps in ([[[look]], [[roll, roll]], [[roll]]], [[[look]], [[roll]], [[roll, roll]]]):
        cold = await replay_turns(servers, three, steps, seed=0, truths=TruthCache(size=0))
        assert as_tuple(await replay_turns(servers, three, steps, seed=0, truths=kept)) == as_tuple(cold)


async def test_a_state_that_cannot_be_frozen_is_replayed_whole(replayed):
    class _Unfrozen(_Pickled):
        freeze_state = staticmethod(lambda state: None)

    servers = {"Dice": CompiledServer(suite_from_class(Dice), _Unfrozen(Dice))}
    look, roll = ToolCall(name="look", arguments={}), ToolCall(name="roll", arguments={})
    task = Task(id="dice", turns=["look", "roll", "roll"], servers=["Dice"], ground_truth=[[look], [roll], [roll]])
    kept = TruthCache()
    await replay_turns(servers, task, [[[look]], [[roll]], [[roll]]], seed=0, truths=kept)
    for steps, replays in (
        ([[[look]], [[roll]], []], "every call"),
        ([[[look]], [[roll]], [[roll, roll]]], "every call"),
        # A refused call lines up with the ground truth's without a state: the kept outcomes stand.
        ([[[look, ToolCall(name="no_such_tool", arguments={})]], [[roll]], [[roll]]], "none"),
    ):
        cold = await replay_turns(servers, task, steps, seed=0, truths=TruthCache(size=0))
        del replayed[:]
        assert as_tuple(await replay_turns(servers, task, steps, seed=0, truths=kept)) == as_tuple(cold)
        made = sum(len(call) for turn in steps for call in turn)
        assert len(replayed) == (made if replays == "every call" else 0), steps


async def test_arguments_in_another_order_are_replayed_where_a_backend_keeps_their_order(tmp_path):
    """The REST simulator keeps a free-form body's keys in the order sent, and its result text shows them:
    a rollout that sent the ground truth's keys in another order got another text, so it takes no kept
    outcome, whether its turns are the first or the last."""
    from inftool_env import compile_spec

    body = {"type": "object", "properties": {"meta": {"type": "object", "additionalProperties": True}}}
    ok = {"200": {"description": "ok"}}
    note_id = {"name": "noteId", "in": "path", "required": True, "schema": {"type": "string"}}
    spec = {"openapi": "3.0.0", "info": {"title": "Notes", "version": "1"}, "paths": {
        "/notes": {"post": {"operationId": "addNote", "responses": ok,
                            "requestBody": {"content": {"application/json": {"schema": body}}}}},
        "/notes/{noteId}": {"get": {"operationId": "getNote", "responses": ok, "parameters": [note_id]}}}}  # fmt: skip
    (tmp_path / "notes.json").write_text(json.dumps(spec))
    server = compile_spec(tmp_path / "notes.json")
    servers = {server.suite.name: server}
    get = ToolCall(name="getNote", arguments={"noteId": "1"})

    def add(meta):
        return ToolCall(name="addNote", arguments={"meta": meta})

    truth = [[add({"a": 1, "b": 2})], [get], [get]]
    task = Task(id="n", turns=["x", "y", "z"], servers=[server.suite.name], ground_truth=truth)
    reordered = [[[add({"b": 2, "a": 1})]], [[get]], [[ToolCall(name="getNote", arguments={"noteId": "2"})]]]
    later = [[[add({"a": 1, "b": 2})]], [[get]], [[add({"b": 2, "a": 1})]]]
    for steps in (reordered, later):
        cold = await replay_turns(servers, task, steps, seed=0, truths=TruthCache(size=0))
        kept = TruthCache()
        await replay_turns(servers, task, [[turn] for turn in truth], seed=0, truths=kept)
        assert as_tuple(await replay_turns(servers, task, steps, seed=0, truths=kept)) == as_tuple(cold)
    verdict = await verdict_multi_turn(servers, task, reordered, seed=0, truths=kept)
    assert verdict.error_type == "multi_turn:execution_response_mismatch"
