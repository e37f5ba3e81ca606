"""TRL 1.16's GRPOTrainer over our environments (``inftool_env.train.trl``), on the real Bookshelf MCP server.

Two halves. A real ``GRPOTrainer`` trains one step with our ``environment_factory`` and dataset on a tiny
randomly initialised Qwen2 (the embedded model's architecture and tokenizer); every episode it ran is
then replayed through ``inftool eval``'s runner and must score the same. A random model never makes a
valid call, so the same environment class is also driven the way TRL's tool loop drives it: the model's
text is parsed by TRL's own ``parse_response``, each call dispatched to the method of that name (or answered
by TRL itself, as its loop answers a call it cannot run), then the rollout scored by ``gated_reward`` — and
the reward must equal ``evaluate()``'s for the same assistant turns (and for the same text, parsed by eval),
for multi-turn tasks and for synthesized single-turn ones (each offered only its own tools, scored on its
first turn).
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

pytest.importorskip("trl", reason="needs the trl extra")

from trl.chat_template_utils import add_response_schema, parse_response  # noqa: E402

from inftool_env import compile_spec  # noqa: E402
from inftool_env.env import EnvConfig, ServerConfig, TaskSource, ToolEnv  # noqa: E402
from inftool_env.env.config import NO_DEADLINE_S  # noqa: E402
from inftool_env.errors import InftoolError  # noqa: E402
from inftool_env.eval.runner import evaluate  # noqa: E402
from inftool_env.registration import make  # noqa: E402
from inftool_env.rollout import SharedServersEnv  # noqa: E402
from inftool_env.tasks import Task  # noqa: E402
from inftool_env.train.trl import USER_TOOL, build_dataset, environment_factory, gated_reward  # noqa: E402
from inftool_env.trajectory import RewardBreakdown, Trajectory  # noqa: E402
from tests.train.tiny import tiny_qwen2  # noqa: E402

ENV_ID = "inftool/Bookshelf-v0"


class Replay:
    """A scripted policy: the given assistant turns (messages, or text in the env's format) in order, then
    empty replies."""

    def __init__(self, turns: list[dict[str, Any]] | list[str]) -> None:
        self.turns: list[Any] = list(turns)

    async def act(self, observation: dict[str, Any]) -> dict[str, Any] | str:
        return self.turns.pop(0) if self.turns else {"role": "assistant", "content": ""}


def eval_reward(task: Task, seed: int, turns: list[dict[str, Any]] | list[str], **overrides: Any) -> RewardBreakdown:
    """What ``inftool eval`` gives for these assistant turns (its runner, on a freshly made env)."""

    async def run() -> list[Trajectory]:
        env = make(ENV_ID, **overrides)
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


# The closing brace is missing: TRL's parse_response falls back to plain text and ends the rollout there.
MALFORMED = '<tool_call>\n{"name": "removeBook", "arguments": {"bookId": "boo_1"\n</tool_call>'
# Arguments that are not an object: TRL's call raises TypeError (`**` needs a mapping), so the env never sees it.
NOT_AN_OBJECT = '<tool_call>\n{"name": "removeBook", "arguments": "boo_1"}\n</tool_call>'
# An object as a JSON string: TRL's call raises TypeError too, but eval's parser decodes it (a valid call).
AS_A_STRING = '<tool_call>\n{"name": "removeBook", "arguments": "{\\"bookId\\": \\"boo_1\\"}"}\n</tool_call>'
REGISTER = call("registerMember", name="Ada Lovelace", email="ada@example.com")
BORROW = call("borrowBook", memberId="mem_7", bookId="boo_2", due="2025-03-01")
REMOVE = call("removeBook", bookId="boo_1")
READS = [call("listBooks"), call("listMembers"), call("getBook", bookId="boo_2"), call("listLoans", memberId="mem_7")]
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
    # The right call, then a call written as text in the last reply: eval's format gate fails the episode.
    "malformed-last-reply": ("bookshelf-remove", [REMOVE, MALFORMED], 0.0),
    # TRL answers "Tool deleteBook not found." itself; eval's schema gate fails the episode on it.
    "unknown-tool": ("bookshelf-remove", [call("deleteBook", bookId="boo_1"), REMOVE, "Done, removed."], 0.0),
    # TRL answers the TypeError itself; eval's parser fails that turn, so its format gate the episode.
    "non-object-arguments": ("bookshelf-remove", [NOT_AN_OBJECT, REMOVE, "Done, removed."], 0.0),
    # TRL runs nothing (TypeError); eval runs the call, and the book is removed.
    "arguments-as-a-string": ("bookshelf-remove", [AS_A_STRING, "Done, removed."], 1.0),
    # 12 calls in two messages: 4 turns for eval (max_turns 12), however many calls TRL runs one at a time.
    "many-calls-few-turns": ("bookshelf-register-and-borrow",
                             ["\n".join([*READS[:2], REGISTER]), call(USER_TOOL, message="You are registered."),
                              "\n".join([*READS, *READS, BORROW]), "Done."], 1.0),
    # max_turns still cuts, counted in messages: the 13th (the removal) is never run.
    "max-turns-in-messages": ("bookshelf-remove", [*[call("listBooks")] * 12, REMOVE, "Done."], 0.0),
}  # fmt: skip


def tools_of(env: Any) -> dict[str, Any]:
    """The methods TRL offers and dispatches to, listed the way GRPOTrainer lists them."""
    return {name: getattr(env, name) for name, _ in inspect.getmembers(type(env), predicate=inspect.isfunction)
            if name not in ("reset", "get_reward") and not name.startswith("_")}  # fmt: skip


def drive(env: Any, row: dict[str, Any], texts: list[str], tokenizer: Any) -> tuple[float, list[dict], list[str]]:
    """One rollout the way TRL's tool loop runs it: each text parsed by TRL's own ``parse_response``, each call
    dispatched to its method (a name the class lacks answered "Tool X not found.", and a call that raises
    answered with the error, by TRL itself), then ``gated_reward``. Returns the reward, the same turns as eval
    takes them (a message's calls together, every call the model wrote; a ``message_user`` call as text, a
    turn of its own) and the tools' results."""
    parser = add_response_schema(tokenizer)  # what GRPOTrainer does to a Qwen2.5 tokenizer
    tools = tools_of(env)
    assert env.reset(**{k: v for k, v in row.items() if k != "environment"}) is None  # the prompt holds the opening
    # TRL parses each generation after the rendered chat that ends in the assistant header.
    prefix = tokenizer.apply_chat_template(row["prompt"], tools=list(tools.values()), add_generation_prompt=True,
                                           tokenize=True, return_dict=True)["input_ids"]  # fmt: skip
    eval_turns: list[dict[str, Any]] = []
    results: list[str] = []
    completion: list[dict[str, Any]] = []  # what TRL hands the reward functions
    for text in texts:
        message = parse_response(parser, tokenizer.encode(text + "<|im_end|>"), prefix=prefix,
                                 tools=list(tools.values()))  # fmt: skip
        completion.append(message)
        batch = []
        for tool_call in message.get("tool_calls") or []:
            function = tool_call["function"]
            try:  # as GRPOTrainer._tool_call_loop dispatches a sync tool
                if function["name"] not in tools:
                    raise ValueError(f"Tool {function['name']} not found.")
                results.append(tools[function["name"]](**function["arguments"]))
            except Exception as exc:
                results.append(str({"error": str(exc)}))
            completion.append({"role": "tool", "name": function["name"], "content": results[-1]})
            if function["name"] == USER_TOOL:  # in eval, a reply to the user is a turn without calls
                if batch:
                    eval_turns.append({"role": "assistant", "content": "", "tool_calls": batch})
                    batch = []
                eval_turns.append({"role": "assistant", "content": function["arguments"]["message"]})
            else:
                batch.append({"type": "function", "function": dict(function)})
        if batch:
            eval_turns.append({"role": "assistant", "content": "", "tool_calls": batch})
        if not message.get("tool_calls"):  # TRL's rollout ends here
            assert message["content"] == text
            eval_turns.append({"role": "assistant", "content": message["content"]})
            break
    (reward,) = gated_reward(completions=[completion], environments=[env], prompts=[row["prompt"]])
    return reward, eval_turns, results


def as_eval_text(text: str) -> str:
    """The model's text as eval's model writes it: a ``message_user`` call is its message (eval offers no
    such tool, a reply without calls goes to the user)."""
    if f'"name": "{USER_TOOL}"' not in text:
        return text
    return json.loads(text.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>"))["arguments"]["message"]


@pytest.mark.parametrize("case", list(SCRIPTS))
def test_tool_loop_reward_equals_eval(case: str, tokenizer: Any) -> None:
    task_id, texts, expected = SCRIPTS[case]
    with environment_factory(ENV_ID) as factory:
        row = next(r for r in build_dataset(ENV_ID, seed=100) if r["task_id"] == task_id)
        env = factory[row["environment"]]()
        reward, eval_turns, results = drive(env, row, texts, tokenizer)
        breakdown, trajectory = env.reward_breakdown, env.trajectory
    assert reward == expected, breakdown
    task = Task.model_validate_json(row["task"])
    assert breakdown == eval_reward(task, row["seed"], eval_turns)
    # The same model text, parsed by eval itself (Hermes, the format a local model's chat template writes).
    from_text = eval_reward(task, row["seed"], [as_eval_text(t) for t in texts], format="hermes")
    assert (from_text.reward, from_text.gates) == (breakdown.reward, breakdown.gates)
    if case == "multi-turn":
        assert results[1] == "Thanks! Now lend me book boo_2 until 2025-03-01."  # the user's second turn
        assert json.loads(results[2])["bookId"] == "boo_2"
    if case == "schema-error":
        assert breakdown is not None and breakdown.gates["schema"] is False
        assert "'author' is a required property" in results[0]
    if case == "malformed-last-reply":
        assert breakdown is not None and breakdown.gates == {"format": False, "schema": True, "execution": True}
    if case == "unknown-tool":
        assert results[0] == "{'error': 'Tool deleteBook not found.'}"  # TRL's answer: the env never saw it
        assert breakdown.gates == {"format": True, "schema": False, "execution": True}
    if case == "non-object-arguments":
        assert "must be a mapping, not str" in results[0]
        assert breakdown.gates == {"format": False, "schema": True, "execution": True}
    if case == "arguments-as-a-string":
        assert "must be a mapping, not str" in results[0]
        assert json.loads(trajectory.turns[0].calls[0].result)["id"] == "boo_1"  # eval's parser ran it
    if case == "many-calls-few-turns":
        assert len(results) == 13 and json.loads(results[-1])["bookId"] == "boo_2"  # the loan: nothing cut
        assert len(trajectory.turns) == 4 and trajectory.terminated
    if case == "max-turns-in-messages":
        assert trajectory.truncation_reason == "max_turns" and len(trajectory.turns) == 12


def test_the_user_is_asked_once_per_turn(tokenizer: Any) -> None:
    """The judged episode hears again what the live one's user said (what the model saw; an LLM user is not
    asked twice), and asks the user itself only past that: here, for the answer to the last reply."""
    from inftool_env.users import ScriptedUser

    class Counted(ScriptedUser):
        asked: ClassVar[list[str]] = []

        async def opening(self, task: Task) -> str:
            self.asked.append("opening")
            return await super().opening(task)

        async def reply(self, task: Task, messages: list[dict[str, Any]]) -> Any:
            self.asked.append("reply")
            return await super().reply(task, messages)

    base = make(ENV_ID, trainer_driven=True)
    env = ToolEnv(base.config, base.tasks, base.servers, user=Counted())
    task_id, texts, _ = SCRIPTS["multi-turn"]
    with environment_factory(env) as factory:
        row = next(r for r in build_dataset(env, seed=100) if r["task_id"] == task_id)
        trl_env = factory()
        reward, _, results = drive(trl_env, row, texts, tokenizer)
        trajectory = trl_env.trajectory
    assert reward == 1.0 and trajectory.terminated
    assert Counted.asked == ["opening", "reply", "reply"]  # live: the opening, message_user; judged: "Done."
    said = [m["content"] for m in trajectory.messages if m["role"] == "user"]
    assert said == [row["prompt"][-1]["content"], results[1]]  # what the model saw


@pytest.fixture(scope="module")
def single_turn() -> dict[str, Task]:
    """Synthesized one-shot tasks, each offered only its own tools (BFCL's single-turn form)."""
    from inftool_env.synth import synthesize

    run = synthesize(ENV_ID, n=6, categories=["parallel", "irrelevance", "simple"], seed=5)
    return {t.category + ("-narrow" if t.excluded_tools else ""): t for t in run.tasks}


def _calls(task: Task) -> list[str]:
    return [call(c.name, **c.arguments) for c in task.ground_truth[0]]


ONE_SHOT = {  # category -> (the replies, the reward eval gives their first turn)
    "all calls in the first reply": ("parallel-narrow", lambda t: ["\n".join(_calls(t)), "Done."], 1.0),
    "a call a reply (eval ends after the first)": ("parallel-narrow", lambda t: [*_calls(t), "Done."], 0.0),
    "declines what no tool does": ("irrelevance", lambda t: ["I cannot translate; no tool here does that."], 1.0),
    "calls where no tool fits": ("irrelevance", lambda t: [call("listBooks"), "Here are the books."], 0.0),
    "the one call, malformed": ("simple-narrow", lambda t: [_calls(t)[0].replace("}\n", "\n", 1)], 0.0),
    "the one call": ("simple-narrow", lambda t: [_calls(t)[0], "Here it is."], 1.0),
}


@pytest.mark.parametrize("case", list(ONE_SHOT))
def test_one_shot_tasks_score_their_first_turn_with_their_own_tools(case, single_turn, tokenizer) -> None:
    kind, replies, expected = ONE_SHOT[case]
    task = single_turn[kind]
    texts = replies(task)
    with environment_factory(ENV_ID, tasks=list(single_turn.values())) as factory:
        rows = build_dataset(ENV_ID, tasks=list(single_turn.values()), seed=100)
        row = next(r for r in rows if r["task_id"] == task.id)
        env = factory[row["environment"]]()
        offered = {t.name for t in factory.env.servers["bookshelf"].suite.tools} - set(task.excluded_tools)
        assert set(tools_of(env)) == offered  # what eval offers this task, no more
        reward, eval_turns, _ = drive(env, row, texts, tokenizer)
        breakdown = env.reward_breakdown
    assert reward == expected, breakdown
    assert breakdown == eval_reward(task, row["seed"], eval_turns)


def test_duplicate_task_ids_are_refused_up_front() -> None:
    """Two tasks of one id: the factory would keep one, and the other's rows would fail mid-training."""
    base = Task.model_validate_json(build_dataset(ENV_ID)[0]["task"])
    twin = base.model_copy(update={"turns": ["Something else."]})
    other = base.model_copy(update={"id": "other"})
    why = f"^inftool/Bookshelf-v0: task id '{base.id}' is given twice \\(tasks \\[0\\] and \\[2\\]\\)"
    with pytest.raises(InftoolError, match=why):
        build_dataset(ENV_ID, tasks=[base, other, twin])
    with pytest.raises(InftoolError, match=why):
        environment_factory(ENV_ID, tasks=[base, other, twin])


def test_gated_reward_scores_each_rollout_once() -> None:
    done = [{"role": "assistant", "content": "Done."}]
    with environment_factory(ENV_ID) as factory:
        env = factory()
        with pytest.raises(InftoolError, match="before reset"):
            gated_reward(completions=[done], environments=[env])
        env.reset(**build_dataset(ENV_ID)[0])
        assert gated_reward(completions=[done], environments=[env]) == [0.0]
        with pytest.raises(InftoolError, match="scored already; reset\\(\\) starts another"):
            gated_reward(completions=[done], environments=[env])
        assert gated_reward(completions=[done], environments=[object()]) == [None]  # another library's env
        with pytest.raises(InftoolError, match="needs GRPOTrainer\\(environment_factory"):
            gated_reward(completions=[done])


def test_each_tool_offer_gets_its_own_environment() -> None:
    """TRL offers an environment's methods for a whole rollout: a task offered fewer tools (a single-turn
    category's) gets a class of its own, routed by the row's ``environment``; tools that change between turns
    are refused, by build_dataset and the factory, rather than trained on a listing eval never shows."""
    base = Task.model_validate_json(build_dataset(ENV_ID)[0]["task"])
    narrow = base.model_copy(update={"id": "narrow", "excluded_tools": ["removeBook"]})
    every = base.model_copy(update={"id": "every", "servers": ["bookshelf"]})  # naming every server limits nothing
    none = base.model_copy(update={"id": "none", "servers": []})  # nor does naming none (reset reads it as all)
    rows = build_dataset(ENV_ID, tasks=[base, narrow, every, none])
    wide = [rows["environment"][i] for i in (0, 2, 3)]
    assert wide == [ENV_ID] * 3 and rows["environment"][1] != ENV_ID
    with environment_factory(ENV_ID, tasks=[base, narrow, every, none]) as factory:
        assert set(factory) == {ENV_ID, rows["environment"][1]}
        wide, small = factory[ENV_ID](), factory[rows["environment"][1]]()
        assert set(tools_of(wide)) - set(tools_of(small)) == {"removeBook"}
        with pytest.raises(InftoolError, match="is offered the tools of .*not this environment's"):
            wide.reset(**rows[1])  # a row sent to the wrong offer
        with pytest.raises(InftoolError, match="different sets of tools: name the offer"):
            factory()
    later = base.model_copy(update={"id": "later", "tools_added": {1: ["removeBook"]}})
    why = "withholds tools until a later user turn"
    with pytest.raises(InftoolError, match=f"^inftool/Bookshelf-v0: task later {why}"):
        build_dataset(ENV_ID, tasks=[later])
    with pytest.raises(InftoolError, match=f"^inftool/Bookshelf-v0: task later {why}"):
        environment_factory(ENV_ID, tasks=[later])


def test_a_given_env_stays_its_callers() -> None:
    """The factory runs (and closes) a copy of a given ToolEnv; the caller's env can still be used and closed."""
    row = next(r for r in build_dataset(ENV_ID) if r["task_id"] == "bookshelf-remove")
    removal = {"type": "function", "function": {"name": "removeBook", "arguments": {"bookId": "boo_1"}}}
    remove = {"role": "assistant", "content": "", "tool_calls": [removal]}

    async def use_then_close(env: ToolEnv) -> Any:
        with anyio.fail_after(30):
            await env.reset(seed=0, options={"task_id": "bookshelf-remove"})
            step = await env.step(remove)
            await env.close()
        return step

    for tasks in (None, "given"):  # tasks= also made the factory build a ToolEnv of its own it never closed
        mine = make(ENV_ID, trainer_driven=True)
        with environment_factory(mine, tasks=None if tasks is None else mine.tasks) as factory:
            env = factory()
            env.reset(**row)
            assert gated_reward(completions=[[{"role": "assistant", "content": ""}]], environments=[env]) == [0.0]
        step = anyio.run(use_then_close, mine)
        assert json.loads(step.info["calls"][0]["result"])["id"] == "boo_1"
        assert factory.env is not mine
        with pytest.raises(InftoolError, match="the environment is closed"):
            anyio.run(factory.env.reset)
    with pytest.raises(InftoolError, match="a SharedServersEnv cannot be"):
        environment_factory(SharedServersEnv(make(ENV_ID), {"bookshelf": "http://127.0.0.1:9/mcp"}))


def test_row_must_match_the_environment() -> None:
    with environment_factory(ENV_ID) as factory:
        env = factory()
        row = build_dataset(ENV_ID)[0]
        with pytest.raises(Exception, match="no 'task' column"):
            env.reset(prompt=row["prompt"])
        stale = json.loads(row["task"]) | {"turns": ["Something else."]}
        with pytest.raises(Exception, match="differs from its namesake"):
            env.reset(**(row | {"task": json.dumps(stale)}))


def test_a_row_from_other_tasks_names_the_fix() -> None:
    """A row whose offer this factory lacks (its tasks were another list's) says what to do, not KeyError."""
    base = Task.model_validate_json(build_dataset(ENV_ID)[0]["task"])
    narrow = base.model_copy(update={"id": "narrow", "excluded_tools": ["removeBook"]})
    row = build_dataset(ENV_ID, tasks=[narrow])[0]
    with environment_factory(ENV_ID) as factory:
        for lookup in (lambda: factory[row["environment"]], lambda: factory(row["environment"])):
            with pytest.raises(InftoolError, match="^no tool offer .*pass the same tasks to build_dataset and envir"):
                lookup()
        with pytest.raises(KeyError):  # still one, for code that catches KeyError
            factory[row["environment"]]


@pytest.mark.parametrize(
    ("call", "why"),
    [
        (lambda: build_dataset(ENV_ID, seed=-3), "^seed must be 0 or more, not -3$"),
        (lambda: build_dataset(ENV_ID, repeats=2.5), "^repeats must be a whole number of at least 1, not 2.5$"),
        (lambda: build_dataset(ENV_ID, repeats=True), "not True"),
        (lambda: build_dataset("inftool/BfclTravelAPI-v0"), "BFCL's, and BFCL is for evaluation only"),
        (lambda: environment_factory("inftool/BfclTravelAPI-v0"), "BFCL's, and BFCL is for evaluation only"),
    ],
    ids=["negative-seed", "fractional-repeats", "bool-repeats", "bfcl-dataset", "bfcl-factory"],
)
def test_bad_arguments_are_refused_up_front(call: Any, why: str) -> None:
    with pytest.raises(InftoolError, match=why):
        call()


def test_bfcl_tasks_in_another_env_are_refused() -> None:
    base = Task.model_validate_json(build_dataset(ENV_ID)[0]["task"])
    bfcl = base.model_copy(update={"id": "simple_python_0", "provenance": {"source": "bfcl-eval 2026.3.23"}})
    with pytest.raises(InftoolError, match="^inftool/Bookshelf-v0: task simple_python_0 is BFCL's"):
        build_dataset(ENV_ID, tasks=[bfcl])
    with pytest.raises(InftoolError, match="^inftool/Bookshelf-v0: task simple_python_0 is BFCL's"):
        environment_factory(ENV_ID, tasks=[bfcl])


def test_a_manifest_path_is_an_env_as_for_make(tmp_path: Path) -> None:
    """What ``inftool synth`` writes (a manifest beside its tasks) builds the same rows as the registered env."""
    shelf = Path(__file__).resolve().parents[2] / "servers" / "bookshelf"
    (tmp_path / "Bookshelf-v0.toml").write_text(f"""id = "synth/Bookshelf-v0"
servers = [{{ name = "bookshelf", spec = "{shelf / "openapi.yaml"}" }}]
[tasks]
source = "{shelf / "tasks.jsonl"}"
""")
    rows = build_dataset(str(tmp_path / "Bookshelf-v0.toml"))
    assert [r["task_id"] for r in rows] == [r["task_id"] for r in build_dataset(ENV_ID)]


# --- inside a real GRPOTrainer ----------------------------------------------------------------------------


def one_step(tmp_path: Path, *, batch: int) -> Any:
    """A GRPOConfig for one CPU step of a tiny model, groups of two."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=batch, num_generations=2,
        max_completion_length=8, max_tool_calling_iterations=2, learning_rate=1e-3, use_cpu=True, bf16=False,
        report_to="none", logging_steps=1, save_strategy="no", seed=0, dataloader_num_workers=0,
    )  # fmt: skip


@pytest.mark.filterwarnings("ignore:You are using 'environment_factory', which is an experimental feature")
def test_grpo_trainer_step(tiny_model: Path, tmp_path: Path) -> None:
    from trl import GRPOTrainer

    factory = environment_factory(ENV_ID)
    assert factory.env.config.limits.episode_timeout_s == NO_DEADLINE_S  # TRL's generation is not the env's time
    multi_turn = [t for t in factory.env.tasks if len(t.turns) > 1]
    dataset = build_dataset(ENV_ID, tasks=multi_turn, seed=7)
    args = one_step(tmp_path, batch=2)
    replies: list[tuple[Any, Any]] = []  # (environment, the completion's last message)

    def record(completions: list[Any], environments: list[Any], **_: Any) -> list[float | None]:
        replies.extend((env, completion[-1]) for env, completion in zip(environments, completions, strict=True))
        return [None for _ in completions]

    try:
        trainer = GRPOTrainer(model=str(tiny_model), args=args, train_dataset=dataset, environment_factory=factory,
                              reward_funcs=[record, gated_reward])  # fmt: skip
        output = trainer.train()
        # Read before close(): closing ends each instance's episode.
        trajectory_of = {id(e): e.trajectory for e in factory.instances if e.trajectory is not None}
        trajectories = list(trajectory_of.values())
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
    # TRL scored each rollout with gated_reward, the only reward: no get_reward column beside it.
    assert math.isclose(logged["rewards/gated_reward/mean"], sum(rewards) / len(rewards), abs_tol=1e-6)
    assert not any(key.startswith("rewards/Bookshelf") for key in logged)
    # Each rollout's last reply (a random model's text) reached its episode as an assistant turn.
    assert len(replies) == 2 and any(last.get("content") for _, last in replies)
    for env, last in replies:
        assert last["role"] == "assistant" and not last.get("tool_calls")
        said = [m["content"] for m in trajectory_of[id(env)].messages if m["role"] == "assistant"]
        assert said[0] == last["content"]


@pytest.mark.filterwarnings("ignore:You are using 'environment_factory', which is an experimental feature")
def test_grpo_trainer_step_on_single_turn_tasks(single_turn, tiny_model: Path, tmp_path: Path) -> None:
    """Synthesized single-turn tasks, each offered only its own tools, in one batch: TRL renders each row's
    offer, and each rollout's reward is eval's for its first assistant turn."""
    from trl import GRPOTrainer

    tasks = [single_turn["parallel-narrow"], single_turn["irrelevance"]]
    factory = environment_factory(ENV_ID, tasks=tasks)
    dataset = build_dataset(ENV_ID, tasks=tasks, seed=7)
    args = one_step(tmp_path, batch=4)
    try:
        trainer = GRPOTrainer(model=str(tiny_model), args=args, train_dataset=dataset, environment_factory=factory,
                              reward_funcs=gated_reward)  # fmt: skip
        assert trainer.train().global_step == 1
        judged = [(e.trajectory, e._seed) for e in factory.instances if e.trajectory is not None]
    finally:
        factory.close()
    for offer, tools in trainer._env_tools.items():  # what TRL renders for each row of that offer
        task = next(t for t in tasks if dataset["environment"][tasks.index(t)] == offer)
        assert {tool.__name__ for tool in tools} == {t.name for t in factory.env.servers["bookshelf"].suite.tools
                                                      if t.name not in task.excluded_tools}  # fmt: skip
    assert len(judged) == 4  # two rollouts of each task
    by_id = {t.id: t for t in tasks}
    for trajectory, seed in judged:
        assert trajectory.reward is not None and len(assistant_turns(trajectory)) == 1  # the first turn alone
        assert trajectory.reward == eval_reward(by_id[trajectory.task_id], seed, assistant_turns(trajectory))
    rewards = {trajectory.task_id: trajectory.reward.reward for trajectory, _ in judged}
    assert rewards == {tasks[0].id: 0.0, tasks[1].id: 1.0}  # a random model's text: no call, a decline


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
    # A property named like the method's own first parameter.
    selfish = tool_method("own", "", {"type": "object", "properties": {"self": {"type": "string"}}}, "_forward")
    own = selfish.function.__get__(Holder())
    assert list(get_json_schema(own)["function"]["parameters"]["properties"]) == ["self_"]
    assert json.loads(own(self_="me")) == ["own", {"self": "me"}]
    assert json.loads(own(**{"self": "me"})) == ["own", {"self": "me"}]  # off-schema: the env's schema gate judges


class Shelf:
    """A backend whose one tool's parameter (``book-id``) is no Python name: TRL's method calls it ``book_id``."""

    TOOLS: ClassVar[list[dict[str, Any]]] = [
        {"name": "keep", "description": "Keep a book.",
         "parameters": {"type": "object", "properties": {"book-id": {"type": "string"}}, "required": ["book-id"],
                        "additionalProperties": False}},
    ]  # fmt: skip

    def new_state(self, *, seed: int, initial: Any = None) -> dict[str, Any]:
        return {"kept": []}

    async def call(self, tool: Any, arguments: dict[str, Any], state: dict[str, Any]) -> Any:
        state["kept"].append(arguments["book-id"])
        return {"kept": len(state["kept"])}

    def snapshot(self, state: dict[str, Any]) -> dict[str, Any]:
        return state


def test_renamed_parameters_are_judged_under_the_schemas_names(tokenizer: Any) -> None:
    """The judged episode gets a call's arguments as the tool's method hands them to the env: under the schema's
    names, not the Python names TRL renders (which the schema gate would refuse)."""
    from inftool_env import load_spec
    from inftool_env.mcp.server import CompiledServer

    config = EnvConfig(id="test/Shelf-v0", servers=[ServerConfig(name="shelf", spec="-")],
                       tasks=TaskSource(source="-"))  # fmt: skip
    task = Task(id="keep", turns=["Keep b1."], ground_truth=[[{"name": "keep", "arguments": {"book-id": "b1"}}]])
    env = ToolEnv(config, [task], {"shelf": CompiledServer(load_spec(Shelf.TOOLS, name="shelf"), Shelf())})
    with environment_factory(env) as factory:
        trl_env = factory()
        reward, _, results = drive(trl_env, build_dataset(env)[0], [call("keep", book_id="b1"), "Kept."], tokenizer)
        trajectory = trl_env.trajectory
    assert results == ['{"kept": 1}'] and reward == 1.0, trl_env.reward_breakdown
    assert trajectory.turns[0].calls[0].arguments == {"book-id": "b1"}


class Shadowing:
    """A python: backend whose tool is named like a property every TRL environment has."""

    def trajectory(self) -> str:
        """Show the trip."""
        return "trip"


def test_a_tool_cannot_replace_the_environments_own_names() -> None:
    spec = f"python:{__name__}:Shadowing"
    config = EnvConfig(id="test/Shadowing-v0", servers=[ServerConfig(name="s", spec=spec)],
                       tasks=TaskSource(source="-"))  # fmt: skip
    env = ToolEnv(config, [Task(id="t", turns=["go"])], {"s": compile_spec(spec)})
    with pytest.raises(InftoolError, match="tool 'trajectory' would replace the TRL environment's own 'trajectory'"):
        environment_factory(env)
