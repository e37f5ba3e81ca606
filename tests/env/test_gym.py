from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time

import gymnasium
import numpy as np
import pytest

from inftool_env.env.gym import GymToolEnv
from inftool_env.errors import InftoolError
from tests.conftest import REPO, child_pids, terminal_sigint


def oracle_call():
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "removeBook", "arguments": {"bookId": "boo_1"}}}],
    }


def test_sync_episode_with_unicode_and_render():
    env = GymToolEnv("inftool/Bookshelf-v0", render_mode="ansi")
    obs, info = env.reset(seed=0, options={"task_id": "bookshelf-remove"})
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(oracle_call())
    obs, reward, terminated, truncated, info = env.step("Erledigt — 完了 ✓")
    assert terminated and reward == 1.0 and info["trajectory"]["task_id"] == "bookshelf-remove"
    assert "[assistant] Erledigt — 完了 ✓" in env.render()
    env.close()
    env.close()


def make_env():
    return GymToolEnv("inftool/Bookshelf-v0")


def test_sync_vector_env():
    envs = gymnasium.vector.SyncVectorEnv([make_env, make_env])
    obs, info = envs.reset(seed=[1, 2])
    assert len(obs["messages"]) == 2 if isinstance(obs, dict) else len(obs) == 2
    actions = np.array(["hello", "hallo"], dtype=object)
    envs.step(actions)
    envs.close()


def test_async_vector_env_without_shared_memory():
    envs = gymnasium.vector.AsyncVectorEnv([make_env, make_env], shared_memory=False)
    try:
        envs.reset(seed=3)
        _, rewards, terminated, truncated, _ = envs.step(np.array(["hello", "hallo"], dtype=object))
        assert rewards.shape == (2,)
    finally:
        envs.close()


def test_gymnasium_make_takes_trainer_driven():
    from inftool_env.env.config import NO_DEADLINE_S

    env = gymnasium.make("inftool_env.envs:inftool/Bookshelf-v0", trainer_driven=True)
    try:
        assert env.unwrapped.core.config.limits.episode_timeout_s == NO_DEADLINE_S
    finally:
        env.close()


def test_gym_envs_over_workers_of_one_env_each_keep_their_connection():
    # Each GymToolEnv runs its own event loop; workers spawned from one env share its connections only on
    # the loop that opened them. Sharing across loops ran siblings over the first env's loop, and closing
    # that env ended their episodes with a server error.
    from inftool_env.registration import make

    base = make("inftool/Bookshelf-v0")
    first, second = GymToolEnv(env=base.spawn()), GymToolEnv(env=base.spawn())
    for env in (first, second):
        env.reset(seed=0, options={"task_id": "bookshelf-remove"})
    first.step(oracle_call())
    first.close()
    second.step(oracle_call())
    _, reward, terminated, truncated, info = second.step("Done.")
    assert (reward, terminated, truncated) == (1.0, True, False), info
    second.close()


# -- an env nobody closes ----------------------------------------------------------------------------
# Each script runs in its own interpreter: a process that hung at exit (it did, forever, until the fix)
# fails the test at the timeout instead of hanging it.
EXIT_TIMEOUT_S = 60

CHILD_PIDS = inspect.getsource(child_pids)

NEVER_CLOSED = f"""
import os, weakref
import gymnasium
{CHILD_PIDS}
class Sentinel: ...
sentinel = Sentinel()
# made before the env, so it runs after whatever closes the env at exit: what children are left then
weakref.finalize(sentinel, lambda: print("left at exit:", sorted(child_pids()), flush=True))
env = gymnasium.make("inftool_env.envs:inftool/Bookshelf-v0", transport="stdio")
env.reset(seed=0)
print("servers:", sorted(child_pids()), flush=True)
"""


def run_script(script: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=EXIT_TIMEOUT_S)  # fmt: skip


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie: exited, not yet reaped
    except FileNotFoundError:
        return True


def test_a_script_that_never_closes_its_env_exits_and_leaves_no_server_process():
    done = run_script(NEVER_CLOSED)
    assert done.returncode == 0, done.stderr
    servers = [line for line in done.stdout.splitlines() if line.startswith("servers:")]
    assert servers and servers[0] != "servers: []", done.stdout  # stdio: the server is a subprocess
    assert "left at exit: []" in done.stdout, done.stdout
    assert all(gone(int(pid)) for pid in servers[0].split(":")[1].strip(" []").split(","))


def test_a_script_that_raises_before_close_exits_with_its_traceback():
    done = run_script(
        "import gymnasium\n"
        "env = gymnasium.make('inftool_env.envs:inftool/Bookshelf-v0')\n"
        "env.reset(seed=0)\n"
        "env.reset(seed=0, options={'task_id': 'nope'})\n"
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" in done.stderr and "has no task 'nope'" in done.stderr


SLEEPER = "python:tests.fixtures.sleeper:Sleeper"

INTERRUPTED = f"""
from inftool_env import compile_spec
from inftool_env.env import EnvConfig, Limits, ServerConfig, TaskSource, ToolEnv
from inftool_env.env.gym import GymToolEnv
from inftool_env.tasks import Task
config = EnvConfig(id="test/Sleep-v0", servers=[ServerConfig(name="s", spec={SLEEPER!r})], transport="stdio",
                   tasks=TaskSource(source="-"), limits=Limits(call_timeout_s=120))
env = GymToolEnv(env=ToolEnv(config, [Task(id="t", turns=["nap"])], {{"s": compile_spec({SLEEPER!r})}}))
env.reset(seed=0)
print("stepping", flush=True)
env.step({{"content": "", "tool_calls": [{{"function": {{"name": "nap", "arguments": {{"seconds": 100}}}}}}]}})
"""


def test_ctrl_c_during_a_step_exits_without_close():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=terminal_sigint)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "stepping\n", proc.communicate()
        time.sleep(0.5)  # into the call
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=EXIT_TIMEOUT_S)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGINT, stderr
    assert "KeyboardInterrupt" in stderr


def test_reset_and_step_after_close_say_the_env_is_closed():
    env = gymnasium.make("inftool_env.envs:inftool/Bookshelf-v0")
    env.reset(seed=0)
    env.close()
    with pytest.raises(InftoolError, match="the environment is closed"):
        env.reset(seed=0)
    with pytest.raises(InftoolError, match="the environment is closed"):
        env.step("hello")
    env.close()  # still idempotent
