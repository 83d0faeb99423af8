"""``opencac code / train / predict / evaluate``: error paths give one line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from opencac.cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def _one_line_error(result, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code != 0
    out = (result.stderr if hasattr(result, "stderr") and result.stderr else result.output).strip()
    assert "Traceback" not in result.output
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    assert needle.lower() in lines[0].lower(), lines[0]


def test_code_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.txt"
    p.write_text("   \n", encoding="utf-8")
    _one_line_error(runner.invoke(app, ["code", str(p)]), "empty")


def test_code_binary_file(tmp_path: Path) -> None:
    p = tmp_path / "bin.txt"
    p.write_bytes(b"\x00\x01\x02PNG")
    _one_line_error(runner.invoke(app, ["code", str(p)]), "binary")


def test_code_non_utf8(tmp_path: Path) -> None:
    p = tmp_path / "latin1.txt"
    p.write_bytes("Paciente con neumonía".encode("latin-1"))
    _one_line_error(runner.invoke(app, ["code", str(p)]), "UTF-8")


def test_code_oversized(tmp_path: Path) -> None:
    p = tmp_path / "big.txt"
    p.write_bytes(b"fever and cough. " * (20 * 1024 * 1024 // 17 + 1))  # ~20 MB
    _one_line_error(runner.invoke(app, ["code", str(p)]), "bytes")


def test_code_missing_file(tmp_path: Path) -> None:
    _one_line_error(runner.invoke(app, ["code", str(tmp_path / "nope.txt")]), "does not exist")


def test_code_missing_model(tmp_path: Path) -> None:
    p = tmp_path / "n.txt"
    p.write_text("Fever.", encoding="utf-8")
    _one_line_error(runner.invoke(app, ["code", str(p), "--model", str(tmp_path / "no-model")]), "OC-E201")


def test_code_bad_options(tmp_path: Path) -> None:
    p = tmp_path / "n.txt"
    p.write_text("Fever.", encoding="utf-8")
    _one_line_error(runner.invoke(app, ["code", str(p), "--setting", "moon"]), "setting")
    _one_line_error(runner.invoke(app, ["code", str(p), "--date-of-service", "yesterday"]), "YYYY-MM-DD")


def test_predict_unknown_system(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("Fever.", encoding="utf-8")
    r = runner.invoke(app, ["predict", "--model", "none", "--input", str(tmp_path / "notes"), "--system", "icd9",
                            "--out", str(tmp_path / "p.tsv")])
    _one_line_error(r, "icd10cm, icd10pcs")


def test_predict_missing_model_and_input(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("Fever.", encoding="utf-8")
    r = runner.invoke(app, ["predict", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "notes"),
                            "--system", "icd10cm", "--out", str(tmp_path / "p.tsv")])
    _one_line_error(r, "OC-E201")
    r = runner.invoke(app, ["predict", "--model", "none", "--input", str(tmp_path / "missing"),
                            "--system", "icd10cm", "--out", str(tmp_path / "p.tsv")])
    _one_line_error(r, "does not exist")


def test_train_bad_corpus(tmp_path: Path) -> None:
    r = runner.invoke(app, ["train", "--corpus", str(tmp_path / "nothing"), "--out", str(tmp_path / "m")])
    _one_line_error(r, "does not exist")


def test_evaluate(tmp_path: Path) -> None:
    g = tmp_path / "g.tsv"
    g.write_text("d1\tE11.9\nd1\tI10\nd2\tR52\n", encoding="utf-8")
    p = tmp_path / "p.tsv"
    p.write_text("d1\tI10\nd1\tX99.9\nd1\tE11.9\nd2\tR52\n", encoding="utf-8")
    r = runner.invoke(app, ["evaluate", "--gold", str(g), "--pred", str(p), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    r = runner.invoke(app, ["evaluate", "--gold", str(g), "--pred", str(p)])
    assert r.exit_code == 0 and "MAP 0.9167" in r.output and "per chapter" in r.output
    _one_line_error(runner.invoke(app, ["evaluate", "--gold", str(tmp_path / "x.tsv"), "--pred", str(p)]),
                    "does not exist")
    # a predictions or gold file that is binary, not UTF-8, empty or a folder: one line, no traceback
    binary = tmp_path / "b.tsv"
    binary.write_bytes(b"d1\tI10\n\x00\x01\x02")
    latin = tmp_path / "l.tsv"
    latin.write_bytes("d1\tI10\nd2\tR52 \u00e9\n".encode("latin-1"))
    empty = tmp_path / "e.tsv"
    empty.write_text("\n \n", encoding="utf-8")
    _one_line_error(runner.invoke(app, ["evaluate", "--gold", str(g), "--pred", str(binary)]), "binary")
    _one_line_error(runner.invoke(app, ["evaluate", "--gold", str(g), "--pred", str(latin)]), "not valid UTF-8")
    _one_line_error(runner.invoke(app, ["evaluate", "--gold", str(empty), "--pred", str(p)]),
                    "gold file e.tsv is empty")
    _one_line_error(runner.invoke(app, ["evaluate", "--gold", str(g), "--pred", str(tmp_path)]), "is not a file")


def test_code_and_predict_out_of_the_box(tmp_path: Path) -> None:
    note = REPO / "examples" / "pneumonia_admission.txt"
    r = runner.invoke(app, ["code", str(note), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["model"] == "dictionary-only"
    assert any(d["code"] == "J96.01" and d["selected"] for d in data["diagnoses"])
    r = runner.invoke(app, ["code", str(note)])
    assert r.exit_code == 0 and "Diagnoses (ICD-10-CM)" in r.output
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "case-1.txt").write_text(note.read_text(encoding="utf-8"), encoding="utf-8")
    (notes / "case-2.txt").write_text("Chest X-ray showed pneumonia.", encoding="utf-8")
    out = tmp_path / "pred.tsv"
    r = runner.invoke(app, ["predict", "--model", "none", "--input", str(notes), "--system", "icd10pcs",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = [ln.split("\t") for ln in out.read_text(encoding="utf-8").splitlines()]
    assert rows and all(len(x) == 2 for x in rows)
    assert {x[0] for x in rows} <= {"case-1", "case-2"}
    assert ["case-2", "BW03"] in rows or ["case-2", "BW03ZZZ"] in rows


def test_code_inpatient_drg_crosscheck_only_when_asked() -> None:
    note = REPO / "examples" / "pneumonia_admission.txt"
    args = ["code", str(note), "--json", "--setting", "inpatient", "--discharge-date", "2025-11-03"]
    plain = json.loads(runner.invoke(app, args).stdout)["rules"]["drg"]
    asked = json.loads(runner.invoke(app, [*args, "--drg-crosscheck"]).stdout)["rules"]["drg"]
    assert plain["drg"] == asked["drg"] and plain["weight"] == asked["weight"] and plain["weight"] > 0
    assert plain["crosscheck"] is None
    assert asked["crosscheck"]["drg"] and isinstance(asked["crosscheck"]["agrees"], bool)
    r = runner.invoke(app, ["code", str(note), "--setting", "inpatient", "--drg-crosscheck"])
    assert r.exit_code == 0 and "cross-check" in r.output


@pytest.mark.slow
def test_train_compiles_the_ranker_unless_told_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opencac.coding.forest import compiler_available

    if not compiler_available():
        pytest.skip("no C compiler on this machine: the ranker stays on LightGBM")
    corpus = tmp_path / "coded.jsonl"
    rows = []
    for i in range(24):  # two note patterns, as tests/coding's toy corpus
        if i % 2:
            rows.append({"id": f"d{i}", "text": f"Case {i}. Fever and cough. Chest X-ray showed pneumonia of the right "
                         "lower lobe. Treated with antibiotics.", "codes": ["J18.9", "R50.9", "BW03ZZZ"]})
        else:
            rows.append({"id": f"d{i}", "text": f"Case {i}. Abdominal pain in the right iliac fossa. Ultrasound showed "
                         "acute appendicitis. Laparoscopic appendectomy.", "codes": ["K35.9", "R10.31", "0DTJ4ZZ"]})
    corpus.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    monkeypatch.setenv("OPENCAC_CACHE_DIR", str(tmp_path / "cache"))
    forest = tmp_path / "cache" / "engine" / "forest"
    r = runner.invoke(app, ["train", "--corpus", str(corpus), "--out", str(tmp_path / "m0"), "--folds", "3",
                            "--no-compile"])
    assert r.exit_code == 0, r.output
    assert "compiled ranker ready" not in r.output and not list(forest.glob("*"))
    # one note on a model that is not compiled: scored in NumPy, as LightGBM scores it, and
    # neither compiled nor read into LightGBM by the way
    note = tmp_path / "note.txt"
    note.write_text("Fever and cough. Chest X-ray showed pneumonia of the right lower lobe.", encoding="utf-8")
    r = runner.invoke(app, ["code", str(note), "--model", str(tmp_path / "m0"), "--json"])
    assert r.exit_code == 0, r.output
    monkeypatch.setenv("OPENCAC_COMPILED_RANKER", "0")  # LightGBM only
    r_lgb = runner.invoke(app, ["code", str(note), "--model", str(tmp_path / "m0"), "--json"])
    monkeypatch.delenv("OPENCAC_COMPILED_RANKER")
    assert r_lgb.exit_code == 0 and json.loads(r.output) == json.loads(r_lgb.output)
    assert {"J18.9", "R50.9"} <= {s["code"] for s in json.loads(r.output)["diagnoses"][:3]}
    assert not list(forest.glob("*"))
    from opencac.coding.candidates import FEATURES
    from opencac.coding.model import EngineModel

    m0 = EngineModel.load(tmp_path / "m0")
    rows = np.random.RandomState(0).rand(7, len(FEATURES))
    assert m0.rank("icd10cm", rows).shape == (7,)
    assert m0.__dict__["_numpy_"]["icd10cm"] and not dict.keys(m0.rankers_)  # no booster read by LightGBM
    assert np.array_equal(m0.rank("icd10cm", rows), np.mean([b.predict(rows, num_threads=1)
                                                              for b in m0.rankers_["icd10cm"]], axis=0))
    r = runner.invoke(app, ["train", "--corpus", str(corpus), "--out", str(tmp_path / "m1"), "--folds", "3"])
    assert r.exit_code == 0, r.output
    assert "compiled ranker ready on this machine: icd10cm, icd10pcs" in r.output
    assert list(forest.glob("*"))


def test_deferred_import_loads_on_first_use_only() -> None:
    """The console entry defers numpy.f2py, which scipy.sparse's array-API shim would import
    on every start; a real use still gets the module."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from opencac.cli.main import defer_import\n"
        "assert defer_import('numpy.f2py')\n"
        "assert not defer_import('numpy.f2py')  # already registered\n"
        "assert not defer_import('opencac.no_such_module')\n"
        "import scipy.sparse\n"
        "assert not [k for k in sys.modules if k.startswith('numpy.f2py.')], 'f2py ran on import'\n"
        "import numpy\n"
        "assert callable(numpy.f2py.run_main)\n"
        "assert [k for k in sys.modules if k.startswith('numpy.f2py.')]\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_one_blas_thread_limits_the_blas() -> None:
    # in a child process: the limit is process-wide
    import os
    import subprocess
    import sys

    probe = ("import numpy, json\n"
             "from threadpoolctl import threadpool_info\n"
             "from opencac.codesets.config import one_blas_thread\n"
             "before = [d['num_threads'] for d in threadpool_info() if d['user_api'] == 'blas']\n"
             "done = one_blas_thread()\n"
             "after = [d['num_threads'] for d in threadpool_info() if d['user_api'] == 'blas']\n"
             "print(json.dumps([done, before, after]))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"})
    done, before, after = json.loads(out.stdout)
    assert done is True
    assert before and all(n == 2 for n in before)
    assert after == [1] * len(before)


def test_predict_codes_with_one_blas_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import opencac.codesets.config as config

    calls: list[int] = []
    monkeypatch.setattr(config, "one_blas_thread", lambda: calls.append(1) or True)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("Chest X-ray showed pneumonia.", encoding="utf-8")
    r = runner.invoke(app, ["predict", "--model", "none", "--input", str(tmp_path / "notes"), "--system", "icd10cm",
                            "--out", str(tmp_path / "p.tsv")])
    assert r.exit_code == 0, r.output
    assert calls == [1]
