"""OpenRLHF's agent file for inftool environments: pass this file's path as ``--train.agent_func_path``.

OpenRLHF's vLLM engine loads the file by path and builds its ``AgentExecutor`` — here its own
``MultiTurnAgentExecutor`` over ``AgentInstance``, so OpenRLHF keeps the token bookkeeping (the sampled
ids as generated, the action ranges, the rollout logprobs). Each prompt gets one isolated episode of
the env its label names (``inftool export-openrlhf`` writes the dataset), with its own server state.

The executor hands a step only the model's text; the episode also needs the ids behind it (did the
turn end on the template's end-of-turn token, or run out of budget?). So ``execute`` wraps the engine
in a recorder of each generation, and the instance reaches its episode through a context variable —
each ``execute`` runs in its own asyncio task, so concurrent rollouts never see each other's. An episode
whose opening is too long for ``max_length`` is failed (see ``episode``): it is given one token.
"""

from __future__ import annotations

import contextvars
import copy
from typing import Any

import torch
from openrlhf.utils.agent import AgentInstanceBase, MultiTurnAgentExecutor

from inftool_env.train.openrlhf.episode import Episode

_EPISODE: contextvars.ContextVar[Episode] = contextvars.ContextVar("inftool_openrlhf_episode")


class AgentInstance(AgentInstanceBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.episode = _EPISODE.get()

    async def reset(self, states: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"observation": await self.episode.start(states.get("observation"))}

    async def step(self, states: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        outcome = await self.episode.step()
        reward = torch.tensor(outcome.reward)
        return {
            "rewards": reward,  # the gated reward on the last step, 0 before: their sum is the episode's
            "scores": reward,
            "environment_feedback": outcome.feedback,
            "done": outcome.done,
            "extra_logs": outcome.logs,
        }


class _RecordingEngine:
    """The engine as the executor sees it, telling the episode what each generation was."""

    def __init__(self, engine: Any, episode: Episode) -> None:
        self.engine, self.episode = engine, episode

    async def generate(self, prompt_token_ids: list[int], sampling_params: Any, multi_modal_data: Any = None) -> Any:
        if self.episode.too_long:  # failed, not played (OpenRLHF cut its prompt): no budget spent on it
            sampling_params = copy.deepcopy(sampling_params)
            sampling_params.max_tokens = 1
        output = await self.engine.generate(prompt_token_ids, sampling_params, multi_modal_data=multi_modal_data)
        sample = output.outputs[0]
        self.episode.record(prompt_token_ids, list(sample.token_ids), sample.finish_reason)
        return output


class AgentExecutor(MultiTurnAgentExecutor):
    def __init__(self) -> None:
        super().__init__(AgentInstance)

    async def execute(
        self,
        prompt: str,
        label: str,
        sampling_params: Any,
        max_length: int,
        hf_tokenizer: Any,
        llm_engine: Any,
        images: Any = None,
    ) -> dict[str, Any]:
        # OpenRLHF keeps max_length less the generation's minimum (its max_tokens, else 1) of the prompt.
        episode = Episode(label, hf_tokenizer, max_length, getattr(sampling_params, "max_tokens", None) or 1)
        token = _EPISODE.set(episode)
        try:
            result: dict[str, Any] = await super().execute(
                prompt, label, sampling_params, max_length, hf_tokenizer, _RecordingEngine(llm_engine, episode), images
            )
            return result
        finally:
            _EPISODE.reset(token)
            await episode.close()
