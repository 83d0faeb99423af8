"""A read-mostly ``str``-keyed mapping whose values are unpickled one by one on first use.

Large code maps (the MS-DRG groupers' code tables, the knowledge base's ICD-10-CM and
ICD-10-PCS entries) are read by every short process (``opencac code``) that then looks up a
few hundred keys; unpickling them whole dominated those processes' start-up.
"""

from __future__ import annotations

import pickle
from array import array
from collections.abc import Iterator, Mapping
from typing import Any

_MISSING = object()


class PackedMap(Mapping[str, Any]):
    """A read-mostly ``str``-keyed mapping kept as two blobs: the keys as one text and every
    value pickled on its own, decoded when first looked up (then kept, so a value is one object
    for the life of the process, as in the dict it replaces).

    drgpy's grouper holds ~200,000 code entries in dicts of lists, sets and dicts; unpickling
    them took ~0.3 s of every inpatient ``opencac code`` call that groups a handful of codes.
    Unpickling this form copies two blobs. It behaves as the source mapping for reads, a
    ``defaultdict`` included: a missing key then gets (and keeps) ``default_factory()``;
    ``get`` and ``in`` never call the factory.
    """

    def __init__(self, source: Mapping[str, Any]) -> None:
        keys = list(source)
        if any("\n" in k for k in keys):
            raise ValueError("PackedMap keys cannot contain a newline")
        values = [pickle.dumps(source[k], protocol=pickle.HIGHEST_PROTOCOL) for k in keys]
        ends = array("q")
        pos = 0
        for v in values:
            pos += len(v)
            ends.append(pos)
        self._setup("\n".join(keys) if keys else None, ends.tobytes(), b"".join(values),
                    getattr(source, "default_factory", None))

    def _setup(self, keys: str | None, ends: bytes, blob: bytes, factory: Any) -> None:
        self._keys, self._ends, self._blob, self.default_factory = keys, ends, blob, factory
        self._index: dict[str, int] | None = None
        self._offsets: Any = None
        self._memo: dict[str, Any] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_packed_map, (self._keys, self._ends, self._blob, self.default_factory))

    def _where(self, key: object) -> int | None:
        if self._index is None:
            offsets = array("q")
            offsets.frombytes(self._ends)
            self._offsets = offsets  # before the index: a thread that sees the index has them
            names = self._keys.split("\n") if self._keys is not None else []
            self._index = {k: i for i, k in enumerate(names)}
        return self._index.get(key) if isinstance(key, str) else None

    def __getitem__(self, key: str) -> Any:
        got = self._memo.get(key, _MISSING)
        if got is not _MISSING:
            return got
        i = self._where(key)
        if i is None:
            if self.default_factory is None:
                raise KeyError(key)
            got = self.default_factory()  # as a defaultdict: kept under the key
        else:
            start = self._offsets[i - 1] if i else 0
            got = pickle.loads(self._blob[start:self._offsets[i]])
        self._memo[key] = got
        return got

    def __contains__(self, key: object) -> bool:
        return key in self._memo or self._where(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def _added(self) -> list[str]:  # keys a default_factory added, in the order they were
        self._where("")
        return [k for k in self._memo if k not in self._index]  # type: ignore[operator]

    def __iter__(self) -> Iterator[str]:
        self._where("")
        yield from self._index  # type: ignore[misc]
        yield from self._added()

    def __len__(self) -> int:
        self._where("")
        return len(self._index) + len(self._added())  # type: ignore[arg-type]


def _packed_map(keys: str | None, ends: bytes, blob: bytes, factory: Any) -> PackedMap:
    m = PackedMap.__new__(PackedMap)
    m._setup(keys, ends, blob, factory)
    return m
