"""Model registry: versions with their manifests; promote, compare, roll back.

Layout of a registry directory::

    registry.json          versions, the production pointer, the promotion history
    versions/v0001/        a copy of each registered model directory

Rule: a new version whose primary metric on the fixed validation set is worse than the
production version's is not promoted automatically (``register(..., auto_promote=True)``
leaves it a candidate, and ``promote`` refuses it unless forced).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opencac.errors import PromotionRefusedError, RegistryError

REGISTRY_FORMAT = "opencac.model-registry.v1"

#: Metrics where lower is better (everything else: higher is better).
LOWER_IS_BETTER = frozenset({"ece", "ece_d", "ece_p", "ece_cm", "ece_pcs", "brier", "seconds"})

PRODUCTION, CANDIDATE, RETIRED = "production", "candidate", "retired"


def default_registry_dir() -> Path:
    """``$OPENCAC_MODEL_REGISTRY``, else the user data dir's ``models/``."""
    env = os.environ.get("OPENCAC_MODEL_REGISTRY")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("opencac")) / "models"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The engine's ``manifest.json`` merged with ``learning/manifest.json`` (under ``learning``)."""
    man: dict[str, Any] = {}
    p = model_dir / "manifest.json"
    if p.is_file():
        try:
            man = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{p} is not valid JSON ({exc.msg}).") from None
    lp = model_dir / "learning" / "manifest.json"
    if lp.is_file():
        try:
            man["learning"] = json.loads(lp.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            man["learning"] = {"error": "unreadable"}
    return man


def _first(d: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        if k in d and d[k] not in (None, ""):
            return d[k]
    return None


@dataclass(slots=True)
class ModelVersion:
    """One registered model version.

    Attributes:
        version: ``v0001``...
        path: where the registry keeps it.
        source: the directory it was registered from.
        created: registration time.
        status: ``production`` | ``candidate`` | ``retired``.
        parent: the version it was learnt from, when known.
        training_data_hash: from the manifest (plus the learning data hash, when learnt).
        codeset_versions: code-set versions from the manifest.
        metrics: metrics on the fixed validation set (``map``, ``map_d``, ``ece``...).
        validation_hash: which validation set the metrics are on.
        notes: free notes (why it was not promoted...).
    """

    version: str
    path: str
    source: str = ""
    created: str = ""
    status: str = CANDIDATE
    parent: str | None = None
    training_data_hash: str | None = None
    codeset_versions: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    validation_hash: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_better(metric: str, new: float, old: float, tolerance: float = 0.0) -> bool:
    """Whether ``new`` is at least as good as ``old`` on ``metric`` (within ``tolerance``)."""
    if metric in LOWER_IS_BETTER:
        return new <= old + tolerance
    return new >= old - tolerance


class ModelRegistry:
    """Versions, promotion and rollback of coding models.

    Args:
        root: the registry directory (created on first write).
        primary_metric: the validation metric that decides promotion (default ``map``).
        tolerance: how much worse the primary metric may be and still count as not worse.
    """

    def __init__(self, root: str | Path | None = None, primary_metric: str = "map", tolerance: float = 0.0) -> None:
        self.root = Path(root) if root else default_registry_dir()
        self.primary_metric = primary_metric
        self.tolerance = tolerance

    # -- state ------------------------------------------------------------------------
    @property
    def _file(self) -> Path:
        return self.root / "registry.json"

    def _load(self) -> dict[str, Any]:
        if not self._file.is_file():
            return {"format": REGISTRY_FORMAT, "versions": {}, "production": None, "promotions": []}
        try:
            data = json.loads(self._file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{self._file} is not valid JSON ({exc.msg}).") from None
        if data.get("format") != REGISTRY_FORMAT:
            raise RegistryError(f"{self._file} is not an OpenCAC model registry (format {data.get('format')!r}).")
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(self._file)

    def list(self) -> list[ModelVersion]:
        """All versions, oldest first."""
        return [ModelVersion(**v) for _, v in sorted(self._load()["versions"].items())]

    def get(self, version: str) -> ModelVersion:
        """One version.

        Raises:
            RegistryError: unknown version (the known ones are listed).
        """
        versions = self._load()["versions"]
        if version not in versions:
            raise RegistryError(f"no model version {version!r} in {self.root}.", options=sorted(versions))
        return ModelVersion(**versions[version])

    def production(self) -> ModelVersion | None:
        """The production version, if any."""
        data = self._load()
        p = data.get("production")
        return ModelVersion(**data["versions"][p]) if p else None

    def history(self) -> list[dict[str, Any]]:
        """Promotions and rollbacks, oldest first."""
        return list(self._load()["promotions"])

    # -- changes ----------------------------------------------------------------------
    def register(
        self,
        model_dir: str | Path,
        metrics: Mapping[str, float] | None = None,
        validation_hash: str | None = None,
        parent: str | None = None,
        auto_promote: bool = True,
        copy: bool = True,
        by: str = "",
    ) -> tuple[ModelVersion, bool]:
        """Register a model directory as a new version.

        Args:
            model_dir: the model directory (with ``manifest.json``).
            metrics: its metrics on the fixed validation set.
            validation_hash: the validation set's hash (metrics are comparable only on the same set).
            parent: the version it was learnt from.
            auto_promote: promote it when it is not worse than production on the primary metric.
            copy: copy the directory into the registry (else reference it in place).
            by: who registered it.

        Returns:
            ``(version, promoted)``.

        Raises:
            RegistryError: the directory is missing.
        """
        src = Path(model_dir)
        if not src.is_dir():
            raise RegistryError(f"model directory {str(src)!r} does not exist.")
        man = read_manifest(src)
        data = self._load()
        n = max((int(k[1:]) for k in data["versions"]), default=0) + 1
        version = f"v{n:04d}"
        dest = self.root / "versions" / version
        if copy:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, dest)
        learning = man.get("learning") or {}
        hist = learning.get("history") or []
        td = man.get("training_data") if isinstance(man.get("training_data"), dict) else {}
        train_hash = _first(man, "training_data_hash", "data_hash", "train_hash", "corpus_hash") or _first(
            td, "sha256", "hash")
        if hist:
            train_hash = f"{train_hash or ''}+" + ",".join(h.get("data_hash", "")[:12] for h in hist)
        mv = ModelVersion(
            version=version,
            path=str(dest if copy else src.resolve()),
            source=str(src.resolve()),
            created=_now(),
            parent=parent,
            training_data_hash=train_hash,
            codeset_versions=dict(_first(man, "codeset_versions", "codeset", "code_sets", "codesets") or {}),
            metrics={k: float(v) for k, v in (metrics or {}).items()},
            validation_hash=validation_hash,
        )
        data["versions"][version] = mv.to_dict()
        self._save(data)
        promoted = False
        if auto_promote:
            ok, why = self._promotable(mv)
            if ok:
                self.promote(version, by=by or "auto")
                promoted = True
            else:
                self._note(version, f"not promoted automatically: {why}")
        return self.get(version), promoted

    def _note(self, version: str, note: str) -> None:
        data = self._load()
        data["versions"][version]["notes"].append(note)
        self._save(data)

    def _promotable(self, mv: ModelVersion) -> tuple[bool, str]:
        prod = self.production()
        if prod is None or prod.version == mv.version:
            return True, "no production version"
        m = self.primary_metric
        if m not in mv.metrics:
            return False, f"it has no {m!r} metric on the validation set"
        if m not in prod.metrics:
            return True, f"production has no {m!r} metric"
        if prod.validation_hash and mv.validation_hash and prod.validation_hash != mv.validation_hash:
            return False, "its metrics are on a different validation set than production's"
        if not is_better(m, mv.metrics[m], prod.metrics[m], self.tolerance):
            return False, f"{m} {mv.metrics[m]:.4f} is worse than production {prod.version}'s {prod.metrics[m]:.4f}"
        return True, f"{m} {mv.metrics[m]:.4f} >= production {prod.metrics[m]:.4f}"

    def promote(self, version: str, force: bool = False, by: str = "") -> ModelVersion:
        """Make ``version`` the production version.

        Raises:
            RegistryError: unknown version.
            PromotionRefusedError: it scores worse than production on validation (use ``force``).
        """
        mv = self.get(version)
        ok, why = self._promotable(mv)
        if not ok and not force:
            raise PromotionRefusedError(f"{version} was not promoted: {why} (use --force to override).")
        data = self._load()
        prev = data.get("production")
        if prev and prev != version:
            data["versions"][prev]["status"] = RETIRED
        data["versions"][version]["status"] = PRODUCTION
        data["production"] = version
        data["promotions"].append(
            {"action": "promote", "version": version, "previous": prev, "at": _now(), "by": by, "forced": bool(force and not ok),
             "why": why}
        )
        self._save(data)
        return self.get(version)

    def rollback(self, by: str = "") -> ModelVersion:
        """Return production to the version that was in production before the current one.

        Raises:
            RegistryError: nothing to roll back to.
        """
        data = self._load()
        cur = data.get("production")
        # walk the history back: the production version before the current one took over
        stack: list[str] = []
        for ev in data["promotions"]:
            if ev["action"] == "promote":
                stack.append(ev["version"])
            elif ev["action"] == "rollback" and stack:
                stack.pop()
        if cur is None or len(stack) < 2:
            raise RegistryError("nothing to roll back to: fewer than two versions have been in production.")
        target = stack[-2]
        data["versions"][cur]["status"] = RETIRED
        data["versions"][target]["status"] = PRODUCTION
        data["production"] = target
        data["promotions"].append({"action": "rollback", "version": target, "previous": cur, "at": _now(), "by": by})
        self._save(data)
        return self.get(target)

    def compare(self, a: str, b: str) -> dict[str, Any]:
        """Compare two versions: metrics side by side with ``b - a`` deltas, data and code-set changes."""
        va, vb = self.get(a), self.get(b)
        metrics = {}
        for k in sorted(set(va.metrics) | set(vb.metrics)):
            x, y = va.metrics.get(k), vb.metrics.get(k)
            metrics[k] = {
                a: x, b: y, "delta": (y - x) if x is not None and y is not None else None,
                "better": (is_better(k, y, x) if x is not None and y is not None else None),
            }
        return {
            "a": va.to_dict(),
            "b": vb.to_dict(),
            "metrics": metrics,
            "same_validation_set": va.validation_hash == vb.validation_hash,
            "same_training_data": va.training_data_hash == vb.training_data_hash,
            "codeset_changes": {
                k: (va.codeset_versions.get(k), vb.codeset_versions.get(k))
                for k in set(va.codeset_versions) | set(vb.codeset_versions)
                if va.codeset_versions.get(k) != vb.codeset_versions.get(k)
            },
        }
