"""Requests of other sources, offered as irrelevance: the hard case a source alone cannot make.

An off-domain request ("tell me a fun fact") is declined by a small model anyway; a near miss asks for
an operation of the same source. A *foreign* request is an actionable one with concrete values — an
operation of another source synthesized in the same run, phrased as synthesis phrases any call — offered
a few of this source's tools, none of which can do its job. A model that calls whatever tool takes
values fails it; a model that checks what the offered tools do declines. Every request comes from the
project's own sources, never from a benchmark.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from inftool_env.spec.ir import ToolSpec
from inftool_env.synth import phrasing as ph
from inftool_env.synth.context import Context, Skip
from inftool_env.synth.world import World

ATTEMPTS_PER_REQUEST = 4  # a tool whose call needs an earlier record, or tells nothing, is passed over


@dataclass(frozen=True)
class ForeignRequest:
    text: str  # the request, as a user would make it
    tool: ToolSpec  # the other source's tool it asks for: the offered tools must not do its job
    source: str  # that source's world name


def foreign_requests(world: World, n: int, seed: int) -> list[ForeignRequest]:
    """Up to ``n`` requests for ``world``'s tools (each telling a value a solver could not guess), seeded."""
    from inftool_env.synth.categories import askable, informative

    if n <= 0:
        return []
    ctx = Context.create(world, seed=seed)
    tools = askable(ctx)
    out: list[ForeignRequest] = []
    for _ in range(n * ATTEMPTS_PER_REQUEST):
        if len(out) >= n or not tools:
            break
        server, tool = ctx.rng.choice(tools)
        try:
            call = ctx.make_call(server, tool)
        except Skip:
            continue
        if not informative(tool, call):
            continue
        text = ph.opener(ph.clause(tool, call.arguments, ctx.rng), ctx.rng)
        if text not in {r.text for r in out}:
            out.append(ForeignRequest(text, tool, world.name))
    return out


def pick_foreign(ctx: Context, focus: str | None) -> tuple[ForeignRequest, list[str]]:
    """A foreign request and 1-3 of this source's tools that cannot do its job (``focus`` among them
    where it is one): not the same verb on the same noun, not taking its required arguments with a verb in
    common, not acting on its resource."""
    from inftool_env.synth.categories import resource, same_job, takes_its_request

    request = ctx.rng.choice(ctx.foreign)
    unfit = [
        t for _, t in ctx.tools()
        if resource(t) != resource(request.tool) and not same_job(t, request.tool)
        and not takes_its_request(t, request.tool)
    ]  # fmt: skip
    if not unfit:
        raise Skip("every tool of this source may do the foreign request's job")
    ctx.rng.shuffle(unfit)
    offered = [t.name for t in unfit[: ctx.rng.randint(1, 3)]]
    if focus is not None and focus not in offered and any(t.name == focus for t in unfit):
        offered[0] = focus
    return request, offered


def pools(worlds: dict[str, World], n: int, seed: int) -> dict[str, tuple[ForeignRequest, ...]]:
    """For each key, the requests of every *other* world (``n`` from each), in a seeded order."""
    made = {key: foreign_requests(world, n, seed) for key, world in worlds.items()}
    out = {}
    for key in worlds:
        theirs = [r for other, requests in made.items() if other != key for r in requests]
        random.Random(f"{seed}|{key}").shuffle(theirs)
        out[key] = tuple(theirs)
    return out
