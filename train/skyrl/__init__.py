"""SkyRL-gym 0.4 adapter: ``register_envs()`` then ``skyrl_gym.make("inftool/Bookshelf-v0", extras=row)``.

Importing this package registers nothing (no side effects at import); ``register_envs`` does, once.
"""

from inftool_env.train.skyrl.register import ENTRY_POINT, GENERIC_ID, dataset_rows, register_envs

__all__ = ["ENTRY_POINT", "GENERIC_ID", "dataset_rows", "register_envs"]
