"""Registry: register, auto-promote, no auto-promotion when worse, promote/force, rollback, compare."""

from __future__ import annotations

import json

import pytest

from opencac.errors import PromotionRefusedError, RegistryError
from opencac.learning import ModelRegistry


def _model(tmp_path, name: str, hash_: str = "h1"):
    d = tmp_path / name
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"name": name, "training_data_hash": hash_,
                                                  "codeset": {"icd10cm": "FY2026", "icd10pcs": "FY2026"}}))
    (d / "weights.bin").write_bytes(b"\x00\x01")
    return d


def test_lifecycle(tmp_path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    assert reg.list() == [] and reg.production() is None
    v1, p1 = reg.register(_model(tmp_path, "a"), {"map": 0.50, "ece": 0.10}, validation_hash="val")
    assert (v1.version, p1, v1.status) == ("v0001", True, "production")
    assert (tmp_path / "reg" / "versions" / "v0001" / "weights.bin").is_file()
    assert v1.training_data_hash == "h1" and v1.codeset_versions["icd10cm"] == "FY2026"

    # worse on validation: registered, not promoted, with the reason noted
    v2, p2 = reg.register(_model(tmp_path, "b", "h2"), {"map": 0.45}, validation_hash="val", parent="v0001")
    assert not p2 and v2.status == "candidate"
    assert "worse than production v0001" in v2.notes[0]
    assert reg.production().version == "v0001"
    with pytest.raises(PromotionRefusedError, match="0.4500 is worse"):
        reg.promote("v0002")

    # better: promoted automatically; the old one is retired
    v3, p3 = reg.register(_model(tmp_path, "c", "h3"), {"map": 0.55}, validation_hash="val")
    assert p3 and reg.production().version == "v0003"
    assert reg.get("v0001").status == "retired"

    # forced promotion of the worse one is recorded as forced
    reg.promote("v0002", force=True, by="admin")
    assert reg.production().version == "v0002"
    assert reg.history()[-1]["forced"] is True and reg.history()[-1]["by"] == "admin"

    # rollback walks back through production history
    assert reg.rollback().version == "v0003"
    assert reg.rollback().version == "v0001"
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()

    cmp = reg.compare("v0001", "v0003")
    assert cmp["metrics"]["map"]["delta"] == pytest.approx(0.05)
    assert cmp["metrics"]["map"]["better"] is True
    assert cmp["same_validation_set"] and not cmp["same_training_data"]


def test_different_validation_set_is_not_auto_promoted(tmp_path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    reg.register(_model(tmp_path, "a"), {"map": 0.5}, validation_hash="val-1")
    v2, promoted = reg.register(_model(tmp_path, "b"), {"map": 0.9}, validation_hash="val-2")
    assert not promoted and "different validation set" in v2.notes[0]


def test_missing_metric_is_not_auto_promoted(tmp_path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    reg.register(_model(tmp_path, "a"), {"map": 0.5})
    v2, promoted = reg.register(_model(tmp_path, "b"), {})
    assert not promoted and "no 'map' metric" in v2.notes[0]


def test_lower_is_better_metric(tmp_path) -> None:
    reg = ModelRegistry(tmp_path / "reg", primary_metric="ece")
    reg.register(_model(tmp_path, "a"), {"ece": 0.05})
    _, worse = reg.register(_model(tmp_path, "b"), {"ece": 0.08})
    _, better = reg.register(_model(tmp_path, "c"), {"ece": 0.03})
    assert (worse, better) == (False, True)


def test_errors(tmp_path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    with pytest.raises(RegistryError, match="does not exist"):
        reg.register(tmp_path / "nope")
    reg.register(_model(tmp_path, "a"), {"map": 0.5})
    with pytest.raises(RegistryError, match="no model version 'v0009'"):
        reg.get("v0009")
    (tmp_path / "reg" / "registry.json").write_text("{oops")
    with pytest.raises(RegistryError, match="not valid JSON"):
        reg.list()


def test_retrain_runs_the_training_command_and_reports_failure(tmp_path, monkeypatch) -> None:
    import sys

    from opencac.errors import ModelFormatError
    from opencac.learning import retrain as rt
    from opencac.learning.feedback import TrainingDocument

    # a stand-in `opencac` that records its arguments and writes a manifest for `train --out DIR`
    script = tmp_path / "fake_opencac.py"
    script.write_text(
        "import json, pathlib, sys\n"
        "args = sys.argv[1:]\n"
        "out = pathlib.Path(args[args.index('--out') + 1])\n"
        "corpora = [args[i + 1] for i, a in enumerate(args) if a == '--corpus']\n"
        "if 'fail' in str(out): print('OC-E203: bad corpus', file=sys.stderr); sys.exit(2)\n"
        "out.mkdir(parents=True)\n"
        "n = sum(1 for _ in open(corpora[-1]))\n"
        "(out / 'manifest.json').write_text(json.dumps({'corpora': corpora, 'history_docs': n}))\n")
    monkeypatch.setattr(rt, "_opencac_command", lambda: [sys.executable, str(script)])
    docs = [TrainingDocument("e1", "note one", {"icd10cm": ["j189"], "icd10pcs": []}),
            TrainingDocument("e2", "note two", {"icd10cm": ["i10"], "icd10pcs": ["bw03zzz"]})]
    rep = rt.retrain(docs, tmp_path / "new", base_corpora=[tmp_path / "base.jsonl"])
    man = json.loads((tmp_path / "new" / "manifest.json").read_text())
    assert man["history_docs"] == 2 and man["corpora"][0].endswith("base.jsonl")
    assert rep.documents == 2 and rep.corpora == [str(tmp_path / "base.jsonl")]
    with pytest.raises(ModelFormatError, match="OC-E203: bad corpus"):
        rt.retrain(docs, tmp_path / "fail")
    with pytest.raises(ModelFormatError, match="nothing to train on"):
        rt.retrain([], tmp_path / "x")
