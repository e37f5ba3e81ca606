"""TRL 1.16's GRPOTrainer over our environments (``inftool_env.train.trl``), on the real Bookshelf MCP server.

Two halves. A real ``GRPOTrainer`` trains one step with our ``environment_factory`` and dataset on a tiny
randomly initialised Qwen2 (the embedded model's architecture and tokenizer); every episode it ran is
then replayed through ``inftool eval``'s runner and must score the same. A random model never makes a
valid call, so the same environment class is also driven the way TRL's tool loop drives it: the model's
text is parsed by TRL's own ``parse_response``, each call dispatched to the method of that name, then
``get_reward()`` — and the reward must equal ``evaluate()``'s for the same assistant turns.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("trl", reason="needs the trl extra")

from trl.chat_template_utils import add_response_schema, parse_response  # noqa: E402

from inftool_env.env.config import NO_DEADLINE_S  # noqa: E402
from inftool_env.eval.runner import evaluate  # noqa: E402
from inftool_env.registration import make  # noqa: E402
from inftool_env.tasks import Task  # noqa: E402
from inftool_env.train.trl import USER_TOOL, build_dataset, environment_factory  # noqa: E402
from inftool_env.trajectory import RewardBreakdown, Trajectory  # noqa: E402
from tests.train.tiny import tiny_qwen2  # noqa: E402

ENV_ID = "inftool/Bookshelf-v0"


class Replay:
    """A scripted policy: the given assistant turns in order, then empty replies."""

    def __init__(self, turns: list[dict[str, Any]]) -> None:
        self.turns = list(turns)

    async def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        return self.turns.pop(0) if self.turns else {"role": "assistant", "content": ""}


def eval_reward(task: Task, seed: int, turns: list[dict[str, Any]]) -> RewardBreakdown:
    """What ``inftool eval`` gives for these assistant turns (its runner, on a freshly made env)."""

    async def run() -> list[Trajectory]:
        env = make(ENV_ID)
        try:
            _, trajectories = await evaluate(env, lambda _task: Replay(turns), tasks=[task], seed=seed,
                                             concurrency=1, progress=False)  # fmt: skip
            return trajectories
        finally:
            await env.close()

    (trajectory,) = anyio.run(run)
    assert trajectory.reward is not None, trajectory.error
    return trajectory.reward


def assistant_turns(trajectory: Trajectory) -> list[dict[str, Any]]:
    return [{k: m[k] for k in ("role", "content", "tool_calls") if k in m}
            for m in trajectory.messages if m["role"] == "assistant"]  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from inftool_env.llm.embedded import embedded_gguf
    from inftool_env.llm.gguf import gguf_tokenizer

    return gguf_tokenizer(embedded_gguf())


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


# --- driven the way TRL's tool loop drives it -----------------------------------------------------------


def call(tool: str, /, **arguments: Any) -> str:
    """A tool call in the Qwen2.5 chat template's own format, as the model would write it."""
    return f"<tool_call>\n{json.dumps({'name': tool, 'arguments': arguments})}\n</tool_call>"


REGISTER = call("registerMember", name="Ada Lovelace", email="ada@example.com")
BORROW = call("borrowBook", memberId="mem_7", bookId="boo_2", due="2025-03-01")
ARIEL = call("addBook", title="Ariel", author="Sylvia Plath", genre="poetry")
LEAVES = call("addBook", title="Leaves of Grass", author="Walt Whitman", genre="poetry")
SCRIPTS = {
    # Two user turns: the user's second request comes back as message_user's result.
    "multi-turn": ("bookshelf-register-and-borrow",
                   [REGISTER, call(USER_TOOL, message="You are registered as mem_7."), BORROW, "Done."], 1.0),
    # Two calls in one message (one assistant turn in eval, two steps here: the reward does not change).
    "parallel": ("bookshelf-parallel-add", [ARIEL + "\n" + LEAVES, "Added both."], 1.0),
    "wrong-value": ("bookshelf-copies", [call("updateBook", bookId="boo_3", copies=4), "Set to 4."], 0.0),
    "schema-error": ("bookshelf-add", [call("addBook", title="Dune", genre="fiction", copies=2), "Sorry."], 0.0),
    # The model stops after the first request: the user's second turn then goes unanswered.
    "stops-early": ("bookshelf-register-and-borrow", [REGISTER, "Registered."], 0.5),  # 1 of 2 turns right
}  # fmt: skip


@pytest.mark.parametrize("case", list(SCRIPTS))
def test_tool_loop_reward_equals_eval(case: str, tokenizer: Any) -> None:
    task_id, texts, expected = SCRIPTS[case]
    parser = add_response_schema(tokenizer)  # what GRPOTrainer does to a Qwen2.5 tokenizer
    with environment_factory(ENV_ID) as factory:
        rows = build_dataset(ENV_ID, seed=100)
        row = next(r for r in rows if r["task_id"] == task_id)
        env = factory()
        # The methods TRL offers and dispatches to, listed the way GRPOTrainer lists them.
        tools = {name: getattr(env, name) for name, _ in inspect.getmembers(type(env), predicate=inspect.isfunction)
                 if name not in ("reset", "get_reward") and not name.startswith("_")}  # fmt: skip
        assert env.reset(**row) is None  # the row's prompt already holds the user's opening
        # TRL parses each generation after the rendered chat that ends in the assistant header.
        prefix = tokenizer.apply_chat_template(row["prompt"], tools=list(tools.values()), add_generation_prompt=True,
                                               tokenize=True, return_dict=True)["input_ids"]  # fmt: skip
        eval_turns: list[dict[str, Any]] = []
        results: list[str] = []
        for text in texts:
            message = parse_response(parser, tokenizer.encode(text + "<|im_end|>"), prefix=prefix,
                                     tools=list(tools.values()))  # fmt: skip
            batch = []
            for tool_call in message.get("tool_calls") or []:
                function = tool_call["function"]
                results.append(tools[function["name"]](**function["arguments"]))  # TRL's sync tool dispatch
                if function["name"] == USER_TOOL:  # in eval, a reply to the user is a turn without calls
                    eval_turns.append({"role": "assistant", "content": function["arguments"]["message"]})
                else:
                    batch.append({"type": "function", "function": dict(function)})
            if batch:
                eval_turns.append({"role": "assistant", "content": "", "tool_calls": batch})
            if not message.get("tool_calls"):
                assert message["content"] == text
                eval_turns.append({"role": "assistant", "content": message["content"]})
        reward = env.get_reward()
        breakdown = env.reward_breakdown
    assert reward == expected, breakdown
    assert breakdown == eval_reward(Task.model_validate_json(row["task"]), row["seed"], eval_turns)
    if case == "multi-turn":
        assert results[1] == "Thanks! Now lend me book boo_2 until 2025-03-01."  # the user's second turn
        assert json.loads(results[2])["bookId"] == "boo_2"
    if case == "schema-error":
        assert breakdown is not None and breakdown.gates["schema"] is False
        assert "'author' is a required property" in results[0]


def test_row_must_match_the_environment() -> None:
    with environment_factory(ENV_ID) as factory:
        env = factory()
        row = build_dataset(ENV_ID)[0]
        with pytest.raises(Exception, match="no 'task' column"):
            env.reset(prompt=row["prompt"])
        stale = json.loads(row["task"]) | {"turns": ["Something else."]}
        with pytest.raises(Exception, match="differs from its namesake"):
            env.reset(**(row | {"task": json.dumps(stale)}))
        with pytest.raises(Exception, match="before reset"):
            env.get_reward()


# --- inside a real GRPOTrainer ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:You are using 'environment_factory', which is an experimental feature")
def test_grpo_trainer_step(tiny_model: Path, tmp_path: Path) -> None:
    from trl import GRPOConfig, GRPOTrainer

    factory = environment_factory(ENV_ID)
    assert factory.env.config.limits.episode_timeout_s == NO_DEADLINE_S  # TRL's generation is not the env's time
    multi_turn = [t for t in factory.env.tasks if len(t.turns) > 1]
    dataset = build_dataset(ENV_ID, tasks=multi_turn, seed=7)
    args = GRPOConfig(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, num_generations=2,
        max_completion_length=8, max_tool_calling_iterations=2, learning_rate=1e-3, use_cpu=True, bf16=False,
        report_to="none", logging_steps=1, save_strategy="no", seed=0, dataloader_num_workers=0,
    )  # fmt: skip
    try:
        trainer = GRPOTrainer(model=str(tiny_model), args=args, train_dataset=dataset, environment_factory=factory)
        output = trainer.train()
        # Read before close(): closing ends each instance's episode.
        trajectories = [e.trajectory for e in factory.instances if e.trajectory is not None]
    finally:
        factory.close()
    assert output.global_step == 1
    offered = {tool.__name__ for tool in trainer.tools}  # what TRL rendered into the prompt and dispatched to
    assert offered == {t.name for t in factory.env.servers["bookshelf"].suite.tools} | {USER_TOOL}
    assert len(trajectories) == 2  # one per rollout of the group
    logged = trainer.state.log_history[0]
    rewards = []
    for trajectory in trajectories:
        assert trajectory.reward is not None
        assert trajectory.terminated  # the user got to the end of their script
        assert sum(m["role"] == "user" for m in trajectory.messages) == 2  # two user turns: multi-turn
        task = next(t for t in multi_turn if t.id == trajectory.task_id)
        assert trajectory.reward == eval_reward(task, 7, assistant_turns(trajectory))
        rewards.append(trajectory.reward.reward)
    # TRL scored each rollout with get_reward() and logged it under the env class's name.
    assert math.isclose(logged["rewards/Bookshelf_v0/mean"], sum(rewards) / len(rewards), abs_tol=1e-6)


def test_tool_method_schema_round_trip() -> None:
    """What transformers' get_json_schema (TRL's tool rendering) reads back from a generated method, and the
    model's arguments reaching the env under the schema's own names."""
    from transformers.utils import get_json_schema

    from inftool_env.errors import InftoolError
    from inftool_env.train.trl.tools import tool_method

    schema = {
        "type": "object",
        "required": ["book-id"],
        "properties": {
            "book-id": {"type": "string", "description": "Which book.\nArgs: none"},
            "from": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
            "filter": {"type": "object", "properties": {"author": {"type": "string"}}},
            "mode": {"enum": ["fast", "slow"]},
            "limit": {"type": ["integer", "null"], "default": 10},
        },
    }

    class Holder:
        def _forward(self, name: str, arguments: dict[str, Any]) -> str:
            return json.dumps([name, arguments])

    made = tool_method("search", "Find books. Returns: a list", schema, "_forward")
    bound = made.function.__get__(Holder())
    rendered = get_json_schema(bound)["function"]
    params = rendered["parameters"]
    assert rendered["name"] == "search" and rendered["description"] == "Find books. Returns - a list"
    assert params["required"] == ["book_id"]
    props = params["properties"]
    assert props["book_id"] == {"type": "string", "description": "Which book. Args - none"}
    assert props["from_"]["type"] == "integer" and '"minimum":0' in props["from_"]["description"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "description": "The tags."}
    assert props["filter"]["type"] == "object" and '"author"' in props["filter"]["description"]
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert props["limit"]["type"] == "integer" and props["limit"]["nullable"] is True
    assert '"default":10' in props["limit"]["description"]
    assert json.loads(bound(book_id="b1", from_=3)) == ["search", {"book-id": "b1", "from": 3}]
    with pytest.raises(InftoolError, match="reserved"):
        tool_method("reset", "", {}, "_forward")
