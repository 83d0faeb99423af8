#!/usr/bin/env python
"""Engine throughput after model load (notes/s on one core) and peak memory.

    OPENCAC_CM_INDEX_DIR=../shared/data/icd10cm-2025-index \\
        .venv/bin/python bench/engine_speed.py --model /tmp/engine-bench/model --input ../shared/data/codiesp/dev

The compiled ranker (``opencac.coding.forest``) is prepared before timing (built on the first
run on a machine; ``prepare_ranker_s`` says how long that took). ``OPENCAC_COMPILED_RANKER=0``
measures the same run on LightGBM. CPU time (``cpu_s``) is the figure to compare: wall time
depends on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--system", default="icd10cm")
    ap.add_argument("--n", type=int, default=250)
    args = ap.parse_args()
    from _machine import machine_reference

    from opencac.codesets.config import one_blas_thread
    from opencac.coding.engine import CodingEngine

    at_start = machine_reference()

    folder = args.input / "text_files_en" if (args.input / "text_files_en").is_dir() else args.input
    files = sorted(folder.glob("*.txt"))[: args.n]
    texts = [f.read_text(encoding="utf-8") for f in files]
    t0 = time.perf_counter()
    eng = CodingEngine.load(args.model)
    load_s = time.perf_counter() - t0
    gc.freeze()  # as `opencac predict` does after loading
    one_blas_thread()
    compiled, prep_s = False, 0.0
    if eng.model is not None and hasattr(eng.model, "prepare_ranker"):
        t0 = time.perf_counter()
        compiled = eng.model.prepare_ranker(args.system)  # the compiled ranker (built once per machine)
        prep_s = time.perf_counter() - t0
    eng.code_many(texts[:4], systems=(args.system,), explain_top=0)  # warm-up
    c0, t1 = time.process_time(), time.perf_counter()
    eng.code_many(texts, [f.stem for f in files], systems=(args.system,), explain_top=0)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t1
    out = {**at_start, "model": args.model or "dictionary-only", "system": args.system, "notes": len(texts),
           "load_s": round(load_s, 2), "compiled_ranker": compiled, "prepare_ranker_s": round(prep_s, 2),
           "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "ms_per_note_cpu": round(1000 * cpu / len(texts), 1),
           "notes_per_cpu_s": round(len(texts) / cpu, 1),
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    out["machine_at_end"] = machine_reference()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
