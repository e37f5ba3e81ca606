"""Irrelevance from other sources' requests: actionable, with values, offered tools that cannot do them."""

from __future__ import annotations

from pathlib import Path

import pytest

from inftool_env.synth import synthesize
from inftool_env.synth.categories import same_job, takes_its_request
from inftool_env.synth.foreign import foreign_requests, pools
from inftool_env.synth.world import open_world
from inftool_env.tasks import load_tasks
from tests.synth.conftest import BOOKSHELF_ID

YELP_ID = "inftool/YelpFusion-v0"


@pytest.fixture(scope="module")
def worlds():
    return {BOOKSHELF_ID: open_world(BOOKSHELF_ID), YELP_ID: open_world(YELP_ID)}


def test_requests_ask_for_the_worlds_own_tools_each_telling_a_value(worlds):
    yelp = worlds[YELP_ID]
    requests = foreign_requests(yelp, 6, seed=2)
    names = {t.name for _, t in yelp.tools}
    assert len(requests) == 6 and len({r.text for r in requests}) == 6
    for r in requests:
        assert r.source == yelp.name and r.tool.name in names and r.text.strip()
    assert foreign_requests(yelp, 6, seed=2) == requests  # seeded
    assert foreign_requests(yelp, 0, seed=2) == []


def test_each_source_gets_only_the_others_requests(worlds):
    pool = pools(worlds, 4, seed=1)
    assert {r.source for r in pool[BOOKSHELF_ID]} == {worlds[YELP_ID].name}
    assert {r.source for r in pool[YELP_ID]} == {worlds[BOOKSHELF_ID].name}
    assert len(pool[BOOKSHELF_ID]) == len(pool[YELP_ID]) == 4
    assert pools({YELP_ID: worlds[YELP_ID]}, 4, seed=1) == {YELP_ID: ()}


def test_irrelevance_offers_another_sources_request_to_tools_that_cannot_do_it(worlds):
    pool = pools(worlds, 6, seed=1)[BOOKSHELF_ID]
    world = worlds[BOOKSHELF_ID]
    run = synthesize(world, n=12, categories=["irrelevance"], seed=5, foreign=pool)
    foreign = [t for t in run.tasks if "foreign" in t.provenance]
    assert foreign, run.table()
    tools = {t.name: t for _, t in world.tools}
    asked = {r.text: r.tool for r in pool}
    for task in foreign:
        assert task.category == "irrelevance" and task.ground_truth == [] and task.turns[0] in asked
        offered = [tools[n] for n in tools if n not in task.excluded_tools]
        assert 1 <= len(offered) <= 3, task.id
        wanted = asked[task.turns[0]]
        assert task.provenance["foreign"] == f"YelpFusion:{wanted.name}"
        assert not any(same_job(t, wanted) or takes_its_request(t, wanted) for t in offered), task.id
    # The rest of the mix stays: near misses and off-domain requests too.
    assert any("near_miss_of" in t.provenance for t in run.tasks)
    assert any(not t.excluded_tools for t in run.tasks if t.category == "irrelevance")


def test_a_run_without_other_sources_makes_none(worlds):
    run = synthesize(worlds[BOOKSHELF_ID], n=12, categories=["irrelevance"], seed=5)
    assert run.tasks and not any("foreign" in t.provenance for t in run.tasks)


def test_evolve_hands_each_source_the_others_requests(tmp_path: Path):
    from inftool_env.train.loop.evolve import Evolve, EvolveConfig

    def held_out(foreign: int) -> dict[str, set[str]]:
        config = EvolveConfig(sources=[BOOKSHELF_ID, YELP_ID], eval_tasks=10, categories=["irrelevance"],
                              foreign_requests=foreign)  # fmt: skip
        run = Evolve(config, tmp_path / f"run{foreign}", progress=False)
        run.heldout()
        return {
            source: {t.provenance["foreign"].split(":")[0] for t in load_tasks(path) if "foreign" in t.provenance}
            for source, path in ((s, run.out / "heldout" / slug / "tasks.jsonl") for s, slug in run.slugs.items())
        }  # fmt: skip

    assert held_out(8) == {BOOKSHELF_ID: {"YelpFusion"}, YELP_ID: {"Bookshelf"}}
    assert held_out(0) == {BOOKSHELF_ID: set(), YELP_ID: set()}
