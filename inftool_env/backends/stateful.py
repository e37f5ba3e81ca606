"""A stateful simulated backend derived from an OpenAPI spec alone.

Resources are inferred from paths: ``/pets`` is a collection, ``/pets/{petId}`` one of its items,
``/owners/{ownerId}/pets`` a collection nested under an owner, and ``/pets/findByStatus`` or
``/pets/search`` a query over ``/pets`` itself (so a record just created is found). Verbs act on them as REST means:
POST on a collection creates (and returns a fresh id), GET lists (with the spec's filters and
paging) or reads, PUT/PATCH update, DELETE removes; an unknown id is a tool error the model sees.
Collections start with a few seeded records, and every value comes from the episode's own rng, so
the same seed and the same calls replay byte for byte. Results are shaped by the operation's
response schema (stored fields show through where they fit it). A singular path whose plural is a listed
collection (``/project/{username}/{project}`` beside ``/projects``) names that collection's records, and a
path deeper routes name items under is their collection; a missing id's error lists the ids that exist, or
says that none can.

Speed: a seeded world depends on the seed alone, so the last few are kept (as marshal bytes and the
rng's state after seeding) and an episode's state and its reward's two replays build it once; what
each tool's route and response need is worked out once per backend, not per call.
"""

from __future__ import annotations

import marshal
import random
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inftool_env.backends.base import copy_tree
from inftool_env.errors import ToolCallError
from inftool_env.spec.ir import ToolSpec, ToolSuite
from inftool_env.spec.sample import sample

SEED_RECORDS = 3
SEEDED_WORLDS_KEPT = 64  # per backend: an episode's state and the replays of its reward are built from one
_PAGE_SIZE_ARGS = ("limit", "maxResults", "max_results", "per_page", "pageSize", "page_size", "count", "size")
_OFFSET_ARGS = ("offset", "start", "skip")
_PARAM = re.compile(r"^\{(.+)\}$")
_MAKES = {("POST", False), ("PUT", True)}  # (method, on an item or a search): a tool that adds a record
_SEARCH = re.compile(r"^(?:[fF]ind|[sS]earch|[qQ]uery|[fF]ilter|[lL]ookup)(?:[A-Z_-].*)?$")


@dataclass
class StatefulState:
    """One episode's world: records per collection, the id counter, and the episode's rng."""

    rng: random.Random
    collections: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    next_id: int = 1


@dataclass(frozen=True)
class _Route:
    collection: str  # the collection's path template, e.g. "/owners/{ownerId}/pets"
    item_param: str | None  # the path parameter naming one item, e.g. "petId"
    parents: tuple[tuple[str, str], ...]  # (parent collection, its id parameter) along the path
    search: bool = False  # a query endpoint over the collection (``/pets/findByStatus``): any verb lists


class StatefulBackend:
    """Simulates a REST API from its spec; one instance serves any number of episodes."""

    deterministic = True  # the same seed and calls give the same results and states: replays may reuse them
    suspends = False  # call() never awaits: the server needs no cancel scope around it

    def __init__(self, suite: ToolSuite, *, seed_records: int = SEED_RECORDS) -> None:
        self.suite = suite
        self.seed_records = seed_records
        paths = {t.name: _route(t.http.path) for t in suite.tools if t.http is not None}
        self.routes, linked = _linked(paths, _record_schemas(suite, paths))
        self.known_collections = {r.collection for r in self.routes.values()}
        # Only collections something can read back start with records (not /channels/stop, /freeBusy…).
        self.readable = {
            self.routes[t.name].collection
            for t in suite.tools
            if t.name in self.routes and t.http and t.http.method == "GET"
        }
        self.record_schemas = _record_schemas(suite, self.routes)
        # The field a record keeps its id in: "id", or the item's path parameter where the record has that
        # field and no "id" and the server makes it (Nexmo's calls: /{uuid}, {"uuid": ...}), so a listed
        # record names its own path. A field a create sends (a tag's name) stays the client's.
        creates = [
            t
            for t in suite.tools
            if t.name in self.routes and t.http and t.http.method == "POST" and not self.routes[t.name].item_param
        ]
        sent = {self.routes[t.name].collection: _sent_fields(t) for t in creates}
        # The create's response counts too (CircleCI's build detail lacks build_num, its trigger's summary has it).
        made = {self.routes[t.name].collection: set((t.output_schema or {}).get("properties") or {}) for t in creates}
        self.id_keys: dict[str, str] = {}
        for route in self.routes.values():
            props = self.record_schemas.get(route.collection, {}).get("properties") or {}
            param = route.item_param
            shown = param in props or (param in made.get(route.collection, ()) and "id" not in made[route.collection])
            if param and shown and "id" not in props and param not in sent.get(route.collection, ()):
                self.id_keys.setdefault(route.collection, param)
        # A collection that a nested path names by a parameter its records lack (CircleCI's projects, listed by
        # /projects, named by /project/{username}/{project}) keeps its id in its one name field ("reponame"), so
        # the listing shows what to pass.
        self.linked = linked
        for owner, qualifiers in linked.items():
            props = self.record_schemas.get(owner, {}).get("properties") or {}
            names = [k for k, v in props.items() if _is_name_field(k, v) and not any(k.endswith(q) for q in qualifiers)]
            if "id" not in props and len(names) == 1:
                self.id_keys.setdefault(owner, names[0])
        # Collections whose every record the simulation knows: seeded, or made only by a tool (a create, or a PUT
        # on an item); a parent in one of them must exist.
        self.creatable = {
            r.collection
            for t in suite.tools
            if (r := self.routes.get(t.name)) and t.http and (t.http.method, bool(r.item_param or r.search)) in _MAKES
        }
        # A path that starts with a parameter names a record of the root collection only where "/" lists or
        # creates records (Nexmo's calls), not where it is a prefix (/{version}/users).
        self.root_collection = any(r.collection == "/" and r.item_param is None for r in self.routes.values())
        # The schema of each collection's ids: the path parameter that names an item (the tools must accept
        # every id the world holds), else the record's own ``id`` property.
        self.id_schemas: dict[str, dict[str, Any]] = {}
        for tool in suite.tools:
            if tool.name not in self.routes:
                continue
            route = self.routes[tool.name]
            named = [(route.collection, route.item_param)] if route.item_param else []
            for collection, param in [*named, *route.parents]:
                schema = _path_param_schema(tool, param)
                if schema and collection not in self.id_schemas:
                    self.id_schemas[collection] = schema
        self._seeded: OrderedDict[int, bytes] = OrderedDict()

    # -- Backend protocol -----------------------------------------------------------------------
    def new_state(self, *, seed: int, initial: Mapping[str, Any] | None = None) -> StatefulState:
        if initial is not None:
            state = StatefulState(rng=random.Random(seed))
            state.collections = copy_tree(dict(initial.get("collections", {})))
            state.next_id = int(initial.get("next_id", 1))
            return state
        kept = self._seeded.get(seed) if isinstance(seed, int) else None
        if kept is not None:
            self._seeded.move_to_end(seed)
            return self.thaw_state(kept)
        state = self._seed_world(seed)
        if isinstance(seed, int):
            # One blob: a few kB where the rng's state as Python ints would be ~25 kB. None: a value marshal
            # cannot hold (not JSON), so this world is not kept.
            if (frozen := self.freeze_state(state)) is None:
                return state
            self._seeded[seed] = frozen
            while len(self._seeded) > SEEDED_WORLDS_KEPT:
                self._seeded.popitem(last=False)
        return state

    def _seed_world(self, seed: int) -> StatefulState:
        """Every readable top-level collection with ``seed_records`` records, from the seed's rng."""
        state = StatefulState(rng=random.Random(seed))
        for collection in sorted(self.known_collections):
            if "{" in collection or collection not in self.readable:  # nested ones start empty
                continue
            schema = self.record_schemas.get(collection, {"type": "object"})
            for _ in range(self.seed_records):
                record_id = self._new_id(state, collection)
                record = sample(schema, state.rng, optional=0.7)
                record = record if isinstance(record, dict) else {"value": record}
                state.collections.setdefault(collection, {})[record_id] = self._with_id(collection, record, record_id)
        return state

    def snapshot(self, state: StatefulState) -> dict[str, Any]:
        return {"collections": copy_tree(state.collections), "next_id": state.next_id}

    @staticmethod
    def state_matches(state: StatefulState, expected: StatefulState) -> bool:
        """What comparing the two snapshots says, without copying either."""
        return state.collections == expected.collections and state.next_id == expected.next_id

    @staticmethod
    def freeze_state(state: StatefulState) -> bytes | None:
        """The records, the next id and the rng's position (backends/base.py). Marshal's format 2 writes
        no back-references, so the bytes follow the data alone, not which of its strings are one object:
        the records are JSON data, nothing in them shared by two of them. None where a value is not."""
        try:
            return marshal.dumps((state.collections, state.next_id, state.rng.getstate()), 2)
        except ValueError:
            return None

    @staticmethod
    def thaw_state(frozen: bytes) -> StatefulState:
        collections, next_id, rng_state = marshal.loads(frozen)  # noqa: S302 - our own bytes
        return StatefulState(rng=_rng_at(rng_state), collections=collections, next_id=next_id)

    @staticmethod
    def copy_state(state: StatefulState) -> StatefulState:
        """An independent copy that goes on as the original would (its rng included)."""
        return StatefulState(
            rng=_rng_at(state.rng.getstate()), collections=copy_tree(state.collections), next_id=state.next_id
        )

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], state: StatefulState) -> Any:
        route = self.routes.get(tool.name)
        if route is None or tool.http is None:
            raise ToolCallError(f"tool {tool.name!r} has no HTTP operation to simulate")
        path_args = _located(tool, arguments, "path")
        body = _body(tool, arguments)
        query = _located(tool, arguments, "query")
        key = self._scoped(route, path_args, state)
        records = state.collections.setdefault(key, {})
        method = tool.http.method

        if route.item_param is not None:
            item_id = str(path_args.get(route.item_param))
            if item_id not in records and method not in ("PUT",):
                raise ToolCallError(self._missing(route.collection, route.item_param, item_id, records))
            if method in ("GET", "HEAD", "OPTIONS", "TRACE"):
                return self._shape(tool, records[item_id], state)
            if method == "DELETE":
                return self._shape(tool, records.pop(item_id), state)
            if method == "PUT":
                records[item_id] = self._store(route.collection, body, item_id, state)
            else:  # PATCH, POST on an item
                records[item_id] = self._store(
                    route.collection, {**records[item_id], **_as_record(body)}, item_id, state
                )
            return self._shape(tool, records[item_id], state)

        if route.search:  # a query over the collection, by query string or by body
            body_filters = body if isinstance(body, dict) else {}
            return self._shape(tool, _page(list(records.values()), {**body_filters, **query}), state)
        if method == "POST":
            record_id = self._new_id(state, route.collection)
            records[record_id] = self._store(route.collection, body, record_id, state)
            return self._shape(tool, records[record_id], state)
        if method in ("PUT", "PATCH"):  # a singleton resource at a collection path
            records["_"] = {**records.get("_", {}), **_as_record(body)}
            return self._shape(tool, records["_"], state)
        if method == "DELETE":
            ids = _id_list(query)
            removed = [records.pop(i) for i in list(records) if not ids or i in ids]
            return self._shape(tool, removed, state)
        return self._shape(tool, _page(list(records.values()), query), state)

    # -- helpers --------------------------------------------------------------------------------
    def _scoped(self, route: _Route, path_args: dict[str, Any], state: StatefulState) -> str:
        """The storage key of a (possibly nested) collection. A parent must exist where its collection is a
        top-level one that is seeded or was written (a listing's records, CircleCI's projects included: _linked);
        a parent in a nested collection is not checked."""
        key = route.collection
        for parent, param in route.parents:
            parent_id = str(path_args.get(param))
            parent_records = state.collections.get(parent)
            known = parent_records is not None and parent in self.known_collections and "{" not in parent
            if known and (parent != "/" or self.root_collection) and parent_id not in (parent_records or {}):
                raise ToolCallError(self._missing(parent, param, parent_id, parent_records or {}))
            key = key.replace("{" + param + "}", parent_id)
        return key

    def _missing(self, collection: str, param: str, wanted: str, records: Mapping[str, Any]) -> str:
        """A miss the model can act on: the ids that exist, or that none can (nothing seeded, no tool makes one)."""
        route_parent = next(
            (r.parents[-1][0] for r in self.routes.values() if r.collection == collection and r.parents), ""
        )
        named_by_parent = collection.endswith("}") and route_parent in self.linked  # /project/…/{project}: builds
        miss = f"No {_error_noun(collection, param) if named_by_parent else _noun(collection)} with {param}={wanted!r}"
        if records or collection in self.creatable:
            return f"{miss}. Existing ids: {', '.join(list(records)[:10]) or 'none'}."
        return f"{miss}: none exist, and no tool creates one."

    def _new_id(self, state: StatefulState, collection: str) -> str:
        """A fresh, distinct id shaped like the collection's id schema: a counter, or a sample of its pattern
        or format. It depends on the counter alone (not the episode's rng), so a task that chains on the id
        of a record it creates replays on any seed."""
        n = state.next_id
        state.next_id += 1
        if self._id_is_integer(collection):
            return str(n)
        id_schema = self._id_schema(collection)
        taken = state.collections.get(collection, {})
        if id_schema.get("pattern") or id_schema.get("format") or id_schema.get("enum"):
            id_rng = random.Random(f"{collection}#{n}")
            for _ in range(20):
                candidate = sample(id_schema, id_rng)
                if isinstance(candidate, str | int) and str(candidate) not in taken:
                    return str(candidate)
        fallback = f"{_noun(collection)[:3]}_{n}"
        return fallback if fallback not in taken else f"{_noun(collection)[:3]}_{n}_{len(taken)}"

    def _id_schema(self, collection: str) -> dict[str, Any]:
        if collection in self.id_schemas:
            return self.id_schemas[collection]
        props = self.record_schemas.get(collection, {}).get("properties", {})
        return props["id"] if isinstance(props.get("id"), dict) else {}

    def _id_is_integer(self, collection: str) -> bool:
        return self._id_schema(collection).get("type") == "integer"

    def _with_id(self, collection: str, record: dict[str, Any], record_id: str) -> dict[str, Any]:
        key = self.id_keys.get(collection, "id")
        return {**record, key: int(record_id) if self._id_is_integer(collection) else record_id}

    def _store(self, collection: str, body: Any, record_id: str, state: StatefulState) -> dict[str, Any]:
        """A record as written: the body, plus the record schema's required fields filled once, so
        later reads show the same values."""
        record = _as_record(body)
        schema = self.record_schemas.get(collection)
        if schema is not None:
            filled = sample(schema, state.rng, hint=record, root=schema, optional=0.0)
            record = {**filled, **record} if isinstance(filled, dict) else record
        return self._with_id(collection, record, record_id)

    @staticmethod
    def _shape(tool: ToolSpec, value: Any, state: StatefulState) -> Any:
        """Fit a stored value to the response schema (no optional field invented); with none, as stored."""
        schema = tool.output_schema
        if schema is None:
            return copy_tree(value)
        if schema.get("x-wrapped"):
            return sample(schema["properties"]["result"], state.rng, hint=value, root=schema, optional=0.0)
        if isinstance(value, list):  # a list into an object: put it in its array property (HAL's _embedded.calls too)
            where = _array_path(schema)
            for key in reversed(where or []):
                value = {key: value}
            if where is None:
                value = {}
        return sample(schema, state.rng, hint=value, root=schema, optional=0.0)


def _rng_at(position: tuple[Any, ...]) -> random.Random:
    """A generator at ``position`` (what ``getstate()`` gave)."""
    rng = random.Random(0)
    rng.setstate(position)
    return rng


def _route(path: str) -> _Route:
    segments = [s for s in path.split("/") if s]
    item_param = None
    search = False
    if segments and (m := _PARAM.match(segments[-1])):
        item_param = m.group(1)
        segments = segments[:-1]
    elif len(segments) > 1 and _SEARCH.match(segments[-1]) and not _PARAM.match(segments[-2]):
        segments, search = segments[:-1], True  # /pets/findByStatus queries /pets
    parents, prefix = [], ""
    for segment in segments:
        if m := _PARAM.match(segment):  # /{uuid}/talk: a record of the root collection "/"
            parents.append((prefix or "/", m.group(1)))
        prefix += "/" + segment
    return _Route(collection=prefix or "/", item_param=item_param, parents=tuple(parents), search=search)


def _record_schemas(suite: ToolSuite, routes: dict[str, _Route]) -> dict[str, dict[str, Any]]:
    """The schema a record of each collection has: its item GET's output, else its create's, else a listing's items."""
    schemas: dict[str, dict[str, Any]] = {}
    rank: dict[str, int] = {}
    candidate: dict[str, Any] | None
    for tool in suite.tools:
        route = routes.get(tool.name)
        if not (route and tool.output_schema and tool.http and tool.http.method in ("GET", "POST")):
            continue
        if route.item_param is not None and tool.http.method == "GET":
            candidate, level = tool.output_schema, 0
        elif tool.http.method == "POST" and not route.search and route.item_param is None:
            candidate, level = tool.output_schema, 1
        elif tool.http.method == "GET":
            candidate, level = _listed_items(tool.output_schema), 2
        else:
            continue
        if candidate is not None and level < rank.get(route.collection, 3):
            schemas[route.collection], rank[route.collection] = candidate, level
    return schemas


def _linked(
    routes: dict[str, _Route], record_schemas: dict[str, dict[str, Any]]
) -> tuple[dict[str, _Route], dict[str, frozenset[str]]]:
    """Routes whose items a top-level listing holds. CircleCI lists /projects and names one project as
    /project/{username}/{project}: the path's noun, singular, with parameters only after it, where no /project
    collection exists and each parameter before the last (``username``) is a field of the listing's records
    (``record_schemas``, per collection before linking), so it just qualifies the name. A team has no
    ``teamId``: /team/{teamId}/{memberId} beside /teams names a member, not a team. Such an item is a /projects
    record, and a path that deeper routes name items under (/project/{username}/{project}/{build_num}) is their
    collection: GET lists the builds, POST triggers one. Returns the routes and, per linked listing, the
    parameters that qualify its records' names."""
    collections = {r.collection for r in routes.values()}
    top = {r.collection for r in routes.values() if not r.parents and r.collection != "/"}
    owners: dict[str, str] = {}
    for c in sorted({r.collection for r in routes.values() if r.item_param}, key=lambda c: (c.count("{"), c)):
        base = c.split("/{")[0]
        plural = base + "s"
        if base and base not in collections and plural in top and plural not in owners.values():
            fields = record_schemas.get(plural, {}).get("properties") or {}
            qualifiers = re.findall(r"\{([^}]+)\}", c)
            if re.fullmatch(re.escape(base) + r"(?:/\{[^}/]+\})+", c) and all(q in fields for q in qualifiers):
                owners[c] = plural
    out: dict[str, _Route] = {}
    for name, r in routes.items():
        parents = tuple((owners.get(p, p), q) for p, q in r.parents)
        if r.collection in owners and r.item_param:
            below = f"{r.collection}/{{{r.item_param}}}"
            if below in collections:
                out[name] = _Route(below, None, (*parents, (owners[r.collection], r.item_param)))
            else:
                out[name] = _Route(owners[r.collection], r.item_param, parents, r.search)
        else:
            out[name] = _Route(r.collection, r.item_param, parents, r.search)
    return out, {owner: frozenset(re.findall(r"\{([^}]+)\}", c)) for c, owner in owners.items()}


def _is_name_field(key: str, schema: Any) -> bool:
    kind = schema.get("type") if isinstance(schema, dict) else None
    return key.lower().endswith("name") and (kind == "string" or (isinstance(kind, list) and "string" in kind))


def _array_path(schema: dict[str, Any], *, only: bool = False) -> list[str] | None:
    """The property path of an object's list: its first array property, else one inside an object property
    (``{"_embedded": {"calls": [...]}}``); ``only``: at a level with exactly one array."""
    props = schema.get("properties")
    if not isinstance(props, dict):
        return None
    arrays = [k for k, s in props.items() if isinstance(s, dict) and s.get("type") == "array"]
    if arrays and (len(arrays) == 1 or not only):
        return [arrays[0]]
    if arrays:
        return None
    # One level down, where exactly one object property holds a list of records (HAL's _embedded.calls,
    # not meta.warnings beside it).
    nested = [[key, *inner] for key, sub in props.items() if isinstance(sub, dict) and "properties" in sub
              for inner in [_array_path(sub, only=only)] if inner is not None and len(inner) == 1]  # fmt: skip
    of_records = [path for path in nested if _items_are_objects(props[path[0]]["properties"][path[1]])]
    return of_records[0] if len(of_records) == 1 else None


def _items_are_objects(array: dict[str, Any]) -> bool:
    items = array.get("items")
    return isinstance(items, dict) and (items.get("type") == "object" or "properties" in items)


def _sent_fields(tool: ToolSpec) -> set[str]:
    """The record fields a create sends: its body arguments, and the properties of a whole-body argument."""
    fields: set[str] = set()
    for arg, binding in tool.bindings.items():
        if binding.location not in ("body", "formData"):
            continue
        if binding.name:
            fields.add(binding.name)
        else:
            schema = tool.input_schema.get("properties", {}).get(arg)
            fields |= set((schema or {}).get("properties") or {}) if isinstance(schema, dict) else set()
    return fields


def _listed_items(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The item schema of a listing response (a bare array, or an object's first array property)."""
    body = schema["properties"]["result"] if schema.get("x-wrapped") else schema
    if not isinstance(body, dict):
        return None
    if body.get("type") != "array":
        where = _array_path(body, only=True)
        for key in where or []:
            body = body["properties"][key]
        if where is None:
            body = {}
    items = body.get("items")
    if not isinstance(items, dict):
        return None
    return {**items, "$defs": schema["$defs"]} if "$defs" in schema else items


def _path_param_schema(tool: ToolSpec, param: str) -> dict[str, Any] | None:
    for arg, binding in tool.bindings.items():
        if binding.location == "path" and binding.name == param:
            schema = tool.input_schema.get("properties", {}).get(arg)
            return schema if isinstance(schema, dict) else None
    return None


def _located(tool: ToolSpec, arguments: dict[str, Any], *locations: str) -> dict[str, Any]:
    """The arguments bound to these locations, under their original names."""
    return {b.name: v for k, v in arguments.items() if (b := tool.bindings[k]).location in locations}


def _body(tool: ToolSpec, arguments: dict[str, Any]) -> Any:
    """The request body: the one argument that is the whole body, else the flattened properties."""
    fields = _located(tool, arguments, "body", "formData")
    return fields[""] if "" in fields else fields


def _as_record(body: Any) -> dict[str, Any]:
    return copy_tree(body) if isinstance(body, dict) else {"value": copy_tree(body)}


def _page(records: list[dict[str, Any]], query: dict[str, Any]) -> list[dict[str, Any]]:
    for name, value in query.items():  # filters on fields the records have
        if name not in _PAGE_SIZE_ARGS + _OFFSET_ARGS and any(name in r for r in records):
            records = [r for r in records if name in r and _matches(r[name], value)]
    offset = next((int(query[a]) for a in _OFFSET_ARGS if _whole(query.get(a))), 0)
    size = next((int(query[a]) for a in _PAGE_SIZE_ARGS if _whole(query.get(a))), None)
    return records[offset : offset + size if size is not None else None]


def _whole(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()


def _matches(stored: Any, wanted: Any) -> bool:
    """Equality, or membership where either side is a list (``status=[available, sold]``, ``tags``);
    a comma-separated string is a list (``status=available,sold``); tags match by ``name``."""
    options = wanted if isinstance(wanted, list) else wanted.split(",") if isinstance(wanted, str) else [wanted]
    values = stored if isinstance(stored, list) else [stored]
    values = [v.get("name", v) if isinstance(v, dict) else v for v in values]
    if stored == wanted:
        return True
    return any(
        v == o or (isinstance(v, str) and isinstance(o, str) and v == o.strip()) for v in values for o in options
    )


def _id_list(query: dict[str, Any]) -> set[str]:
    raw = query.get("ids")
    if isinstance(raw, str):
        return {s.strip() for s in raw.split(",") if s.strip()}
    return {str(v) for v in raw} if isinstance(raw, list) else set()


def _noun(collection: str) -> str:
    last = [s for s in collection.split("/") if s and not s.startswith("{")]
    return last[-1] if last else "resource"


def _error_noun(collection: str, param: str) -> str:
    """What a missing id names where the collection's last noun is its parent's (/project/{username}/{project}
    holds builds, named by build_num): the item parameter's."""
    stem = re.sub(r"(?:_?(?:num|number|id|Id|ID|name|Name|key|Key))$", "", param) or param
    return stem if stem.endswith("s") else stem + "s"
