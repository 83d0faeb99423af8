"""A read-mostly ``str``-keyed mapping whose values are unpickled one by one on first use.

Large code maps (the MS-DRG groupers' code tables, the knowledge base's ICD-10-CM and
ICD-10-PCS entries) are read by every short process (``opencac code``) that then looks up a
few hundred keys; unpickling them whole dominated those processes' start-up.
"""

from __future__ import annotations

import pickle
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from typing import Any

_MISSING = object()


class PackedMap(Mapping[str, Any]):
    """A read-mostly ``str``-keyed mapping kept as blobs: the keys, sorted, as one text and
    every value pickled on its own, decoded when first looked up (then kept, so a value is one
    object for the life of the process, as in the dict it replaces).

    drgpy's grouper holds ~200,000 code entries in dicts of lists, sets and dicts; unpickling
    them took ~0.3 s of every inpatient ``opencac code`` call that groups a handful of codes.
    Unpickling this form copies a few blobs, and a look-up is a binary search in the key list
    (a dict index over 100,000 keys took ~30 ms to build in every process). It behaves as the
    source mapping for reads - iteration in the source's order, a ``defaultdict`` included: a
    missing key then gets (and keeps) ``default_factory()``; ``get`` and ``in`` never call
    the factory.
    """

    def __init__(self, source: Mapping[str, Any]) -> None:
        keys = list(source)
        if any("\n" in k for k in keys):
            raise ValueError("PackedMap keys cannot contain a newline")
        order = sorted(range(len(keys)), key=keys.__getitem__)  # sorted position -> source position
        ends = array("q")
        values = []
        pos = 0
        for i in order:
            v = pickle.dumps(source[keys[i]], protocol=pickle.HIGHEST_PROTOCOL)
            values.append(v)
            pos += len(v)
            ends.append(pos)
        at = array("q", bytes(8 * len(keys)))  # source position -> sorted position
        for sorted_pos, i in enumerate(order):
            at[i] = sorted_pos
        self._setup("\n".join(keys[i] for i in order) if keys else None, ends.tobytes(), b"".join(values),
                    getattr(source, "default_factory", None), at.tobytes())

    def _setup(self, keys: str | None, ends: bytes, blob: bytes, factory: Any, source_order: bytes) -> None:
        self._keys, self._ends, self._blob, self.default_factory = keys, ends, blob, factory
        self._source_order = source_order
        self._names: list[str] | None = None
        self._offsets: Any = None
        self._memo: dict[str, Any] = {}
        self._extra: list[str] = []  # keys a default_factory added, in the order they were

    def __reduce__(self) -> tuple[Any, ...]:
        return (_packed_map, (self._keys, self._ends, self._blob, self.default_factory, self._source_order,
                              type(self)))

    def _sorted_names(self) -> list[str]:
        if self._names is None:
            offsets = array("q")
            offsets.frombytes(self._ends)
            self._offsets = offsets  # before the names: a thread that sees the names has them
            self._names = self._keys.split("\n") if self._keys is not None else []
        return self._names

    def keys_with_prefix(self, prefix: str) -> list[str]:
        """The keys that start with ``prefix``, sorted: a binary search, not a scan of them all
        (every ICD-10-PCS code under a table prefix, for instance)."""
        names = self._sorted_names()
        i = j = bisect_left(names, prefix)
        while j < len(names) and names[j].startswith(prefix):
            j += 1
        extra = [k for k in self._extra if k.startswith(prefix)]
        return sorted(names[i:j] + extra) if extra else names[i:j]

    def _where(self, key: object) -> int | None:
        """The sorted position of a stored key (None: not stored)."""
        if not isinstance(key, str):
            return None
        names = self._sorted_names()
        i = bisect_left(names, key)
        return i if i < len(names) and names[i] == key else None

    def __getitem__(self, key: str) -> Any:
        got = self._memo.get(key, _MISSING)
        if got is not _MISSING:
            return got
        i = self._where(key)
        if i is None:
            if self.default_factory is None:
                raise KeyError(key)
            got = self.default_factory()  # as a defaultdict: kept under the key
            self._extra.append(key)
        else:
            start = self._offsets[i - 1] if i else 0
            got = pickle.loads(self._blob[start:self._offsets[i]])
        self._memo[key] = got
        return got

    def __contains__(self, key: object) -> bool:
        return key in self._memo or self._where(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __iter__(self) -> Iterator[str]:
        names = self._sorted_names()
        at = array("q")
        at.frombytes(self._source_order)
        for i in at:
            yield names[i]
        yield from list(self._extra)

    def __len__(self) -> int:  # O(1): ``if mapping:`` and ``len()`` run once per sentence in the matcher
        return len(self._sorted_names()) + len(self._extra)


def _packed_map(keys: str | None, ends: bytes, blob: bytes, factory: Any, source_order: bytes,
                cls: type[PackedMap] = PackedMap) -> PackedMap:
    m = cls.__new__(cls)
    m._setup(keys, ends, blob, factory, source_order)
    return m
