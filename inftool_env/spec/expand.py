"""How big a parsed document is once written out: YAML aliases let a small file share one node
many times (an alias bomb: ten levels of ten aliases is ten billion nodes in a few hundred bytes),
and whatever later walks or serialises the value as a tree pays the expanded size, not the file's.
"""

from __future__ import annotations

import math
from typing import Any

CYCLE = math.inf  # a node that contains itself (a recursive alias) expands without end


def expanded_size(node: Any, limit: float = math.inf) -> float:
    """Nodes in ``node`` written out as a tree (every container and scalar counts one). Linear in the
    number of distinct nodes; stops counting as soon as the total passes ``limit``."""
    if not isinstance(node, dict | list):
        return 1
    sizes: dict[int, float | None] = {}  # None: being counted (seeing it again below itself is a cycle)
    stack: list[tuple[Any, bool]] = [(node, False)]
    while stack:
        item, children_done = stack.pop()
        children = list(item.values()) if isinstance(item, dict) else item
        if not children_done:
            if id(item) in sizes:
                continue
            sizes[id(item)] = None
            stack.append((item, True))
            stack.extend((c, False) for c in children if isinstance(c, dict | list) and id(c) not in sizes)
            continue
        total = 1.0
        for child in children:
            if isinstance(child, dict | list):
                size = sizes.get(id(child))
                if size is None:
                    return CYCLE
                total += size
            else:
                total += 1
        if total > limit:
            return total
        sizes[id(item)] = total
    return sizes[id(node)] or 1
