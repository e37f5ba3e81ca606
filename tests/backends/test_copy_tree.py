"""``copy_tree``: a deep copy by marshal, then pickle, then ``copy.deepcopy``, each kept only where the
one before cannot hold the value."""

from __future__ import annotations

from typing import Any

from inftool_env.backends.base import copy_tree


class Node:
    def __init__(self, name: str, children: list[Any] | None = None) -> None:
        self.name, self.children, self.parent = name, children or [], None


def test_json_data_is_copied_whole_and_independent() -> None:
    data = {"a": [1, 2.5, {"b": None, "c": True}], "d": "é"}
    copied = copy_tree(data)
    assert copied == data and copied is not data and copied["a"][2] is not data["a"][2]


def test_an_object_tree_keeps_its_shared_parts_shared_and_is_independent() -> None:
    leaf = Node("leaf")
    root = Node("root", [leaf])
    leaf.parent = root
    tree = {"root": root, "cwd": leaf}  # two ways to the same node, as BFCL's file system keeps
    copied = copy_tree(tree)
    assert copied["cwd"] is copied["root"].children[0] and copied["cwd"].parent is copied["root"]
    copied["cwd"].name = "moved"
    assert leaf.name == "leaf"


def test_what_pickle_cannot_hold_is_still_copied() -> None:
    class Local:  # not importable by name: pickle refuses it, copy.deepcopy does not
        def __init__(self) -> None:
            self.items = [1, 2]

    value = {"x": Local()}
    copied = copy_tree(value)
    assert copied["x"] is not value["x"] and copied["x"].items == [1, 2]
    assert copied["x"].items is not value["x"].items
