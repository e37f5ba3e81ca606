"""All 200 BFCL multi_turn_base entries, played by the oracle through the env, score 1.0 —
except where BFCL's own ground truth breaks BFCL's own tool docs, listed here with the reason."""

from __future__ import annotations

import pytest

from inftool_env.backends.bfcl import BFCL_DOMAINS
from inftool_env.env import run_batch
from inftool_env.eval.bfcl_known import SCHEMA_VIOLATIONS
from inftool_env.policies.oracle import OraclePolicy
from inftool_env.registration import make

pytestmark = pytest.mark.anyio


async def test_every_multi_turn_base_entry_reaches_its_ground_truth():
    seen, failed = set(), {}
    for domain in BFCL_DOMAINS:
        env = make(f"inftool/Bfcl{domain}-v0")
        todo = [t.id for t in env.tasks if t.id not in seen]
        seen.update(todo)
        for trajectory in await run_batch(env, OraclePolicy, episodes=[(0, t) for t in todo], concurrency=16):
            assert trajectory.error is None, (trajectory.task_id, trajectory.error)
            if trajectory.reward.reward != 1.0:
                errors = [c.result for turn in trajectory.turns for c in turn.calls if c.is_error]
                failed[trajectory.task_id] = "; ".join(errors) or str(trajectory.reward)
        await env.close()
    assert len(seen) == 200
    assert failed == {k: v for k, v in SCHEMA_VIOLATIONS.items() if k in seen}


def test_the_listed_schema_violations_are_exactly_the_ground_truths_our_servers_refuse():
    from inftool_env.backends.bfcl import MULTI_TURN_CATEGORIES, BfclBackend, bfcl_multi_turn_tasks, bfcl_suite
    from inftool_env.mcp.server import CompiledServer

    servers = [CompiledServer(bfcl_suite(name), BfclBackend(name)) for name in BFCL_DOMAINS]
    tool = {t.name: (s, t) for s in servers for t in s.suite.tools}
    refused = {}
    for category in MULTI_TURN_CATEGORIES:
        for task in bfcl_multi_turn_tasks(category):
            for call in (c for turn in task.ground_truth for c in turn):
                server, spec = tool[call.name]
                if errors := server.argument_errors(spec, call.arguments):
                    refused[task.id] = f"Invalid arguments for {call.name!r}: " + "; ".join(errors)
    assert refused == SCHEMA_VIOLATIONS
