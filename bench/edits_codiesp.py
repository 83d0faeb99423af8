"""Rules-layer benchmark on CodiEsp dev: share of notes with at least one edit or query, and
the engine's MAP with and without the rules layer (it must not fall).

Usage (from the repo root)::

    .venv/bin/python bench/edits_codiesp.py [--model MODEL_DIR] [--split dev] [--limit N]
        [--setting inpatient|outpatient] [--out FIGURES.json]

Without ``--model`` the out-of-the-box (dictionary-only) engine is used. Notes are the
English translations (``text_files_en``); gold codes ``{split}D.tsv`` / ``{split}P.tsv``.
MAP is the CodiEsp metric: mean over documents of the average precision of the ranked codes
(no cut-off), codes compared without dots, case-insensitive.

Notes "with an applied change" have at least one change the rules made by themselves
(``RulesOutcome.changes``); notes "with a proposed fix" have at least one edit whose fix is
left to the coder (``RulesOutcome.proposed``). ``--cache DIR`` keeps the engine's results
between runs (same model/split/setting/limit).

Ranking with the rules layer: the rules' applied changes (``RulesOutcome.changes``) replayed
on the engine's ranking, in place: a replacement takes the replaced code's rank, an added
companion goes right after its anchor code, a removed code is demoted to the end (not
dropped); sequencing (claim order) does not change the ranking. ``--ablate`` also reports
the MAP with each built-in rule left out. Prints a Markdown summary (``--out``: JSON).
"""

from __future__ import annotations

import argparse
import collections
import re
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "codiesp"


def canon(code: str) -> str:
    return code.replace(".", "").strip().upper()


def average_precision(ranked: list[str], gold: set[str]) -> float:
    if not gold:
        return 0.0
    hits, total, seen = 0, 0.0, set()
    for i, c in enumerate(ranked, 1):
        c = canon(c)
        if c in seen:
            continue
        seen.add(c)
        if c in gold:
            hits += 1
            total += hits / (len(seen))
    return total / len(gold)


def average_precision_specific(ranked: list[str], gold: set[str]) -> float:
    """AP where a code also matches a gold code it refines (gold ``T14.90`` ~ ``T14.90XA``):
    CodiEsp's 2018 Spanish-edition gold has no 7th characters and lacks later subdivisions."""
    if not gold:
        return 0.0
    hits, total, seen, matched = 0, 0.0, set(), set()
    for c in ranked:
        c = canon(c)
        if c in seen:
            continue
        seen.add(c)
        m = [g for g in gold if c.startswith(g) and g not in matched]
        if m:
            matched.add(min(m, key=len))
            hits += 1
            total += hits / len(seen)
    return total / len(gold)


def read_gold(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = collections.defaultdict(set)
    for line in path.read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            doc, code = line.split("\t")[:2]
            out[doc.strip()].add(canon(code))
    return out


def _is_cm(code: str) -> bool:
    return bool(re.match(r"^[A-Z]\d[0-9A-Z]", canon(code))) and not re.match(r"^\d", code)


def rules_ranking(suggestions: list[Any], outcome: Any, system: str) -> list[str]:
    """Replay the rules' applied changes on the engine's ranking (see module docstring)."""
    order = list(dict.fromkeys(canon(s.code) for s in suggestions))
    demoted: list[str] = []
    mine = (lambda c: _is_cm(c)) if system == "icd10cm" else (lambda c: not _is_cm(c))
    for ch in outcome.changes:
        code = canon(ch["code"])
        if not mine(ch["code"]):
            continue
        if ch["op"] in ("remove", "remove_duplicate"):
            if code in order:
                order.remove(code)
                demoted.append(code)
        elif ch["op"] == "replace":
            new = canon(ch["new"])
            if code in order:
                i = order.index(code)
                order.remove(code)
                demoted.append(code)
                if new in order:
                    if order.index(new) > i:
                        order.remove(new)
                        order.insert(i, new)
                else:
                    order.insert(i, new)
            elif new not in order:
                order.append(new)
        elif ch["op"] == "add":
            anchor = canon(ch["anchor"]) if ch.get("anchor") else None
            target = order.index(anchor) + 1 if anchor and anchor in order else len(order)
            if code in order:
                if order.index(code) > target:
                    order.remove(code)
                    order.insert(target, code)
            else:
                order.insert(target, code)
            if code in demoted:
                demoted.remove(code)
    return order + [c for c in demoted if c not in order]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model directory (default: dictionary-only engine)")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--setting", default="inpatient", choices=["inpatient", "outpatient", "emergency", "professional"])
    ap.add_argument("--out", default=None, help="also write the figures as JSON here")
    ap.add_argument("--ablate", action="store_true", help="also: MAP with each built-in rule left out")
    ap.add_argument("--policy", action="append", default=[], metavar="NAME=VALUE",
                    help="override an AutoApplyPolicy threshold, e.g. --policy doubtful=0.3 (repeatable)")
    ap.add_argument("--cache", default=None,
                    help="pickle the engine's results here and reuse them on the next run with the same "
                         "model/split/setting/limit (to iterate on the rules without re-coding the notes)")
    args = ap.parse_args(argv)

    split = Path(args.data) / args.split
    if not (split / "text_files_en").is_dir():
        print(f"CodiEsp split not found under {split}", file=sys.stderr)
        return 2
    try:
        from opencac.coding.engine import CodingEngine
    except ImportError as exc:
        print(f"the coding engine is not available yet ({exc}); nothing to benchmark", file=sys.stderr)
        return 3
    from opencac.coding.types import EncounterContext
    from opencac.edits import apply_rules

    policy = None
    if args.policy:
        from opencac.edits import AutoApplyPolicy

        kw = {k: float(v) if "." in v else int(v) for k, v in (p.split("=", 1) for p in args.policy)}
        policy = AutoApplyPolicy(**kw)

    files = sorted((split / "text_files_en").glob("*.txt"))[: args.limit]
    ids = [f.stem for f in files]
    texts = [f.read_text(encoding="utf-8") for f in files]
    gold = {"icd10cm": read_gold(split / f"{args.split}D.tsv"), "icd10pcs": read_gold(split / f"{args.split}P.tsv")}

    t0 = time.perf_counter()
    eng = CodingEngine.load(args.model)
    ctx = EncounterContext(setting=args.setting, age=None, sex="U", discharge_date=dt.date(2025, 11, 3),
                           date_of_service=dt.date(2025, 11, 3))
    cache = None
    if args.cache:
        import hashlib
        import pickle

        key = hashlib.sha1(f"{args.model}|{args.split}|{args.setting}|{args.limit}".encode()).hexdigest()[:12]
        cache = Path(args.cache) / f"engine-{key}.pkl"
    if cache is not None and cache.exists():
        import pickle

        results = pickle.loads(cache.read_bytes())
    else:
        results = eng.code_many(texts, ids, ctx)
        if cache is not None:
            import pickle

            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(pickle.dumps(results))
    t_engine = time.perf_counter() - t0

    ap_base: dict[str, list[float]] = {"icd10cm": [], "icd10pcs": []}
    ap_rules: dict[str, list[float]] = {"icd10cm": [], "icd10pcs": []}
    ap_sel: dict[str, list[float]] = {"icd10cm": [], "icd10pcs": []}  # control: selected first, no rules
    ap_spec_base: list[float] = []
    ap_spec_rules: list[float] = []
    setc = {"before": [0, 0, 0], "after": [0, 0, 0]}  # tp, fp, fn of the selected / final diagnosis sets
    with_edit = with_any = with_query = with_applied = with_proposed = 0
    vs_gold: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    edit_counts: collections.Counter[str] = collections.Counter()
    query_counts: collections.Counter[str] = collections.Counter()
    drg_agree = drg_total = 0
    t1 = time.perf_counter()
    for doc_id, text, res in zip(ids, texts, results):
        outcome = apply_rules(res, text, kb=eng.kb, policy=policy)
        sev = [e for e in outcome.edits if e.severity in ("error", "warning")]
        with_edit += bool(sev or outcome.queries)
        with_any += bool(outcome.edits or outcome.queries)
        with_query += bool(outcome.queries)
        with_applied += bool(outcome.changes)
        with_proposed += bool(getattr(outcome, "proposed", []))  # older rules layers: none
        gd = gold["icd10cm"].get(doc_id, set())
        for ch in outcome.changes:
            if not _is_cm(ch["code"]) or ch["op"] == "sequence":
                continue
            out_code = canon(ch["code"]) if ch["op"] in ("remove", "remove_duplicate", "replace") else None
            in_code = canon(ch["new"]) if ch["op"] == "replace" else canon(ch["code"]) if ch["op"] == "add" else None
            if out_code:
                vs_gold[ch["rule"]]["out_gold" if out_code in gd else "out_other"] += 1
            if in_code:
                vs_gold[ch["rule"]]["in_gold" if in_code in gd else "in_other"] += 1
        edit_counts.update({e.id for e in outcome.edits})
        query_counts.update({q.topic for q in outcome.queries})
        if outcome.drg is not None and outcome.drg.crosscheck:
            drg_total += 1
            drg_agree += bool(outcome.drg.crosscheck.get("agrees"))
        for system, sugg in (("icd10cm", res.diagnoses), ("icd10pcs", res.procedures)):
            g = gold[system].get(doc_id, set())
            if not g:
                continue
            ap_base[system].append(average_precision([s.code for s in sugg], g))
            ap_rules[system].append(average_precision(rules_ranking(sugg, outcome, system), g))
            ap_sel[system].append(average_precision([s.code for s in sugg if s.selected]
                                                    + [s.code for s in sugg if not s.selected], g))
            if system == "icd10cm":
                ap_spec_base.append(average_precision_specific([s.code for s in sugg], g))
                ap_spec_rules.append(average_precision_specific(rules_ranking(sugg, outcome, system), g))
                for key, codes in (("before", {canon(s.code) for s in sugg if s.selected}),
                                   ("after", {canon(c.code) for c in outcome.diagnoses})):
                    setc[key][0] += len(codes & g)
                    setc[key][1] += len(codes - g)
                    setc[key][2] += len(g - codes)
    t_rules = time.perf_counter() - t1
    n = len(ids)

    def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return (round(p, 4), round(r, 4), round(2 * p * r / (p + r), 4) if p + r else 0.0)

    def mean(x: list[float]) -> float:
        return round(sum(x) / len(x), 4) if x else 0.0

    figures = {
        "split": args.split, "notes": n, "engine": eng.name, "setting": args.setting,
        "policy": policy.to_dict() if policy is not None else "default",
        "share_notes_with_warning_error_or_query": round(with_edit / n, 4) if n else 0.0,
        "share_notes_with_any_edit_or_query": round(with_any / n, 4) if n else 0.0,
        "share_notes_with_query": round(with_query / n, 4) if n else 0.0,
        "share_notes_with_applied_change": round(with_applied / n, 4) if n else 0.0,
        "share_notes_with_proposed_fix": round(with_proposed / n, 4) if n else 0.0,
        "map_d_engine": mean(ap_base["icd10cm"]), "map_d_with_rules": mean(ap_rules["icd10cm"]),
        "map_p_engine": mean(ap_base["icd10pcs"]), "map_p_with_rules": mean(ap_rules["icd10pcs"]),
        "map_d_control_selected_first": mean(ap_sel["icd10cm"]), "map_p_control_selected_first": mean(ap_sel["icd10pcs"]),
        "map_d_engine_specificity_aware": mean(ap_spec_base), "map_d_with_rules_specificity_aware": mean(ap_spec_rules),
        "final_set_d_prf_engine_selected": prf(*setc["before"]), "final_set_d_prf_with_rules": prf(*setc["after"]),
        "drg_grouper_agreement": round(drg_agree / drg_total, 4) if drg_total else None,
        "seconds_engine": round(t_engine, 1), "ms_rules_per_note": round(1000 * t_rules / max(n, 1), 1),
        "top_edits": edit_counts.most_common(15), "queries": query_counts.most_common(),
        "applied_changes_vs_gold_d": {r: dict(c) for r, c in sorted(vs_gold.items())},
        "command": "bench/edits_codiesp.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    if args.ablate:
        from opencac.edits import default_registry

        ablation = {}
        for name in [r.name for r in default_registry().rules()]:
            if name == "opencac.drg.v1":
                continue
            reg = default_registry().copy()
            reg.unregister(name)
            reg.unregister("opencac.drg.v1")  # no effect on codes; saves time
            aps: dict[str, list[float]] = {"icd10cm": [], "icd10pcs": []}
            for doc_id, text, res in zip(ids, texts, results):
                out = apply_rules(res, text, kb=eng.kb, registry=reg, policy=policy)
                for system, sugg in (("icd10cm", res.diagnoses), ("icd10pcs", res.procedures)):
                    g = gold[system].get(doc_id, set())
                    if g:
                        aps[system].append(average_precision(rules_ranking(sugg, out, system), g))
            ablation[name] = {"map_d": mean(aps["icd10cm"]), "map_p": mean(aps["icd10pcs"])}
        figures["ablation_without_rule"] = ablation
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(f"| figure | value |\n|---|---|")
    for k, v in figures.items():
        if k not in ("top_edits", "queries", "ablation_without_rule", "applied_changes_vs_gold_d"):
            print(f"| {k} | {v} |")
    print("\nTop edits:", ", ".join(f"{k} {v}" for k, v in figures["top_edits"]))
    print("Queries:", ", ".join(f"{k} {v}" for k, v in figures["queries"]))
    print("\nApplied diagnosis changes vs the gold (out = removed/replaced code, in = added/new code):")
    for r, c in figures["applied_changes_vs_gold_d"].items():
        print(f"- {r}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    if "ablation_without_rule" in figures:
        print("\n| rule left out | MAP D | MAP P |\n|---|---|---|")
        for k, v in figures["ablation_without_rule"].items():
            print(f"| {k} | {v['map_d']} | {v['map_p']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
