"""Learning and routing measures on CodiEsp (issue 5).

Trained on CodiEsp train; dev split by sorted doc id into a tuning half (even positions) and a
held-out half (odd positions). Measures, all on the held-out half:

1. code-level recall at precision >= 0.95 for diagnoses (D) and procedures (P), thresholds
   fitted on the tuning half (and the precision they actually reach on the held-out half);
2. expected calibration error before and after calibration (isotonic and Platt, fitted on tuning);
3. the feedback loop: MAP of the model trained on train, of the same model after
   ``opencac learn`` on the tuning half, and of a full retrain on train + tuning half;
4. the time ``opencac learn`` takes to learn 250 documents (all of dev).

Usage::

    .venv/bin/python bench/learning_codiesp.py [--data ../shared/data/codiesp] [--work /tmp/oc-learn-bench]
        [--target 0.95] [--parts routing,learn,retrain,time250] [--base-model DIR] [--out bench/learning_results.json]

``--base-model`` uses an already trained model (on CodiEsp train only) as m0 instead of training one.

Models are trained with ``opencac train`` and learnt with ``opencac learn`` (subprocesses: the
benchmark contract); coding for measurement uses ``opencac.learning.LearnedEngine`` in-process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OPENCAC = [str(REPO / ".venv" / "bin" / "opencac")]
AS_OF = dt.date(2018, 6, 1)


def run(cmd: list[str]) -> float:
    """Run a command, echo it, return its wall time (raises on failure)."""
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def write_jsonl(docs: list[Any], path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for d in docs:
            # where coders found each code (CodiEsp's X files carried to the English notes), as JSONL spans
            codes = [{"code": c, "system": s, **({"spans": [list(sp) for sp in d.evidence[s][c]]}
                                                 if d.evidence.get(s, {}).get(c) else {})}
                     for s in ("icd10cm", "icd10pcs") for c in d.codes[s]]
            fh.write(json.dumps({"id": d.id, "text": d.text, "codes": codes}) + "\n")
    return path


def code_all(model: Path, docs: list[Any]) -> tuple[list[Any], float]:
    from opencac.coding.types import EncounterContext
    from opencac.learning.online import LearnedEngine

    eng = LearnedEngine.load(model)
    ctx = EncounterContext(setting="inpatient", date_of_service=AS_OF)
    t0 = time.perf_counter()
    # every candidate, as `opencac predict` ranks them for the CodiEsp MAP
    res = eng.code_many([d.text for d in docs], [d.id for d in docs], ctx, max_suggestions=None)
    return res, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "codiesp")
    ap.add_argument("--work", type=Path, default=Path("/tmp/oc-learn-bench"))
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--variants", action="store_true", help="also measure engine-update-only and overlay-only learning")
    ap.add_argument("--parts", default="routing,learn,retrain,time250",
                    help="comma-separated parts to run (results merge into --out): routing, learn, retrain, time250")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "learning_results.json")
    ap.add_argument("--train-args", default="", help="extra arguments for `opencac train` (space-separated)")
    ap.add_argument("--base-model", type=Path, default=None,
                    help="an existing model trained on CodiEsp train only, used as m0 (skips training it)")
    ap.add_argument("--reuse-retrain", action="store_true",
                    help="reuse WORK/m2_retrain from an earlier run (it is not checked against this code or data)")
    ap.add_argument("--resamples", type=int, default=200,
                    help="random 50/50 splits of the tuning half for the threshold-method comparison")
    args = ap.parse_args()

    from opencac.learning.evaluation import load_documents, metrics_on, split_even_odd

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    train_dir, dev_dir = args.data / "train", args.data / "dev"
    dev = load_documents(dev_dir)
    tune, held = split_even_odd(dev)
    print(f"dev {len(dev)} docs -> tuning {len(tune)} (even), held-out {len(held)} (odd)", flush=True)
    tune_jsonl = write_jsonl(tune, work / "dev_tune.jsonl")
    extra = args.train_args.split() if args.train_args else []
    parts = set(args.parts.split(","))
    out: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    out.update({"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "target": args.target,
                "tuning_docs": len(tune), "held_docs": len(held), "cpu_count": os.cpu_count()})
    out.setdefault("map", {})

    m0 = args.base_model or work / "m0_train"
    out["base_model"] = str(m0)
    if not (m0 / "manifest.json").is_file():
        out["train_seconds"] = run(OPENCAC + ["train", "--corpus", str(train_dir), "--out", str(m0)] + extra)

    out["engine"] = {k: json.loads((m0 / "manifest.json").read_text()).get(k) for k in ("engine_version", "created")}
    res_held, secs = code_all(m0, held)
    out["code_seconds_per_doc"] = secs / len(held)
    base = metrics_on(res_held, held)
    out["map"]["before_learning"] = base
    print("MAP before", base, flush=True)
    if "routing" in parts:
        routing_part(args, out, m0, tune, held, res_held, work)
    if "learn" in parts:
        learn_part(args, out, m0, held, tune_jsonl, work)
    if "retrain" in parts:
        m2 = work / "m2_retrain"
        if not (args.reuse_retrain and (m2 / "manifest.json").is_file()):
            out["retrain_seconds"] = run(OPENCAC + ["train", "--corpus", str(train_dir), "--corpus", str(tune_jsonl),
                                                    "--out", str(m2)] + extra)
        res_m2, _ = code_all(m2, held)
        out["map"]["full_retrain"] = metrics_on(res_m2, held)
        print("MAP retrain", out["map"]["full_retrain"], flush=True)
    if "time250" in parts:
        # learning 250 documents (all of dev), timed end to end (process start, load, learn, save)
        m3 = work / "m3_learn250"
        out["learn_250_seconds"] = run(OPENCAC + ["learn", "--model", str(m0), "--corpus", str(dev_dir),
                                                  "--out", str(m3)])
        man = json.loads((m3 / "learning" / "manifest.json").read_text())
        out["learn_250_library_seconds"] = man["history"][-1]["seconds"]
        out["learn_250_check_seconds"] = man["history"][-1].get("check_seconds")
        out["learn_250_check"] = man["history"][-1].get("check")
        out["learn_250_engine_updated"] = man["history"][-1]["engine_updated"]
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


def routing_part(args: Any, out: dict[str, Any], m0: Path, tune: list[Any], held: list[Any], res_held: list[Any],
                 work: Path) -> None:
    """Thresholds at the target precision and calibration, from the base model's scores."""
    from opencac.routing import Calibrator, expected_calibration_error, fit_thresholds, records_from_results
    from opencac.routing.thresholds import bootstrap_precision, precision_recall_at, threshold_for_precision

    res_tune, _ = code_all(m0, tune)
    gold_t = {s: {d.id: d.codes[s] for d in tune} for s in ("icd10cm", "icd10pcs")}
    gold_h = {s: {d.id: d.codes[s] for d in held} for s in ("icd10cm", "icd10pcs")}
    rec_t, gc_t = records_from_results(res_tune, gold_t)
    rec_h, gc_h = records_from_results(res_held, gold_h)
    fits = fit_thresholds(rec_t, args.target, gc_t, by_setting=False, min_selected=5)  # the default method
    methods = {"default": {}, "empirical": {"method": "empirical"}, "wilson95": {"method": "wilson", "confidence": 0.95},
               "bayes_no_prior": {"method": "bayes", "prior_weight": 0.0}}
    out["routing"] = {}
    out["routing_methods"] = {}
    for system, label in (("icd10cm", "D"), ("icd10pcs", "P")):
        key = f"{system}:*"
        f = fits[key]
        rh = [r for r in rec_h if r.system == system]
        prec, rec, n_sel = precision_recall_at(rh, f.threshold, gc_h.get(key))
        oracle = threshold_for_precision([r.score for r in rh], [r.label for r in rh], args.target,
                                         n_gold=gc_h.get(key), min_selected=5)
        rt = [r for r in rec_t if r.system == system]
        # conservative variant: the Wilson 90 % lower bound of precision must meet the target on tuning
        fc = threshold_for_precision([r.score for r in rt], [r.label for r in rt], args.target,
                                     n_gold=gc_t.get(key), min_selected=5, conservative=True)
        c_prec, c_rec, c_sel = precision_recall_at(rh, fc.threshold, gc_h.get(key))
        ece_before = expected_calibration_error([r.score for r in rh], [r.label for r in rh])
        sel_h = [r for r in rh if r.selected]
        after = {}
        for method in ("isotonic", "platt"):
            cal = Calibrator(method).fit([r.score for r in rt], [r.label for r in rt])
            after[method] = expected_calibration_error(cal.predict([r.score for r in rh]), [r.label for r in rh])
            after[method + "_selected"] = expected_calibration_error(cal.predict([r.score for r in sel_h]),
                                                                     [r.label for r in sel_h])
        out["routing"][label] = {
            "threshold_from_tuning": f.threshold, "tuning_precision": f.precision, "tuning_recall": f.recall,
            "held_precision": prec, "held_recall": rec, "held_codes_above": n_sel, "held_gold_codes": gc_h.get(key),
            "held_oracle_recall_at_target": oracle.recall, "held_oracle_threshold": oracle.threshold,
            "ece_before": ece_before, "ece_after_isotonic": after["isotonic"], "ece_after_platt": after["platt"],
            "held_suggestions": len(rh),
            "conservative_threshold": fc.threshold, "conservative_held_precision": c_prec,
            "conservative_held_recall": c_rec, "conservative_held_codes_above": c_sel,
            "ece_selected_before": expected_calibration_error([r.score for r in sel_h], [r.label for r in sel_h]),
            "ece_selected_after_isotonic": after["isotonic_selected"],
            "ece_selected_after_platt": after["platt_selected"], "held_selected": len(sel_h),
        }
        print(label, json.dumps(out["routing"][label]), flush=True)
        # every threshold method: fitted on the whole tuning half, measured on the held-out half
        # (90 % bootstrap interval over held-out notes), and its broken-promise rate over random
        # 50/50 splits of the tuning half alone (how the default's parameters were chosen)
        for name, kw in methods.items():
            fm = threshold_for_precision([r.score for r in rt], [r.label for r in rt], args.target,
                                         n_gold=gc_t.get(key), min_selected=5, **({"method": "bayes"} | kw))
            p_m, r_m, n_m = precision_recall_at(rh, fm.threshold, gc_h.get(key))
            lo, hi = bootstrap_precision(rh, fm.threshold)
            out["routing_methods"].setdefault(name, {})[label] = {
                "threshold": fm.threshold, "tuning_precision": fm.precision, "tuning_bound": fm.precision_bound,
                "tuning_recall": fm.recall, "held_precision": p_m, "held_precision_ci90": [lo, hi],
                "held_recall": r_m, "held_codes_above": n_m, **resample_tuning(rt, args.target, kw, args.resamples)}
            print(label, name, json.dumps(out["routing_methods"][name][label]), flush=True)

    # reliability diagrams of the held-out half, before and after isotonic calibration (fitted on tuning)
    from opencac.routing import ScoredCode, calibration_report, plot_reliability

    cal_h = []
    for system in ("icd10cm", "icd10pcs"):
        rt = [r for r in rec_t if r.system == system]
        cal = Calibrator("isotonic").fit([r.score for r in rt], [r.label for r in rt])
        for r in rec_h:
            if r.system == system:
                cal_h.append(ScoredCode(r.doc_id, r.code, system, "calibrated", float(cal.predict(r.score)), r.label))
    reports = {f"raw {k}": v for k, v in calibration_report(rec_h, by_setting=False).items()}
    reports.update({f"isotonic {k}": v for k, v in calibration_report(cal_h, by_setting=False).items()})
    out["reliability_png"] = str(plot_reliability(reports, work / "reliability_heldout.png",
                                                  title="CodiEsp dev held-out half"))



def resample_tuning(rt: list[Any], target: float, kw: dict[str, Any], n: int) -> dict[str, float]:
    """Fit on a random half of the tuning notes, measure on the other half, ``n`` times."""
    import random

    from opencac.routing.thresholds import precision_recall_at, threshold_for_precision

    docs = sorted({r.doc_id for r in rt})
    broken = qualified = 0
    recall = 0.0
    for k in range(n):
        fit_docs = set(random.Random(k).sample(docs, len(docs) // 2))
        a = [r for r in rt if r.doc_id in fit_docs]
        b = [r for r in rt if r.doc_id not in fit_docs]
        f = threshold_for_precision([r.score for r in a], [r.label for r in a], target, min_selected=5,
                                    **({"method": "bayes"} | kw))
        if f.threshold is None:
            continue
        qualified += 1
        p, rc, _ = precision_recall_at(b, f.threshold)
        broken += p < target
        recall += rc
    return {"resample_splits": n, "resample_qualified": qualified / n, "resample_broken": broken / n,
            "resample_mean_recall_of_suggested": recall / n}


def learn_part(args: Any, out: dict[str, Any], m0: Path, held: list[Any], tune_jsonl: Path, work: Path) -> None:
    """The feedback loop: `opencac learn` on the tuning half, MAP on the held-out half."""
    from opencac.learning.evaluation import metrics_on

    m1 = work / "m1_learnt"
    out["learn_tuning_seconds"] = run(OPENCAC + ["learn", "--model", str(m0), "--corpus", str(tune_jsonl),
                                                 "--out", str(m1)])
    res_m1, _ = code_all(m1, held)
    learnt = metrics_on(res_m1, held)
    out["map"]["after_learning"] = learnt
    print("MAP after learn", learnt, flush=True)
    man = json.loads((m1 / "learning" / "manifest.json").read_text())
    out["learn_tuning_check"] = man["history"][-1].get("check")
    out["learn_tuning_engine_systems"] = man["history"][-1].get("engine_systems")
    # the update the check declined (or kept): every system updated, no check
    mu = work / "m1_no_check"
    secs = run(OPENCAC + ["learn", "--model", str(m0), "--corpus", str(tune_jsonl), "--out", str(mu), "--no-check"])
    res_u, _ = code_all(mu, held)
    out["map"]["no_check"] = {**metrics_on(res_u, held), "learn_seconds": secs}
    print("MAP no_check", out["map"]["no_check"], flush=True)
    if args.variants:
        # which learning layer does the work: the engine's own update alone, the feedback overlay alone
        for name, flags in (("engine_update_only", ["--no-memory-positives"]), ("overlay_only", ["--overlay-only"])):
            mv = work / f"m1_{name}"
            secs = run(OPENCAC + ["learn", "--model", str(m0), "--corpus", str(tune_jsonl), "--out", str(mv)] + flags)
            res_v, _ = code_all(mv, held)
            out["map"][name] = {**metrics_on(res_v, held), "learn_seconds": secs}
            print("MAP", name, out["map"][name], flush=True)


if __name__ == "__main__":
    sys.exit(main())
