"""verifiers 0.4 adapter: our env, tasks, MCP server and gated reward under verifiers' v1 API.

Use: ``vf-eval inftool_verifiers --env.taskset.env inftool/Bookshelf-v0 …`` (a registered env id, or
the path of an env manifest such as the one ``inftool synth`` writes) in a virtualenv holding
verifiers (and this package installed with ``--no-deps``), with ``$INFTOOL_PYTHON`` naming the
interpreter of the virtualenv where inftool-env is installed. verifiers imports a taskset id as a
top-level module, so ``inftool_verifiers`` (``vf_entry/``) re-exports ``taskset.py`` under that name.

Why two processes. verifiers 0.4 pins ``mcp==2.0.0`` and ``numpy>=2.1``; inftool pins ``mcp==2.3.0``.
Rather than run our servers and reward on an SDK they were not built for, the split is:

- ``taskset.py`` (verifiers' venv) is only verifiers code: a ``Taskset``, a ``Task`` whose
  ``@vf.reward`` is our gated reward, and an ``Env`` that plays one episode as one verifiers
  ``interaction``. It imports nothing of ours beyond this package's namespace.
- ``bridge.py`` (inftool's venv, started by ``taskset.py`` as a subprocess, loopback only) owns
  everything of ours: the env built by ``make(ID)``, its real MCP servers over streamable HTTP, the
  user simulator, and the reward.

The wire between them is the protocols themselves: verifiers' own MCP client (mcp 2.0, in its chat
program) calls our MCP server (mcp 2.3) directly, at a per-episode URL; the bridge adds the episode
keys our servers read from ``_meta`` (episode, seed, initial state) to each ``tools/call``, so every
rollout has its own isolated, seeded server state although verifiers sends no ``_meta``.

The reward replays the trace's assistant turns through a fresh ``ToolEnv`` episode with the same
task and seed, the user's lines taken from the trace: it is therefore exactly what ``inftool eval``
gives for the same actions, gates and all. The replay's tool results are compared with the ones
the model saw and any difference is reported as the ``divergent_results`` metric.

Each episode is shown the tools the env offers it, as ``inftool eval`` shows them: the episode's MCP
listing leaves out a task's ``excluded_tools``, and a call to a tool not offered runs nowhere and is
answered as our env answers an unknown tool. Tasks whose tools change between user turns
(``tools_added``) are refused when the bridge starts: one rollout is shown one listing.

Known differences from our own loop: verifiers' chat loop decides when a turn ends (a reply
without tool calls) and its own limits apply; a conversation it cut short scores 0 (``finished``
= 0). With several servers, verifiers names tools ``server_tool``; the prefix is removed before
the env sees them.
"""
