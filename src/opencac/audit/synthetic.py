"""Synthetic audit frames for tests, demos and benchmarks (no real patients).

:func:`synthetic_population` makes encounter records with demographics and outcomes drawn
from fixed rates, optionally with a *planted* disparity: e.g.
``{"language": ("Spanish", "accuracy", -0.15)}`` lowers the accuracy of Spanish-speaking
patients by 15 points, so a fairness report can be checked to find it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, timedelta

from opencac.audit.records import EncounterRecord

_GROUPS: dict[str, tuple[tuple[str, float], ...]] = {
    "sex": (("F", 0.52), ("M", 0.48)),
    "race": (("White", 0.6), ("Black", 0.18), ("Asian", 0.07), ("American Indian or Alaska Native", 0.02),
             ("Other", 0.13)),
    "ethnicity": (("Not Hispanic or Latino", 0.8), ("Hispanic or Latino", 0.2)),
    "language": (("English", 0.82), ("Spanish", 0.14), ("Vietnamese", 0.03), ("Somali", 0.01)),
    "payer": (("Medicare", 0.4), ("Medicaid", 0.2), ("Commercial", 0.35), ("Self-pay", 0.05)),
}
_CODES = (("I50.9", "I10", "E11.9"), ("J18.9", "J44.1"), ("N39.0", "E87.1"), ("K35.80",), ("I21.4", "I25.10"))
_DRGS = (("291", 1.3), ("193", 1.2), ("690", 0.8), ("343", 1.0), ("280", 1.6))


def _pick(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    x, acc = rng.random(), 0.0
    for v, p in options:
        acc += p
        if x < acc:
            return v
    return options[-1][0]


def synthetic_population(
    n: int = 2000,
    seed: int = 0,
    accuracy: float = 0.90,
    automation: float = 0.45,
    query: float = 0.08,
    planted: Mapping[str, tuple[str, str, float]] | None = None,
    start: date = date(2026, 1, 1),
) -> list[EncounterRecord]:
    """Encounters with demographics and outcome flags at the given base rates.

    Args:
        n: Number of encounters.
        seed: Random seed (Python ``random.Random``).
        accuracy, automation, query: Base rates of the three outcomes.
        planted: attribute -> (group, outcome, shift): shifts that group's rate of that
            outcome (``accuracy``, ``automation`` or ``query``) by ``shift``.
        start: First service date; encounters spread over the following 180 days.
    """
    rng = random.Random(seed)
    out = []
    for i in range(n):
        demo = {a: _pick(rng, g) for a, g in _GROUPS.items()}
        age = min(99, max(0, int(rng.gauss(58, 20))))
        rates = {"accuracy": accuracy, "automation": automation, "query": query}
        for attr, (group, outcome, shift) in (planted or {}).items():
            value = demo.get(attr) if attr != "age_band" else None
            if value == group:
                rates[outcome] = min(1.0, max(0.0, rates[outcome] + shift))
        automated = rng.random() < rates["automation"]
        coded_by = "ai_straight_through" if automated else rng.choice(("ai_coder", "coder"))
        drg, weight = _DRGS[i % len(_DRGS)]
        out.append(EncounterRecord(
            encounter_id=f"ENC{i:06d}", service_date=start + timedelta(days=rng.randrange(180)),
            setting=rng.choice(("inpatient", "inpatient", "outpatient")), coded_by=coded_by,
            model_version=rng.choice(("opencac-2026.1", "opencac-2026.2")),
            coder=None if automated else f"coder{rng.randrange(1, 6)}", confidence=round(rng.random(), 3),
            drg=drg, drg_weight=weight, codes=_CODES[i % len(_CODES)], payer=demo["payer"],
            edits=("excludes1",) if rng.random() < 0.05 else (), age=age, sex=demo["sex"], race=demo["race"],
            ethnicity=demo["ethnicity"], language=demo["language"], automated=automated,
            queried=rng.random() < rates["query"], accurate=rng.random() < rates["accuracy"],
        ))
    return out
