from collections import namedtuple

from torchcompile.core.tree import flatten, join_structures, map_structure


def test_map_structure_keeps_containers():
    assert map_structure(lambda v: v * 2, {"a": (1, [2, 3])}) == {"a": (2, [4, 6])}


def test_map_structure_keeps_namedtuples():
    Pair = namedtuple("Pair", "x y")
    assert map_structure(lambda v: v + 1, Pair(1, 2)) == Pair(2, 3)


def test_flatten_orders_leaves_depth_first():
    assert flatten({"a": (1, 2), "b": [3, {"c": 4}]}) == [1, 2, 3, 4]


def test_join_structures_keeps_dicts_lists_and_namedtuples():
    Pair = namedtuple("Pair", "a b")
    parts = [{"x": [1, 2], "p": Pair(3, 4)}, {"x": [5, 6], "p": Pair(7, 8)}]
    joined = join_structures(parts, sum)
    assert joined == {"x": [6, 8], "p": Pair(10, 12)}
    assert isinstance(joined["p"], Pair)
