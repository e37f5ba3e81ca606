"""Our multi-turn checker (replayed on our MCP servers) and BFCL's own give the same verdicts on
every entry of the four multi-turn categories, ground truth and mutations alike.

One difference is by design and documented, not copied: our servers validate every call against
the tool's declared schema, while BFCL executes calls as Python without checking types. A call
with a wrongly-typed argument is therefore rejected here, but in BFCL it may run and, by Python's
leniency, leave the same state and results as the ground truth (a truthy string for a boolean
``unlock``; an int ``stock`` that is simply not found, as the ground truth's own no-op). BFCL then
passes the entry and we fail it. The test allows exactly that kind: a ``wrong_type`` mutation,
valid for BFCL, invalid for us, with the call rejected by our schema validation.
"""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from inftool_env.eval.bfcl_data import domain_servers
from inftool_env.rewards.multi_turn import check_multi_turn, replay_turns, verdict_multi_turn
from tests.rewards.multi_turn_cases import as_python, multi_turn_cases
from tests.rewards.official import MULTI_TURN_SCRIPT, official_python, official_verdicts

pytestmark = pytest.mark.skipif(
    not official_python().exists(),
    reason=f"BFCL's own checker is not installed at {official_python()} (`make test` builds .venv-bfcl)",
)


def test_agreement_with_the_official_multi_turn_checker():
    cases = list(multi_turn_cases())
    payload = [
        {"id": f"{task.id}|{label}",
         "entry": {"id": task.id, "initial_config": task.initial_state, "involved_classes": task.servers},
         "model": [[[as_python(c) for c in step] for step in turn] for turn in steps],
         "truth": [[as_python(c) for c in turn] for turn in task.ground_truth]}
        for task, label, steps in cases
    ]  # fmt: skip
    official, _ = official_verdicts(payload, MULTI_TURN_SCRIPT)
    servers = {False: domain_servers(), True: domain_servers(long_context=True)}

    async def ours() -> dict[str, tuple[bool, str, bool]]:
        out = {}
        for task, label, steps in cases:
            by_kind = servers[task.category == "long_context"]
            outcomes = await replay_turns(by_kind, task, steps, seed=0)
            verdict = await verdict_multi_turn(by_kind, task, steps, seed=0)  # what `eval bfcl` runs
            assert verdict == check_multi_turn(outcomes), (task.id, label)  # stopping early changes nothing
            rejected = any(r.startswith("Invalid arguments for") for t in outcomes for r in t.results)
            out[f"{task.id}|{label}"] = (verdict.valid, verdict.error_type, rejected)
        return out

    mine = anyio.run(ours)
    disagreements, by_design, crashes = [], [], []
    for case_id, theirs in official.items():
        if theirs["valid"] is None:
            crashes.append(f"{case_id}: {theirs['error_type']}")
        elif mine[case_id][0] != theirs["valid"] and "|wrong_type:" in case_id and theirs["valid"] and mine[case_id][2]:
            by_design.append(case_id)
        elif mine[case_id][0] != theirs["valid"]:
            disagreements.append(
                f"{case_id}: ours {mine[case_id]}, official {theirs['valid']} ({theirs['error_type']})"
            )
    labels = Counter(c.split("|")[1].split(":")[0] for c in official)
    valid = Counter(v[0] for v in mine.values())
    print(f"\n{len(cases)} multi-turn cases: {dict(labels)}; ours valid/invalid {valid[True]}/{valid[False]}")
    print(f"{len(disagreements)} disagreements, {len(crashes)} official crashes")
    print(f"{len(by_design)} by design (a wrongly-typed call BFCL runs and our schema validation rejects):")
    print("  " + ", ".join(by_design))
    for line in disagreements + crashes:
        print("  " + line)
    assert len(official) == len(cases) > 5_000
    assert not disagreements
    assert not crashes
