"""Results in the format BFCL's own harness writes: one ``{"id": …, "result": …}`` line per entry,
a ``BFCL_v4_<category>_result.json`` file per category.

``result`` is, for single-turn entries, either the model's text in BFCL's Python call syntax
(``"[f(a=1)]"``, prompting models) or a list of ``{name: arguments}`` with arguments as a JSON
string or object (function-calling models); for multi-turn entries, a list per user turn of a list
per assistant step of the same. We write the function-calling form, which BFCL's harness reads
back for any FC model, and read both. ``ResultsOut`` holds a run's ``--out`` and writes each entry's line
as its episode ends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inftool_env.errors import SpecError
from inftool_env.eval.runner import LockedOut, rewrite
from inftool_env.parsing import get_format
from inftool_env.rewards.multi_turn import Steps
from inftool_env.tasks import ToolCall
from inftool_env.trajectory import Trajectory

Call = dict[str, dict[str, Any]]
_PYTHON_SYNTAX = get_format("bfcl")


def result_file(category: str) -> str:
    return f"BFCL_v4_{category}_result.json"


def category_of(entry_id: str) -> str:
    """BFCL's ids are ``<category>_<n>`` (live ones ``<category>_<n>-<m>-<k>``)."""
    return entry_id.rsplit("_", 1)[0]


def decode_step(item: Any) -> list[Call] | None:
    """One step's answer -> calls; None when it is not a decodable call list."""
    if isinstance(item, str):
        parsed = _PYTHON_SYNTAX.parse(item)  # prose is an answer without calls; a broken call list is not
        if parsed.error is not None:
            return None
        return [{c.name: dict(c.arguments)} for c in parsed.calls]
    if not isinstance(item, list):
        return None
    calls: list[Call] = []
    for call in item:
        if not isinstance(call, dict) or len(call) != 1:
            return None
        name, args = next(iter(call.items()))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                return None
        if not isinstance(args, dict):
            return None
        calls.append({str(name): args})
    return calls


def decode_turns(result: Any) -> list[Steps] | None:
    """Multi-turn: steps that decode to no call are dropped, as BFCL's evaluator drops them."""
    if not isinstance(result, list) or not all(isinstance(t, list) for t in result):
        return None
    turns: list[Steps] = []
    for turn in result:
        steps: Steps = []
        for item in turn:
            calls = decode_step(item)
            if calls:
                steps.append([ToolCall(name=n, arguments=a) for c in calls for n, a in c.items()])
        turns.append(steps)
    return turns


def encode(trajectory: Trajectory, *, multi_turn: bool) -> Any:
    """Our trajectory as BFCL's function-calling result, with the tool names as offered (BFCL's
    dotted names arrive with ``_`` for ``.``, as function-calling APIs require and BFCL expects)."""

    def step(calls: list[Any]) -> list[dict[str, str]]:
        return [{c.name: json.dumps(c.arguments, ensure_ascii=False)} for c in calls]

    if not multi_turn:
        first = trajectory.turns[0] if trajectory.turns else None
        if first is None or first.parse_error is not None:
            return first.content if first is not None else ""
        return step(first.calls) if first.calls else first.content
    turns: list[list[Any]] = [[]]
    for record in trajectory.turns:
        turns[-1].append(step(record.calls) if record.calls else record.content)
        if not record.calls and record.parse_error is None:
            turns.append([])
    return turns[:-1] if trajectory.terminated else turns


def result_line(trajectory: Trajectory, *, multi_turn: bool) -> str:
    return json.dumps({"id": trajectory.task_id, "result": encode(trajectory, multi_turn=multi_turn)}) + "\n"


REPORT_FILES = ("report.json", "summary.txt", "accuracy.png")  # what a run writes beside results/


class ResultsOut(LockedOut):
    """An ``eval bfcl`` run's ``--out`` while it runs. Before any entry it is made, locked with the lock
    ``inftool eval`` takes (so a busy or unwritable folder fails at once, in one line) and cleared of what an
    earlier run wrote: its report and every category's result file, else ``--from-results OUT/results``
    would score two runs mixed. Each entry's line is appended the moment its episode ends, so an interrupted
    run keeps every finished entry; a category's file is rewritten in entry order when it ends."""

    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self.results = out / "results"
        self._path: Path | None = None
        self._multi = False
        try:
            self.results.mkdir(exist_ok=True)
            for name in REPORT_FILES:
                (out / name).unlink(missing_ok=True)
            for pattern in (result_file("*"), _part(result_file("*"))):
                for stale in self.results.glob(pattern):
                    stale.unlink()
        except BaseException:
            self.release()
            raise

    def start(self, category: str, *, multi_turn: bool) -> None:
        self._close()
        self._path, self._multi = self.results / result_file(category), multi_turn
        self._file = self._path.open("w", encoding="utf-8")

    def add(self, trajectory: Trajectory) -> None:
        self._append(result_line(trajectory, multi_turn=self._multi))

    def finish(self, trajectories: list[Trajectory]) -> None:
        """The category's lines again, in the order given (they were appended as episodes ended); no
        trajectories (interrupted before any ended): no file."""
        self._close()
        path, self._path = self._path, None
        if path is None:
            return
        if not trajectories:
            path.unlink(missing_ok=True)
            return
        lines = (result_line(t, multi_turn=self._multi) for t in trajectories)
        rewrite(path, lines, path.with_name(_part(path.name)))


def check_out(out: Path) -> None:
    """What ``ResultsOut(out)`` would refuse (another run's lock, a path that cannot be written), found
    without clearing anything: a run checks it before its model loads."""
    probe = LockedOut(out)
    try:
        (out / "results").mkdir(exist_ok=True)
    finally:
        probe.release()


def _part(name: str) -> str:
    """A result file's copy while it is rewritten: not ``*.json*``, so ``read_results`` never reads it."""
    return name.removesuffix(".json") + ".part"


def read_results(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every result line under ``path`` (a file or a directory of them), by category; a bad line is
    an error naming the file and the line."""
    if not path.exists():
        raise SpecError("no such file or directory", source=str(path))
    files = sorted(path.rglob("*.json*")) if path.is_dir() else [path]
    by_category: dict[str, list[dict[str, Any]]] = {}
    for file in files:
        if file.name in ("report.json", "summary.json"):
            continue
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecError(f"line {number}: not JSON ({exc.msg})", source=str(file)) from None
            if not isinstance(item, dict) or "id" not in item or "result" not in item:
                raise SpecError(f"line {number}: expected an object with 'id' and 'result'", source=str(file))
            by_category.setdefault(category_of(str(item["id"])), []).append(item)
    if not by_category:
        raise SpecError("no result lines found", source=str(path))
    return by_category
