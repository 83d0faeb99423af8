#!/usr/bin/env python
"""Engine benchmark on CodiEsp (English): train on train, measure on dev.

Runs the real CLI commands (``opencac train / predict / evaluate``) and times them, plus
the out-of-the-box (dictionary-only) engine and single-note ``opencac code`` latency.

    OPENCAC_CM_INDEX_DIR=../shared/data/icd10cm-2025-index \\
        .venv/bin/python bench/engine_codiesp.py --data ../shared/data/codiesp --work /tmp/engine-bench

Prints a JSON summary (and writes it to WORK/summary.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

OPENCAC = str(Path(sys.executable).with_name("opencac"))


def run(cmd: list[str]) -> tuple[float, float, str]:
    """Run a command; return (wall seconds, peak RSS MiB of children so far, stdout)."""
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, rss, p.stdout


def parse_eval(out: str) -> dict[str, float]:
    m = re.search(r"MAP ([0-9.]+)", out)
    prf = re.search(r"micro P ([0-9.]+)\s+R ([0-9.]+)\s+F1 ([0-9.]+)", out)
    return {"map": float(m.group(1)) if m else float("nan"),
            "p": float(prf.group(1)) if prf else float("nan"), "r": float(prf.group(2)) if prf else float("nan"),
            "f1": float(prf.group(3)) if prf else float("nan")}


def dev_ece(gold_path: Path, pred_path: Path) -> dict[str, float]:
    """ECE of the confidences of every predicted row against the dev gold (10 bins)."""
    from opencac.coding.evaluate import read_gold, read_predictions
    from opencac.coding.ranker import expected_calibration_error

    gold = {d: set(c) for d, c in read_gold(gold_path).items()}
    conf, lab = [], []
    for doc, preds in read_predictions(pred_path).items():
        for p in preds:
            conf.append(p.confidence or 0.0)
            lab.append(float(p.code in gold.get(doc, set())))
    import numpy as np

    c, y = np.array(conf), np.array(lab)
    top = c >= 0.1
    return {"ece_all_rows": round(expected_calibration_error(c, y), 4),
            "ece_conf_ge_0.1": round(expected_calibration_error(c[top], y[top]), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/codiesp"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/engine-bench"))
    ap.add_argument("--skip-train", action="store_true", help="reuse WORK/model")
    ap.add_argument("--skip-oob", action="store_true", help="skip the dictionary-only run")
    ap.add_argument("--unlabeled", action="store_true", help="train with --unlabeled DATA/background")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    model = args.work / "model"
    dev = args.data / "dev"
    gold = {"icd10cm": dev / "devD.tsv", "icd10pcs": dev / "devP.tsv"}
    from _machine import machine_reference

    summary: dict[str, object] = {"python": sys.version.split()[0], "cpus": os.cpu_count(),
                                  "machine_at_start": machine_reference()}
    if not args.skip_train:
        extra = ["--unlabeled", str(args.data / "background")] if args.unlabeled else []
        wall, rss, out = run([OPENCAC, "train", "--corpus", str(args.data / "train"), "--out", str(model), *extra])
        summary["train"] = {"wall_s": round(wall, 1), "peak_rss_mib": round(rss), "stdout": out.strip().splitlines()}
    summary["manifest_metrics"] = json.loads((model / "manifest.json").read_text())["metrics"]
    n_dev = len(list((dev / "text_files_en").glob("*.txt")))
    for label, mdl in (("trained", str(model)), ("dictionary-only", "none")):
        if label == "dictionary-only" and args.skip_oob:
            continue
        for system in ("icd10cm", "icd10pcs"):
            pred = args.work / f"dev-{label}-{system}.tsv"
            wall, rss, _ = run([OPENCAC, "predict", "--model", mdl, "--input", str(dev), "--system", system,
                                "--out", str(pred), "--as-of", "2018-06-01", "--with-confidence"])
            _, _, ev = run([OPENCAC, "evaluate", "--gold", str(gold[system]), "--pred", str(pred)])
            summary[f"{label}/{system}"] = {**parse_eval(ev), **dev_ece(gold[system], pred),
                                            "predict_wall_s": round(wall, 1),
                                            "notes_per_s_incl_load": round(n_dev / wall, 1),
                                            "peak_rss_mib": round(rss)}
    # single-note latency including start-up (second run: caches warm)
    note = Path(__file__).resolve().parents[1] / "examples" / "pneumonia_admission.txt"
    for label, extra in (("code_oob", []), ("code_trained", ["--model", str(model)])):
        run([OPENCAC, "code", str(note), "--json", *extra])
        wall, _, _ = run([OPENCAC, "code", str(note), "--json", *extra])
        summary[f"{label}_wall_s"] = round(wall, 2)
    summary["machine_at_end"] = machine_reference()
    (args.work / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
