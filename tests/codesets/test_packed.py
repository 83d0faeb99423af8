"""PackedMap reads exactly as the dict it was made from (look-ups by binary search)."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from opencac.codesets.packed import PackedMap

keys = st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, st.one_of(st.integers(), st.lists(st.text(max_size=3), max_size=3)), max_size=40),
       st.lists(keys, max_size=10))
def test_packed_map_is_its_source(source: dict[str, object], probes: list[str]) -> None:
    m = pickle.loads(pickle.dumps(PackedMap(source)))
    assert list(m) == list(source)  # the source's order, not the sorted one kept inside
    assert len(m) == len(source)
    for k in list(source) + probes:
        assert (k in m) == (k in source)
        assert m.get(k, "absent") == source.get(k, "absent")
    assert dict(m.items()) == source


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, st.integers(), max_size=40), keys)
def test_keys_with_prefix_are_the_sources_keys_with_that_prefix(source: dict[str, int], prefix: str) -> None:
    m = pickle.loads(pickle.dumps(PackedMap(source)))
    assert m.keys_with_prefix(prefix) == sorted(k for k in source if k.startswith(prefix))


def test_code_like_keys_found_by_binary_search() -> None:
    source = {f"{c}{n:02d}.{d}": (c, n, d) for c in "ZAMB" for n in range(0, 100, 7) for d in range(10)}
    m = pickle.loads(pickle.dumps(PackedMap(source)))
    assert all(m[k] == v for k, v in source.items())
    assert "A00" not in m and "A00.10" not in m and "" not in m and 7 not in m  # type: ignore[operator]
    assert list(m)[:3] == ["Z00.0", "Z00.1", "Z00.2"]


def test_len_does_not_search_the_keys(monkeypatch: object) -> None:
    """``len()`` and truthiness run once per sentence in the matcher: they must not re-check
    every looked-up key (that cost 30 ms per note once 1,000 keys were memoised)."""
    from collections import defaultdict

    source = defaultdict(list, {f"K{i:04d}": [i] for i in range(2000)})
    m = pickle.loads(pickle.dumps(PackedMap(source)))
    for i in range(0, 2000, 2):
        assert m[f"K{i:04d}"] == [i]
    assert m["new"] == [] and len(m) == 2001 and list(m)[-1] == "new"
    calls = []
    real = PackedMap._where
    monkeypatch.setattr(PackedMap, "_where", lambda self, key: calls.append(key) or real(self, key))  # type: ignore[attr-defined]
    for _ in range(50):
        assert len(m) == 2001 and m
    assert calls == []
