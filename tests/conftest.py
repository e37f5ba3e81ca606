from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from inftool_env.errors import SpecError

REPO = Path(__file__).resolve().parent.parent
BOOKSHELF = REPO / "servers" / "bookshelf" / "openapi.yaml"


def terminal_sigint() -> None:
    """A child's SIGINT as in a terminal (``Popen(preexec_fn=…)``): delivered and raising KeyboardInterrupt.
    A child inherits its parent's blocked signals and ignored ones, and a test runner's worker may carry
    either, left by a library an earlier test used; a test that sends SIGINT must not depend on that."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def corpus_dir() -> Path:
    return Path(os.environ.get("INFTOOL_CORPUS", REPO.parent / "shared" / "corpus" / "openapi"))


def corpus_files() -> list[Path]:
    root = corpus_dir()
    return sorted(p for p in root.glob("*") if p.suffix in (".yaml", ".yml", ".json")) if root.is_dir() else []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=corpus_files() or [None], ids=lambda p: p.name.split("__")[0] if p else "no-corpus")
def corpus_spec(request: pytest.FixtureRequest) -> Path:
    if request.param is None:
        pytest.skip(f"the OpenAPI corpus is not at {corpus_dir()} (set INFTOOL_CORPUS)")
    return request.param


@contextlib.contextmanager
def shared_corpus_or_skip(env_id: str) -> Iterator[None]:
    """Envs whose manifest names a spec of the shared corpus (../shared beside the repo) exist only where
    it does (CI has it beside the clone); elsewhere the test skips, saying so."""
    try:
        yield
    except SpecError as exc:
        if "shared/corpus" in str(exc) or str(corpus_dir()) in str(exc):
            pytest.skip(f"{env_id} needs the shared OpenAPI corpus: {exc}")
        raise


@pytest.fixture
def replayed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the calls multi-turn replays make, in order (the tests clear the list)."""
    from inftool_env.rewards import multi_turn

    made: list[str] = []
    run = multi_turn._run

    async def counted(servers, owner, states, call, checked=None):  # type: ignore[no-untyped-def]
        made.append(call.name)
        return await run(servers, owner, states, call, checked)

    monkeypatch.setattr(multi_turn, "_run", counted)
    return made


def child_pids() -> set[int]:
    """This process's live child processes (Linux), for no-leak checks."""
    pids: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            pids |= {int(p) for p in f.read().split()}
    return pids


def peak_rss_mb() -> float:
    """This process's own peak RSS (Linux). Not ru_maxrss: Linux carries it across exec, so a bench started
    by a large process (pytest with models loaded) would report its parent's peak as its own."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """llama-cpp-python opens two /dev/null files at import and never closes them; closed here so the
    interpreter's exit does not print ResourceWarnings about them."""
    import sys

    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None:
            handle.close()


# `make test` hands whole files to its two workers in collection order (--dist loadfile
# --no-loadscope-reorder). By default xdist orders files by their number of tests, which put the vLLM
# engine's one test (2.5 minutes) last, running alone at the end. The longest files go first instead
# (each file's setup and calls summed by --durations=0 on two cores; the rest keep their order):
# with hf:embedded's faster load (hf.py), the suite took 1,060 s against 1,193 s before both, the same day.
LONGEST_FIRST = [
    "tests/train/test_grpo.py",  # 224 s
    "tests/train/test_export.py",  # 160 s
    "tests/llm/test_vllm_engine.py",  # 154 s, one test
    "tests/llm/test_gguf_model.py",  # 151 s
    "tests/train/test_trl.py",  # 143 s
    "tests/train/test_verifiers.py",  # 125 s
    "tests/llm/test_embedded_model.py",  # 124 s
    "tests/train/test_loop.py",  # 95 s
    "tests/mcp/test_transports.py",  # 84 s
    "tests/test_cli.py",  # 69 s
    "tests/test_wheel.py",  # 67 s
    "tests/train/test_openrlhf.py",  # 65 s
    "tests/eval/test_bfcl_eval.py",  # 63 s
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [path for path in LONGEST_FIRST if not (REPO / path).is_file()]
    assert not missing, f"tests/conftest.py LONGEST_FIRST names files that are gone: {missing}"
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))  # stable sort
