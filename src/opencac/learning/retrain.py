"""Full retrain from all coded history (on demand or on a schedule), then register the new version.

The engine trains through its own command (``opencac train --corpus ... --out ...``, the
engine's CLI contract), run in a child process so a long training never blocks the caller's
interpreter (the workbench, a scheduler). Coded history (finalised encounters, learnt
corpora) is written as one JSONL corpus next to any base corpora.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opencac.errors import ModelFormatError
from opencac.learning.feedback import SYSTEMS, TrainingDocument


def write_history(docs: Sequence[TrainingDocument], path: str | Path) -> Path:
    """Write training documents as a JSONL corpus (``{"id", "text", "codes": [{"code", "system"}]}``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as fh:
        for d in docs:
            codes = [{"code": c, "system": s} for s in SYSTEMS for c in d.codes.get(s, [])]
            fh.write(json.dumps({"id": d.id, "text": d.text, "codes": codes}) + "\n")
    return p


def _opencac_command() -> list[str]:
    exe = Path(sys.executable).with_name("opencac")
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-c", "from opencac.cli.main import app; app()"]


@dataclass(slots=True)
class RetrainReport:
    """What a full retrain did."""

    model: str
    documents: int
    corpora: list[str] = field(default_factory=list)
    seconds: float = 0.0
    registry: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def retrain(
    history: Sequence[TrainingDocument],
    out: str | Path,
    base_corpora: Sequence[str | Path] = (),
    train_args: Sequence[str] = (),
    timeout_s: float | None = None,
) -> RetrainReport:
    """Train a new model from scratch on ``base_corpora`` + coded ``history``.

    Args:
        history: coded documents (finalised encounters, learnt corpora).
        out: the new model directory.
        base_corpora: CodiEsp split dirs / JSONL files trained on as well.
        train_args: extra ``opencac train`` arguments (``--folds``, ``--seed``).
        timeout_s: give up after this long.

    Raises:
        ModelFormatError: training failed (its last error line is quoted) or wrote no manifest.
    """
    out = Path(out)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="opencac-retrain-") as tmp:
        corpora = [str(c) for c in base_corpora]
        if history:
            corpora.append(str(write_history(history, Path(tmp) / "history.jsonl")))
        if not corpora:
            raise ModelFormatError("nothing to train on: no coded history and no base corpus given.")
        cmd = _opencac_command() + ["train"] + [a for c in corpora for a in ("--corpus", c)] + ["--out", str(out)]
        cmd += list(train_args)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or not (out / "manifest.json").is_file():
        last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise ModelFormatError(f"retraining failed (exit {proc.returncode}): {last[0][:300]}")
    return RetrainReport(str(out), len(history), [c for c in corpora if not c.endswith("history.jsonl")],
                         time.perf_counter() - t0)


def retrain_and_register(
    history: Sequence[TrainingDocument],
    out: str | Path,
    registry: Any,
    validation: str | Path | Sequence[TrainingDocument],
    base_corpora: Sequence[str | Path] = (),
    train_args: Sequence[str] = (),
    context: Any = None,
) -> RetrainReport:
    """Retrain, score on the fixed validation set, register (promoted only when not worse).

    Args:
        registry: a :class:`~opencac.learning.registry.ModelRegistry`.
        validation: the fixed validation corpus.
        context: encounter context for validation coding.
    """
    from opencac.learning.evaluation import evaluate_model

    rep = retrain(history, out, base_corpora, train_args)
    metrics, vhash = evaluate_model(out, validation, context)
    prod = registry.production()
    mv, promoted = registry.register(out, metrics, validation_hash=vhash, parent=prod.version if prod else None,
                                     by="retrain")
    rep.registry = {"version": mv.version, "promoted": promoted, "metrics": mv.metrics, "notes": mv.notes}
    return rep
