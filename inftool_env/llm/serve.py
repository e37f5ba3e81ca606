"""An OpenAI-compatible chat server over any ``ChatModel``: ``/v1/chat/completions`` (whole or
streamed as server-sent events) and ``/v1/models``. It puts a local model (HF, scripted) behind the
same HTTP client path production uses against vLLM's server."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from inftool_env.asgi import running_asgi
from inftool_env.errors import InftoolError
from inftool_env.llm import ChatModel, Completion


def openai_app(model: ChatModel) -> Starlette:
    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": model.name, "object": "model", "owned_by": "inftool"}]})

    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "the body is not JSON")
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            return _error(400, "'messages' must be a list of objects with a 'role'")
        try:
            done = await model.complete(messages, tools=body.get("tools"), temperature=body.get("temperature"),
                                        seed=body.get("seed"), max_tokens=body.get("max_tokens"),
                                        logprobs=bool(body.get("logprobs")))  # fmt: skip
        except InftoolError as exc:
            return _error(500, str(exc))
        rid = f"chatcmpl-{uuid.uuid4().hex[:16]}"
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(_chunks(rid, model.name, done, usage), media_type="text/event-stream")
        return JSONResponse(_whole(rid, model.name, done))

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"])])


@contextlib.asynccontextmanager
async def running_openai_server(model: ChatModel, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``model`` for the block's duration; yields the base URL (``http://host:port/v1``)."""
    async with running_asgi(openai_app(model), host=host, port=port) as bound:
        yield f"http://{host}:{bound}/v1"


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)


def _usage(done: Completion) -> dict[str, int]:
    u = done.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}  # fmt: skip


def _logprobs(done: Completion) -> dict[str, Any] | None:
    if done.logprobs is None:
        return None
    return {"content": [{"token": "", "logprob": lp, "bytes": None, "top_logprobs": []} for lp in done.logprobs]}


def _whole(rid: str, name: str, done: Completion) -> dict[str, Any]:
    message = {"role": "assistant", "content": done.message.get("content") or None}
    if done.message.get("tool_calls"):
        message["tool_calls"] = [_call(i, c) for i, c in enumerate(done.message["tool_calls"])]
    choice = {"index": 0, "message": message, "finish_reason": done.finish_reason or "stop",
              "logprobs": _logprobs(done)}  # fmt: skip
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": name,
            "choices": [choice], "usage": _usage(done)}  # fmt: skip


def _call(i: int, call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function", {})
    args = fn.get("arguments", "{}")
    return {
        "id": call.get("id") or f"call_{i}",
        "type": "function",
        "function": {"name": fn.get("name", ""), "arguments": args if isinstance(args, str) else json.dumps(args)},
    }


async def _chunks(rid: str, name: str, done: Completion, include_usage: bool) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **extra}]}  # fmt: skip
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    words = str(done.message.get("content") or "").split(" ")
    for i, word in enumerate(words):  # word by word, so clients must really join the stream
        if word or i:
            yield chunk({"content": word if i == 0 else " " + word})
    for i, call in enumerate(done.message.get("tool_calls") or []):
        whole = _call(i, call)
        args = whole["function"]["arguments"]
        yield chunk({"tool_calls": [{"index": i, "id": whole["id"], "type": "function",
                                     "function": {"name": whole["function"]["name"], "arguments": ""}}]})  # fmt: skip
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
    yield chunk({}, done.finish_reason or "stop", logprobs=_logprobs(done))
    if include_usage:
        usage = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": name,
                 "choices": [], "usage": _usage(done)}  # fmt: skip
        yield f"data: {json.dumps(usage)}\n\n"
    yield "data: [DONE]\n\n"
