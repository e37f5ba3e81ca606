"""The stdio transport's child process: the environment it gets, and its stderr when it dies."""

from __future__ import annotations

import sys

import anyio
import pytest

from inftool_env.errors import ServerError
from inftool_env.mcp import StdioCommand, open_client

pytestmark = pytest.mark.anyio


async def test_inftool_serve_gets_this_processs_environment(tmp_path, monkeypatch):
    # The SDK passes a child only PATH, HOME and a few more: a `python:` class found through PYTHONPATH
    # could not be imported there, and the user read only "Connection closed".
    (tmp_path / "stdio_env_tools.py").write_text(
        "import os\n\nclass Tools:\n"
        "    def setting(self) -> str:\n        return os.environ.get('INFTOOL_TEST_SETTING', 'unset')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("INFTOOL_TEST_SETTING", "inherited")
    async with open_client(StdioCommand.inftool_serve("python:stdio_env_tools:Tools")) as client:
        assert (await client.call("setting", {})).text == '"inherited"'


async def test_another_command_gets_only_the_sdks_default_environment(monkeypatch):
    # A third-party server is not handed this process's secrets: the SDK's list, and what `env` adds.
    monkeypatch.setenv("INFTOOL_TEST_SECRET", "kept-here")
    check = "import os, sys; sys.exit(os.environ.get('INFTOOL_TEST_SECRET', 'absent'))"
    with pytest.raises(ServerError, match=r"its stderr ends: absent$"):
        async with open_client(StdioCommand(sys.executable, ("-c", check))):
            pass
    with pytest.raises(ServerError, match=r"its stderr ends: given$"):
        async with open_client(StdioCommand(sys.executable, ("-c", check), env={"INFTOOL_TEST_SECRET": "given"})):
            pass


async def test_a_server_that_exits_at_start_up_is_named_by_its_own_words(capfd):
    with pytest.raises(ServerError, match=r"Connection closed; its stderr ends: inftool: error: cannot import "
                                          r"'no_such_module_r31'"):  # fmt: skip
        async with open_client(StdioCommand.inftool_serve("python:no_such_module_r31:Tools")):
            pass
    # The last lines only, each on one line, and the child's stderr still reaches ours as it was.
    lines = "import sys\nfor n in range(9): print(f'line {n}', file=sys.stderr)\nsys.exit(3)"
    with pytest.raises(ServerError, match=r"its stderr ends: line 6 \| line 7 \| line 8$"):
        async with open_client(StdioCommand(sys.executable, ("-c", lines))):
            pass
    assert "line 0\nline 1\n" in capfd.readouterr().err


async def test_a_server_that_dies_mid_episode_is_named_by_its_own_words(tmp_path, monkeypatch, capfd):
    # Connected, then gone during a call: the user read only "Connection closed", never why.
    (tmp_path / "stdio_dying_tools.py").write_text(
        "import os, sys\n\nclass Tools:\n"
        "    def fill(self) -> str:\n"
        "        print('fatal: disk quota exceeded', file=sys.stderr, flush=True)\n        os._exit(3)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with anyio.fail_after(60):
        async with open_client(StdioCommand.inftool_serve("python:stdio_dying_tools:Tools"), episode="e1") as client:
            with pytest.raises(ServerError, match=r"^tools/call 'fill' failed: Connection closed; its stderr ends: "
                                                  r"fatal: disk quota exceeded$"):  # fmt: skip
                await client.call("fill", {})
            # And every later request on the dead connection, as an env ending its episode makes.
            with pytest.raises(ServerError, match=r"^ending episode 'e1' failed: .*; its stderr ends: fatal: disk"):
                await client.end_episode()
    assert "fatal: disk quota exceeded\n" in capfd.readouterr().err
