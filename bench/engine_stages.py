#!/usr/bin/env python
"""Where a note's CPU goes: ``CodingEngine.code_many``'s stages timed one by one.

    OPENCAC_CM_INDEX_DIR=../shared/data/icd10cm-2025-index \\
        .venv/bin/python bench/engine_stages.py --model /tmp/engine-bench/model --input ../shared/data/codiesp/dev

Repeats the stages of one batch (dictionary hits, TF-IDF, supervised signals, candidates and features,
feature matrix, ranker, suggestions) over the notes ``--passes`` times after a warm-up and prints each
stage's best pass in ms CPU per note (best of several: this machine's speed drifts within minutes).
Compare two commits by running the older one from a ``git worktree`` with ``PYTHONPATH=WT/src``,
alternating.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--system", default="icd10cm")
    ap.add_argument("--n", type=int, default=250)
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    import numpy as np

    from opencac.codesets.config import one_blas_thread
    from opencac.coding.candidates import build_candidates, feature_matrix
    from opencac.coding.engine import CodingEngine, _RelatedHits
    from opencac.coding.types import EncounterContext

    folder = args.input / "text_files_en" if (args.input / "text_files_en").is_dir() else args.input
    texts = [f.read_text(encoding="utf-8") for f in sorted(folder.glob("*.txt"))[: args.n]]
    system = args.system
    eng = CodingEngine.load(args.model)
    one_blas_thread()  # as `opencac predict` does after loading
    gc.freeze()
    eng.model.prepare_ranker(system)
    eng.code_many(texts[:4], systems=(system,), explain_top=0)  # warm-up
    layer = eng.model.layers_[system]
    ctx = EncounterContext()
    best: dict[str, float] = {}
    gc.disable()
    for _ in range(args.passes):
        took: dict[str, float] = {}
        t = time.process_time()
        analysed = [eng.dictionary_hits(x, "d", attributes=False, systems=(system,)) for x in texts]
        took["dictionary_hits"] = time.process_time() - t
        t = time.process_time()
        X, B = eng.model.featurizer_.transform_and_binary(texts)
        took["tfidf"] = time.process_time() - t
        t = time.process_time()
        sentences = eng.model.featurizer_.sentence_tfidf(texts) \
            if layer.__dict__.get("sentence_ridge_") is not None else None
        took["sentence_tfidf"] = time.process_time() - t
        t = time.process_time()
        sig = layer.scores(X, B, with_arg=False, sentences=sentences[:2] if sentences is not None else None)
        took["supervised_signals"] = time.process_time() - t
        t = time.process_time()
        per = [list(build_candidates(system, [h for h in hits if h.system == system], layer, sig, r, eng.kb,
                                     len(x.split()), eng.model.top_n, text=x).values())
               for r, (x, (_, hits)) in enumerate(zip(texts, analysed))]
        took["candidates"] = time.process_time() - t
        t = time.process_time()
        M = feature_matrix([c for cl in per for c in cl])
        took["feature_matrix"] = time.process_time() - t
        t = time.process_time()
        sc = eng.model.rank(system, M)
        cf = eng.model.calibrators_[system].predict(sc)
        took["ranker"] = time.process_time() - t
        bounds = np.cumsum([0] + [len(cl) for cl in per])
        t = time.process_time()
        for r, x in enumerate(texts):
            related = _RelatedHits({c.code: c.hits for c in per[r] if c.hits})
            eng._suggestions(system, x, per[r], sc[bounds[r]:bounds[r + 1]], cf[bounds[r]:bounds[r + 1]], 0.5,
                             layer, sig, r, ctx, None, related, 0)
        took["suggestions"] = time.process_time() - t
        for k, v in took.items():
            best[k] = min(best.get(k, float("inf")), v)
    gc.enable()
    out = {k: round(1000 * v / len(texts), 2) for k, v in best.items()}
    out["total"] = round(sum(out.values()), 2)
    print(json.dumps({"system": system, "notes": len(texts), "ms_cpu_per_note_best_pass": out}))


if __name__ == "__main__":
    main()
