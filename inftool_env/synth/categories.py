"""One builder per category: each makes one candidate task from the context, or says why it cannot.

A builder raises ``Skip`` when this attempt fails (counted by reason) and ``NotApplicable`` when the
category cannot apply to the source at all. ``focus`` (a tool name) steers a builder toward a cell
of a target plan. Every candidate still goes through verification before it is kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from inftool_env.spec.ir import ToolSpec
from inftool_env.synth import phrasing as ph
from inftool_env.synth.answers import reference
from inftool_env.synth.context import Context, NotApplicable, Skip
from inftool_env.synth.foreign import pick_foreign
from inftool_env.synth.values import (
    API_PREFIX,
    CITIES,
    COUNTRIES,
    CREDENTIALS,
    FIRST,
    PLUMBING,
    TOPICS,
    plain_name,
    singular,
    words_of,
)
from inftool_env.synth.world import (
    IDLIKE,
    UPDATE_VERBS,
    SynthError,
    change_params,
    needs_created_record,
    updates_in_place,
)
from inftool_env.tasks import Category, Task, ToolCall

CATEGORIES: tuple[Category, ...] = (
    "simple", "multiple", "parallel", "parallel_multiple", "multi_step", "multi_turn", "irrelevance", "missing_param",
)  # fmt: skip


def parse_categories(categories: list[str] | None) -> list[str]:
    """Names given as items or comma-separated ("simple,parallel"); all of them for None."""
    if not categories:
        return list(CATEGORIES)
    names = [c.strip() for item in categories for c in item.split(",") if c.strip()]
    unknown = [c for c in names if c not in CATEGORIES]
    if unknown:
        raise SynthError(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
    return names


# A builder's Task fills its quota; a list's first Task does, and the rest are companions kept beside it
# when they verify (a near miss's twin).
Builder = Callable[[Context, "str | None"], Awaitable["Task | list[Task]"]]


def askable(ctx: Context, *, executable: bool = False) -> list[tuple[str, ToolSpec]]:
    """Tools a request can ask for: they take arguments, and no earlier call has to create their record."""
    return [
        (s, t)
        for s, t in ctx.tools(executable=executable)
        if t.input_schema.get("properties") and not needs_created_record(ctx.world, s, t)
    ]


def _pick(ctx: Context, focus: str | None, *, executable: bool = False) -> tuple[str, ToolSpec]:
    tools = askable(ctx, executable=executable)
    if not tools:
        raise NotApplicable("no tool takes any argument" if ctx.tools() else "the source has no tools")
    if focus is not None:
        chosen = [(s, t) for s, t in tools if t.name == focus]
        if chosen:
            return chosen[0]
    return ctx.rng.choice(tools)


def _task(ctx: Context, category: Category, turns: list[str], truth: list[list[ToolCall]], offered: list[str],
          **extra: Any) -> Task:  # fmt: skip
    owner = ctx.world.owner()
    servers = sorted({owner[t] for t in offered}) or sorted(ctx.world.compiled)
    excluded = [t.name for s in servers for t in ctx.world.compiled[s].suite.tools if t.name not in offered]
    return Task(
        id="pending", category=category, turns=turns, ground_truth=truth, servers=servers,
        excluded_tools=excluded, initial_state=ctx.pin(offered), **extra,
    )  # fmt: skip


OFFER_CAP = 10  # the most tools a task that offers "the whole source" offers: a prompt a CPU rollout affords


def _whole_source(ctx: Context, keep: list[str]) -> list[str]:
    """Every tool of the source, or past OFFER_CAP the ones ``keep`` names and others drawn to the cap, in the
    source's order (no place cue): Spotify's 37 tools make a 6,200-token prompt, minutes a rollout on a CPU."""
    names = [t.name for _, t in ctx.tools()]
    if len(names) <= OFFER_CAP:
        return names
    chosen = {*keep, *_distractors(ctx, keep, OFFER_CAP - len(set(keep)))}
    return [n for n in names if n in chosen]


def _distractors(ctx: Context, keep: list[str], k: int) -> list[str]:
    others = [t.name for _, t in ctx.tools() if t.name not in keep]
    ctx.rng.shuffle(others)
    return others[: max(k, 0)]  # none asked (a cap already met), not all but the last: others[:-1]


async def _one_call(ctx: Context, focus: str | None) -> tuple[str, ToolSpec, ToolCall]:
    server, tool = _pick(ctx, focus)
    call = ctx.make_call(server, tool)
    if not informative(tool, call):
        raise Skip("a call with only default arguments does not test anything")
    await ctx.execute([[call]], initial=ctx.pin([tool.name]))
    return server, tool, call


# -- single turn ----------------------------------------------------------------------------------
async def simple(ctx: Context, focus: str | None) -> Task:
    _, tool, call = await _one_call(ctx, focus)
    text = ph.opener(ph.clause(tool, call.arguments, ctx.rng), ctx.rng)
    return _task(ctx, "simple", [text], [[call]], [tool.name], one_shot=True,
                 bfcl=reference("simple", [tool], [call]))  # fmt: skip


async def multiple(ctx: Context, focus: str | None) -> Task:
    if len(ctx.tools()) < 2:
        raise NotApplicable("needs at least two tools (one right, others to choose among)")
    _, tool, call = await _one_call(ctx, focus)
    offered = [tool.name, *_distractors(ctx, [tool.name], ctx.rng.randint(2, 4))]
    ctx.rng.shuffle(offered)
    text = ph.opener(ph.clause(tool, call.arguments, ctx.rng), ctx.rng)
    tools = [ctx.world.tool(t) for t in offered]
    return _task(ctx, "multiple", [text], [[call]], offered, one_shot=True,
                 bfcl=reference("multiple", tools, [call]))  # fmt: skip


async def parallel(ctx: Context, focus: str | None) -> Task:
    server, tool = _pick(ctx, focus)
    calls = _several(ctx, server, tool, ctx.rng.randint(2, 3))  # two or three, as requests for several things are
    if len(calls) < 2:
        raise Skip("could not find two distinct argument sets")
    await ctx.execute([calls], initial=ctx.pin([tool.name]))
    text = ph.ask_several(tool, [c.arguments for c in calls], ctx.rng)
    return _task(ctx, "parallel", [text], [calls], [tool.name], one_shot=True,
                 bfcl=reference("parallel", [tool], calls))  # fmt: skip


ONE_VALUE_VARIES = 0.5


def _several(ctx: Context, server: str, tool: ToolSpec, wanted: int) -> list[ToolCall]:
    """Up to ``wanted`` distinct informative calls of one tool. Half the time they differ in one
    required argument only, the rest given alike (the same thing asked for several values), else in
    whatever independent draws give."""
    first = ctx.make_call(server, tool)
    calls = [first] if informative(tool, first) else []
    required = set(tool.input_schema.get("required", []))
    varies = [k for k, v in first.arguments.items()
              if k in required and not inferable(tool, k, v) and plain_name(k) not in CREDENTIALS]  # fmt: skip
    vary = ctx.rng.choice(varies) if calls and varies and ctx.rng.random() < ONE_VALUE_VARIES else None
    for _ in range(wanted * 3):
        if len(calls) == wanted:
            break
        if vary is None:
            call = ctx.make_call(server, tool)
        else:  # no optional extras, so the sibling gives exactly the first's arguments
            fixed = {k: v for k, v in first.arguments.items() if k != vary}
            call = ctx.make_call(server, tool, fixed=fixed, optional=0.0)
        if informative(tool, call) and all(_distinct(tool, call, c) for c in calls):
            calls.append(call)
    return calls


async def parallel_multiple(ctx: Context, focus: str | None) -> Task:
    candidates = [(s, t) for s, t in ctx.tools() if t.input_schema.get("properties")]
    if len(candidates) < 2:
        raise NotApplicable("needs at least two tools that take arguments")
    first = _pick(ctx, focus)
    second = ctx.rng.choice([c for c in candidates if c[1].name != first[1].name])
    picks = [first, second] + ([ctx.rng.choice(candidates)] if ctx.rng.random() < 0.3 else [])
    calls: list[ToolCall] = []
    for server, tool in picks:
        call = ctx.make_call(server, tool)
        if not informative(tool, call) or not all(_distinct(tool, call, c) for c in calls):
            raise Skip("a call with only default arguments, or twice the same call")
        calls.append(call)
    names = sorted({c.name for c in calls})
    offered = names + _distractors(ctx, names, ctx.rng.randint(0, 2))
    await ctx.execute([calls], initial=ctx.pin(offered))
    tools = {t.name: t for _, t in picks}
    text = ph.join_parallel([ph.clause(tools[c.name], c.arguments, ctx.rng) for c in calls], ctx.rng)
    return _task(ctx, "parallel_multiple", [text], [calls], offered, one_shot=True,
                 bfcl=reference("parallel_multiple", [ctx.world.tool(t) for t in offered], calls))  # fmt: skip


def informative(tool: ToolSpec, call: ToolCall) -> bool:
    """Some argument a solver must be told (an empty or all-default call would pass for a lucky guess);
    for an update, something to change besides the record's id (an empty PATCH is no sensible answer)."""
    told = {k for k, v in call.arguments.items() if not inferable(tool, k, v)}
    return bool(told & set(change_params(tool))) if updates_in_place(tool) else bool(told)


def _distinct(tool: ToolSpec, a: ToolCall, b: ToolCall) -> bool:
    """Different requests (``a`` calls ``tool``): ``offset=0`` given or left to its default is one call."""
    return a.name != b.name or _told(tool, a) != _told(tool, b)


def _told(tool: ToolSpec, call: ToolCall) -> str:
    return json.dumps({k: v for k, v in call.arguments.items() if not inferable(tool, k, v)}, sort_keys=True)


# -- chains: a value one call returns feeds the next ------------------------------------------------
def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _yields(value: Any, initial_text: str) -> list[tuple[str, Any, str]]:
    """Id-like values a result hands on: (key, value, how): "created" (new to the world) or "first"
    (the first item of a listing)."""
    out: list[tuple[str, Any, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if IDLIKE.search(key) and isinstance(item, str | int) and not isinstance(item, bool):
                if json.dumps(item) not in initial_text and str(item) not in initial_text:
                    out.append((key, item, "created"))
        lists = [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if len(lists) == 1 and not out else None
    if isinstance(value, list) and value and isinstance(value[0], dict):
        for key, item in value[0].items():
            if IDLIKE.search(key) and isinstance(item, str | int) and not isinstance(item, bool):
                out.append((key, item, "first"))
    return out


def _affinity(key: str, param: str, producer: ToolSpec, consumer: ToolSpec) -> int:
    k, p = _norm(key), _norm(param)
    if not p.endswith(("id", "uuid", "key", "code")):
        return 0
    if k == p and k not in ("id", "uuid", "key"):
        return 3
    if k in ("id", "uuid") and p.endswith(("id", "uuid")):
        noun = re.sub(r"(id|uuid)$", "", p)
        producer_words = " ".join(words_of(producer.name) + words_of(producer.http.path if producer.http else ""))
        if noun and noun[:4] in _norm(producer_words):
            return 3
        shared = set(words_of(producer.name)) & set(words_of(consumer.name)) - {"get", "list", "create", "update"}
        return 2 if shared or not noun else 1
    return 0


async def find_chain(ctx: Context, focus: str | None) -> tuple[list[ToolCall], list[ToolSpec], str, str]:
    """(calls [producer, consumer], their tools, the consumer's parameter fed, how the value came)."""
    if not ctx.executable():
        raise NotApplicable("needs an executor: calls with no results cannot feed one another")
    tools = ctx.tools(executable=True)
    if len(tools) < 2 or not any(_takes_an_id(t) for _, t in tools):
        raise NotApplicable("no tool takes a record's id for another to hand on")
    producers = [p for p in tools if p[1].name == focus] or list(tools)
    ctx.rng.shuffle(producers)
    found_any = False
    failed: Skip | None = None  # the last chain whose consumer's call failed: the table names its tool
    for server, producer in producers[:8]:
        try:
            first = ctx.make_call(server, producer)
        except Skip:
            continue
        offered_guess = [t.name for _, t in tools]
        initial = ctx.pin(offered_guess)
        try:
            results = await ctx.execute([[first]], initial=initial)
        except Skip:
            continue
        yielded = _yields(results[0][0].value, json.dumps(initial))
        best: tuple[int, str, ToolSpec, str, Any, str] | None = None
        for cserver, consumer in tools:
            if consumer.name == producer.name:
                continue
            for param in consumer.input_schema.get("properties", {}):
                for key, value, how in yielded:
                    score = _affinity(key, param, producer, consumer)
                    if score >= 2 and (best is None or score > best[0] or ctx.rng.random() < 0.3 and score == best[0]):
                        best = (score, cserver, consumer, param, value, how)
        if best is None:
            continue
        found_any = True
        _, cserver, consumer, param, value, how = best
        schema = consumer.input_schema["properties"][param]
        if isinstance(schema, dict) and schema.get("type") == "string":
            value = str(value)
        try:
            second = ctx.make_call(cserver, consumer, fixed={param: value})
        except Skip as exc:  # never sent (its arguments do not validate): its own reason, not the server's
            failed = exc if exc.tool else failed
            continue
        if not informative(consumer, second):  # an update that says only which record
            continue
        try:
            await ctx.execute([[first, second]], initial=initial)
        except Skip as exc:
            if exc.tool:
                failed = Skip("the chained call failed on the server", tool=exc.tool, error=exc.error)
            continue
        return [first, second], [producer, consumer], param, how
    # Which ids a result holds depends on the drawn call (a filter may match nothing): another draw may chain.
    if failed is not None:
        raise Skip(str(failed), tool=failed.tool, error=failed.error)
    raise Skip("the chained call failed on the server" if found_any else "no result named a record another takes")


def _takes_an_id(tool: ToolSpec) -> bool:
    return any(_norm(p).endswith(("id", "uuid", "key", "code")) for p in tool.input_schema.get("properties", {}))


def _reference(how: str, ctx: Context) -> str:
    if how == "first":
        return ctx.rng.choice(["for the first result", "for the first one it returns", "for the top result"])
    return ctx.rng.choice(["for the one just created", "for the new one", "for that new record"])


async def multi_step(ctx: Context, focus: str | None) -> Task:
    calls, tools, param, how = await find_chain(ctx, focus)
    shown = {k: v for k, v in calls[1].arguments.items() if k != param}
    text = ph.join_steps(
        [ph.clause(tools[0], calls[0].arguments, ctx.rng),
         ph.clause(tools[1], shown, ctx.rng, reference=_reference(how, ctx))], ctx.rng,
    )  # fmt: skip
    offered = _whole_source(ctx, [c.name for c in calls])
    return _task(ctx, "multi_step", [text], [calls], offered, provenance={"fed": f"{calls[1].name}.{param}"})


async def multi_turn(ctx: Context, focus: str | None) -> Task:
    if not ctx.executable():
        raise NotApplicable("needs an executor: later turns depend on what earlier ones changed")
    if all(t.annotations.read_only for _, t in ctx.tools(executable=True)):
        raise NotApplicable("every tool only reads: no state evolves over the turns")
    try:
        calls, tools, param, how = await find_chain(ctx, focus)
        shown = {k: v for k, v in calls[1].arguments.items() if k != param}
        turns = [ph.opener(ph.clause(tools[0], calls[0].arguments, ctx.rng), ctx.rng),
                 ph.opener(ph.clause(tools[1], shown, ctx.rng, reference=_reference(how, ctx)), ctx.rng)]  # fmt: skip
        truth = [[calls[0]], [calls[1]]]
    except (Skip, NotApplicable):  # no chain: several requests over one evolving state, at least one a change
        truth, turns = [], []
        for i in range(ctx.rng.randint(2, 3)):
            server, tool = _pick(ctx, focus if i == 0 else None, executable=True)
            call = ctx.make_call(server, tool)
            if not informative(tool, call) or not all(_distinct(tool, call, c) for (c,) in truth):
                raise Skip("a turn with only default arguments, or one repeating another") from None
            truth.append([call])
            turns.append(ph.opener(ph.clause(tool, call.arguments, ctx.rng), ctx.rng))
        if all(ctx.world.tool(c[0].name).annotations.read_only for c in truth):
            raise Skip("only reads: the state would not evolve") from None
        offered = _whole_source(ctx, [c.name for (c,) in truth])
        await ctx.execute(truth, initial=ctx.pin(offered))
    else:
        offered = _whole_source(ctx, [c.name for c in calls])
    return _task(ctx, "multi_turn", turns, truth, offered)


# -- no call, or ask first ------------------------------------------------------------------------
_OFF_DOMAIN = [
    ("What will the weather be like in {city} this weekend?", "weather forecast"),
    ("Translate 'good morning, neighbour' into {lang}.", "translate language"),
    ("Give me a recipe for a vegetarian {dish}.", "recipe cook dish"),
    ("What is the capital of {country}?", "capital country"),
    ("Write a short poem about {topic}.", "poem write"),
    ("Remind me to call {first} on Friday.", "remind reminder call"),
    ("How many minutes should I boil an egg for a soft yolk?", "boil egg cook"),
    ("Recommend a podcast about {topic}.", "podcast recommend"),
    ("Tell me a fun fact about octopuses.", "fact animal octopus"),
    ("What's a good stretching routine after running?", "stretch exercise running"),
    ("Explain the offside rule in football.", "football sport rule"),
    ("Suggest a name for my new {pet}.", "name pet suggest"),
    ("How do I get a red wine stain out of a cotton shirt?", "stain clean laundry"),
    ("What time is sunset in {city} today?", "sunset time sun"),
    ("Convert 12 miles to kilometres.", "convert distance mile"),
    ("Who painted the ceiling of the Sistine Chapel?", "painter art history"),
]
_FILL = {"city": CITIES, "lang": ["Portuguese", "Swahili", "Korean", "Finnish"], "dish": ["lasagna", "curry", "paella"],
         "country": COUNTRIES, "topic": TOPICS, "first": FIRST, "pet": ["kitten", "parrot", "puppy"]}  # fmt: skip
_STOP = {"what", "will", "like", "this", "into", "give", "with", "about", "tell", "good", "after", "today", "does",
         "have", "from", "that", "your", "there", "which", "when", "where", "shirt", "should"}  # fmt: skip


def vocabulary(tools: list[ToolSpec]) -> set[str]:
    """Word stems the tools speak of (names, descriptions, parameters): an irrelevant request avoids them."""
    text = " ".join(t.name + " " + t.description + " " + json.dumps(t.input_schema) for t in tools)
    return {w[:5] for w in words_of(text) if len(w) >= 4}


async def irrelevance(ctx: Context, focus: str | None) -> Task | list[Task]:
    """Half the time a near miss (a real request for one of the source's operations, offered only tools
    of another resource: the hard case, where a tool looks close but none fits), else an off-domain one.
    Where other sources' requests are at hand (``ctx.foreign``), a share is one of those instead."""
    share = FOREIGN_SHARE if ctx.foreign else 0.0
    draw = ctx.rng.random()
    try:
        if draw < share:
            return foreign_irrelevance(ctx, focus)
        if draw < share + NEAR_MISS_SHARE * (1 - share):
            return await near_miss_irrelevance(ctx, focus)
    except (NotApplicable, Skip):
        pass
    try:
        return await off_domain_irrelevance(ctx, focus)
    except NotApplicable as off:  # every off-domain request touches these tools: near misses only
        try:
            return await near_miss_irrelevance(ctx, focus)
        except NotApplicable as near:
            raise NotApplicable(f"{off}; and {near}") from None


NEAR_MISS_SHARE = 0.5
FOREIGN_SHARE = 0.4  # of irrelevance, where a run has other sources: the rest split as without them


def foreign_irrelevance(ctx: Context, focus: str | None) -> Task:
    """Another source's actionable request, offered 1-3 of this source's tools that cannot do its job."""
    request, offered = pick_foreign(ctx, focus)
    return _task(ctx, "irrelevance", [request.text], [], offered, one_shot=True,
                 provenance={"foreign": f"{request.source}:{request.tool.name}"})  # fmt: skip


def resource(tool: ToolSpec) -> str:
    """What a tool acts on, singular: its path's first literal segment past version and API prefixes
    (``/v3/businesses/search`` -> business), else its name's last word (``get_files`` -> file)."""
    if tool.http is not None:
        segments = tool.http.path.strip("/").split("/")
        literal = [p for p in segments if p and not p.startswith("{") and not API_PREFIX.fullmatch(p)]
        if literal:
            return singular(literal[0].lower())
    words = words_of(tool.name)
    return singular(words[-1]) if words else tool.name


_VERBS = {
    **dict.fromkeys(("get", "list", "search", "find", "fetch", "retrieve", "read", "show", "view", "lookup", "query",
                     "describe", "browse"), "read"),
    **dict.fromkeys(("create", "add", "insert", "make", "register"), "create"),
    **dict.fromkeys(UPDATE_VERBS, "update"),
    **dict.fromkeys(("delete", "remove", "destroy", "erase"), "delete"),
}  # fmt: skip
_METHODS = {"GET": "read", "POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
_FILLER = {"by", "id", "ids", "uuid", "of", "for", "all", "info", "details", "detail", "data", "the", "one"}


def same_job(a: ToolSpec, b: ToolSpec) -> bool:
    """Whether one tool may do the other's job, by their names: a verb in common on the same noun."""
    (verbs_a, noun_a), (verbs_b, noun_b) = _verbs_noun(a), _verbs_noun(b)
    return noun_a == noun_b and bool(verbs_a & verbs_b)


def _verbs_noun(tool: ToolSpec) -> tuple[set[str], str]:
    """Every verb the name or method says, synonyms merged, and the name's last noun, singular:
    ``fetch_users`` and ``getUserById`` both read a user; ``calendar_calendarList_patch`` reads or updates
    a calendar. Every reading verb is one: a tool that lists users can answer "get the user named X"."""
    words = words_of(tool.name)
    if "by" in words[1:]:
        words = words[: words.index("by", 1)]
    verbs = {_VERBS[w] for w in words if w in _VERBS}
    if tool.http is not None and tool.http.method.upper() in _METHODS:
        verbs.add(_METHODS[tool.http.method.upper()])
    if not verbs and words:
        verbs.add(words[0])
    nouns = [w for w in words if w not in _VERBS and w not in _FILLER]
    return verbs, singular(nouns[-1]) if nouns else resource(tool)


def _near_misses(ctx: Context, server: str, asked: ToolSpec) -> list[ToolSpec]:
    """Tools of the asked one's server that cannot do its job: another resource, not the same verb on the
    same noun (``delete_files`` does what ``delete_file`` does), nor the same verb on its arguments."""
    return [
        t for s, t in ctx.tools()
        if s == server and resource(t) != resource(asked) and not same_job(t, asked)
        and not takes_its_request(t, asked)
    ]  # fmt: skip


def takes_its_request(tool: ToolSpec, asked: ToolSpec) -> bool:
    """Whether ``tool`` may answer a request for ``asked`` whatever its name: a verb in common, and every
    argument ``asked`` requires, credentials aside (Yelp's delivery search reads by latitude and longitude;
    so does its business search). ``fetch_item_info`` takes ``delete_item``'s id, but does not delete."""
    needed = {n for n in asked.input_schema.get("required", []) if plain_name(n) not in PLUMBING}
    if not needed or not needed <= set(tool.input_schema.get("properties", {})):
        return False
    return bool(_verbs_noun(tool)[0] & _verbs_noun(asked)[0])


async def near_miss_irrelevance(ctx: Context, focus: str | None) -> list[Task]:
    """The near miss, and its twin when the request is a real test: the same words, the asked tool in
    place of one tool of the same offer, to be called. Apart, a model can learn only how often to
    decline; as a pair, whether a fitting tool is on offer is the one difference, so declining has to
    depend on it. Both offer as many tools: a twin with one tool more taught a small model to decline
    wherever a single tool is offered (BFCL's simple category: 6% of its first 50)."""
    server, asked = _pick(ctx, focus)
    others = _near_misses(ctx, server, asked)
    if not others:
        if not any(_near_misses(ctx, s, t) for s, t in askable(ctx)):
            raise NotApplicable("every tool of the source acts on one resource: no near miss to offer")
        raise Skip("every other tool of its server acts on the asked tool's resource")
    call = ctx.make_call(server, asked)
    text = ph.opener(ph.clause(asked, call.arguments, ctx.rng), ctx.rng)
    ctx.rng.shuffle(others)
    offered = [t.name for t in others[: ctx.rng.randint(1, 3)]]
    miss = _task(ctx, "irrelevance", [text], [], offered, one_shot=True, provenance={"near_miss_of": asked.name})
    if not informative(asked, call):
        return [miss]
    both = [asked.name, *offered[1:]]
    ctx.rng.shuffle(both)
    category: Category = "multiple" if len(both) > 1 else "simple"
    twin = _task(ctx, category, [text], [[call]], both, one_shot=True, provenance={"twin": "near_miss"},
                 bfcl=reference(category, [ctx.world.tool(t) for t in both], [call]))  # fmt: skip
    return [miss, twin]


async def off_domain_irrelevance(ctx: Context, focus: str | None) -> Task:
    offered = _whole_source(ctx, [])
    vocab = vocabulary([t for _, t in ctx.tools()])  # every tool's, offered or not: the stricter test
    fits = []
    for template, keywords in _OFF_DOMAIN:
        words = {w for w in words_of(template + " " + keywords) if len(w) >= 4 and w not in _STOP}
        if not {w[:5] for w in words} & vocab:
            fits.append(template)
    if not fits:
        raise NotApplicable("every off-domain request shares words with these tools")
    template = ctx.rng.choice(fits)
    text = template.format(**{k: ctx.rng.choice(v) for k, v in _FILL.items()})
    if {w[:5] for w in words_of(text) if len(w) >= 4 and w not in _STOP} & vocab:
        raise Skip("the filled request touches the tools' vocabulary")
    return _task(ctx, "irrelevance", [text], [], offered, one_shot=True)


def inferable(tool: ToolSpec, param: str, value: Any) -> bool:
    """A value a solver could fill without being told: the default, or the only allowed one."""
    schema = tool.input_schema.get("properties", {}).get(param, {})
    if not isinstance(schema, dict):
        return False
    if "default" in schema and schema["default"] == value or "const" in schema:
        return True
    return isinstance(schema.get("enum"), list) and len(schema["enum"]) == 1


async def missing_param(ctx: Context, focus: str | None) -> Task:
    _, tool, call = await _one_call(ctx, focus)
    required = [p for p in tool.input_schema.get("required", []) if p in call.arguments]
    askable = [p for p in required if not inferable(tool, p, call.arguments[p])]
    if not askable:
        raise Skip("no required argument to leave out")
    missing = ctx.rng.choice(askable)
    label = ph.label(tool, missing)
    said = {k: v for k, v in call.arguments.items() if k != missing}
    value = call.arguments[missing]
    opening = ph.opener(ph.clause(tool, said, ctx.rng), ctx.rng)
    if ph.say_value(value, ctx.rng).strip("'\"") in opening:
        raise Skip("the missing value shows anyway")
    answer = ctx.rng.choice(["The {l} is {v}.", "Use {v} for the {l}.", "Oh, sorry: {l} {v}."])
    offered = [tool.name, *_distractors(ctx, [tool.name], ctx.rng.randint(0, 2))]
    return _task(ctx, "missing_param", [opening, answer.format(l=label, v=ph.say_value(value, ctx.rng))],
                 [[], [call]], offered, facts={label: value}, goal=opening)  # fmt: skip


BUILDERS: dict[str, Builder] = {
    "simple": simple, "multiple": multiple, "parallel": parallel, "parallel_multiple": parallel_multiple,
    "multi_step": multi_step, "multi_turn": multi_turn, "irrelevance": irrelevance, "missing_param": missing_param,
}  # fmt: skip
