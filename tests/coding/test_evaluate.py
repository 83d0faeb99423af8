"""CodiEsp MAP and P/R/F1 on hand-computed toy cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencac.coding.evaluate import (Prediction, average_precision, chapter_of, evaluate, mean_average_precision,
                                     read_gold, read_predictions)
from opencac.errors import InputError


def test_average_precision_hand_computed() -> None:
    # gold {a, c}; ranked a, b, c -> (1/1 + 2/3) / 2
    assert average_precision(["a", "b", "c"], {"a", "c"}) == pytest.approx((1 + 2 / 3) / 2)
    # nothing relevant retrieved
    assert average_precision(["x", "y"], {"a"}) == 0.0
    # relevant item missing from the list still counts in |gold|
    assert average_precision(["a"], {"a", "b"}) == pytest.approx(0.5)
    # duplicates keep the first rank: a, a, c == a, c -> (1 + 2/2) / 2
    assert average_precision(["a", "a", "c"], {"a", "c"}) == pytest.approx(1.0)
    assert average_precision([], {"a"}) == 0.0
    assert average_precision(["a"], set()) == 0.0


def test_map_over_gold_documents_only() -> None:
    gold = {"d1": ["E11.9", "i10"], "d2": ["R52"]}
    pred = {"d1": ["e11.9", "x99", "I10"], "d3": ["r52"]}  # d2 missing -> 0, d3 ignored
    expected = ((1 + 2 / 3) / 2 + 0.0) / 2
    assert mean_average_precision(gold, pred) == pytest.approx(expected)


def test_map_dots_and_case_ignored() -> None:
    assert mean_average_precision({"d": ["n44.8"]}, {"d": ["N448"]}) == pytest.approx(1.0)


def test_map_valid_codes_filter_moves_ranks() -> None:
    gold = {"d": ["a01"]}
    pred = {"d": ["zzz", "a01"]}
    assert mean_average_precision(gold, pred) == pytest.approx(0.5)
    assert mean_average_precision(gold, pred, valid_codes={"a01"}) == pytest.approx(1.0)


def test_map_empty_gold_is_error() -> None:
    with pytest.raises(InputError):
        mean_average_precision({}, {})


def test_evaluate_selection_rules() -> None:
    gold = {"d1": ["a01", "b02"], "d2": ["c03"]}
    # top-k: k = round(3/2) = 2
    pred = {"d1": [Prediction("a01"), Prediction("x"), Prediction("b02")], "d2": [Prediction("c03")]}
    rep = evaluate(gold, pred)
    assert rep.selection.startswith("top-2")
    assert (rep.precision, rep.recall) == pytest.approx((2 / 3, 2 / 3))
    # confidence threshold
    pred = {"d1": [Prediction("a01", 0.9), Prediction("x", 0.6), Prediction("b02", 0.2)],
            "d2": [Prediction("c03", 0.7)]}
    rep = evaluate(gold, pred, threshold=0.5)
    assert rep.selection.startswith("confidence")
    assert rep.precision == pytest.approx(2 / 3)
    assert rep.recall == pytest.approx(2 / 3)
    # selected column wins
    pred = {"d1": [Prediction("a01", 0.9, True), Prediction("x", 0.6, False), Prediction("b02", 0.2, True)],
            "d2": [Prediction("c03", 0.7, True)]}
    rep = evaluate(gold, pred)
    assert rep.selection == "selected column"
    assert (rep.precision, rep.recall, rep.f1) == pytest.approx((1.0, 1.0, 1.0))


def test_chapters() -> None:
    assert chapter_of("E11.9").startswith("4 ")
    assert chapter_of("r52").startswith("18 ")
    assert chapter_of("S72.001A").startswith("19 ")
    assert chapter_of("bw03zzz").startswith("B ")
    assert chapter_of("0DTJ4ZZ").startswith("0 ")
    assert chapter_of("bw20").startswith("B ")


def test_chapters_of_canonical_cm_codes_that_look_like_pcs_sections() -> None:
    """A gold file read into canonical codes loses the dots: "b999" is B99.9 in a diagnosis file
    (chapter 1), not the imaging section B; the file's other codes tell which it is."""
    from opencac.coding.evaluate import code_system

    cm = ["b999", "c679", "d494", "h5213", "g40409", "f17210", "r52"]
    assert code_system(cm) == "icd10cm"
    assert code_system(["bw03zzz", "0dtj4zz", "bw20"]) == "icd10pcs"
    assert code_system(["b246zz4", "4a02x4z"]) == "icd10pcs"  # one code starting with a digit is enough
    assert code_system([]) is None
    assert [chapter_of(c, "icd10cm").split()[0] for c in cm] == ["1", "2", "2", "7", "6", "5", "18"]
    report = evaluate({"d1": ["B99.9", "C67.9"]}, {"d1": [Prediction("b999", 0.9), Prediction("c679", 0.8)]})
    assert set(report.chapters) == {"1 Infectious", "2 Neoplasms"}
    report = evaluate({"d1": ["BW03ZZZ", "0DTJ4ZZ"]}, {"d1": [Prediction("bw03zzz", 0.9)]})
    assert set(report.chapters) == {"B Imaging", "0 Medical/Surgical"}


def test_read_files(tmp_path: Path) -> None:
    g = tmp_path / "gold.tsv"
    g.write_text("d1\tE11.9\nd1\te11.9\nd1\ti10\n", encoding="utf-8")
    p = tmp_path / "pred.tsv"
    p.write_text("d1\tI10\t0.9\t1\nd1\tE11.9\t0.4\t0\n", encoding="utf-8")
    assert read_gold(g) == {"d1": ["e119", "i10"]}
    preds = read_predictions(p)
    assert [(x.code, x.confidence, x.selected) for x in preds["d1"]] == [("i10", 0.9, True), ("e119", 0.4, False)]
    bad = tmp_path / "bad.tsv"
    bad.write_text("onlyone\n", encoding="utf-8")
    with pytest.raises(InputError):
        read_gold(bad)
    with pytest.raises(InputError):
        read_predictions(tmp_path / "missing.tsv")
