"""Load benchmark of the coding workbench: N concurrent simulated reviewers over loopback.

Each reviewer loops: worklist (GET /api/v1/encounters) -> encounter view (GET /api/v1/encounters/{id},
which also appends a document.view audit event) -> decision (POST .../decisions, accept or reject
with a reason). The server runs in its own process (uvicorn, one worker); the database is a fresh
SQLite file or a fresh PostgreSQL schema, seeded with coded encounters (a synthetic coder: this
measures the service and storage, not the engine). Bounded by --iterations per reviewer and
--time-limit seconds.

    .venv/bin/python bench/service_load.py --db sqlite --db postgresql --reviewers 50 --iterations 8

Reviewers pause ``--think`` seconds on average between actions (0 = stress test). Prints a
table and, with --write, appends it with the command to bench/RESULTS-service.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ("worklist", "encounter", "decision")
WORDS = ["diabetes", "hypertension", "pneumonia", "asthma", "anemia", "obesity"]
CODES = {"diabetes": ("E11.9", 0.9), "hypertension": ("I10", 0.7), "pneumonia": ("J18.9", 0.45),
         "asthma": ("J45.909", 0.8), "anemia": ("D64.9", 0.6), "obesity": ("E66.9", 0.55)}


def synthetic_coder(text: str, context: Any) -> Any:
    """A deterministic stand-in for the engine: one suggestion per trigger word, with evidence."""
    from opencac.coding.types import CodeSuggestion, CodingResult, Evidence

    res = CodingResult(doc_id="note", model="bench-synthetic", codeset={"icd10cm": "FY2026"}, context=context)
    low = text.lower()
    for rank, w in enumerate(WORDS, 1):
        i = low.find(w)
        if i >= 0:
            code, conf = CODES[w]
            res.diagnoses.append(CodeSuggestion(code=code, system="icd10cm", description=w, confidence=conf,
                                                evidence=[Evidence(i, i + len(w), w)], rank=rank,
                                                selected=conf >= 0.5))
    res.rules = {"edits": [], "drg": None, "queries": []}
    return res


def make_app() -> Any:
    """uvicorn factory (run in the server process): the app on $BENCH_DB_URL, no worker."""
    from opencac.service import app as app_mod
    from opencac.service.settings import Settings

    if os.environ.get("BENCH_CORE_ONLY") == "1":  # the workbench core without other layers' routers/hooks
        app_mod.ROUTER_MODULES[:] = [m for m in app_mod.ROUTER_MODULES if not m.endswith(
            (".audits", ".learning", ".models", ".routing"))]
    create_app = app_mod.create_app
    return create_app(Settings(database_url=os.environ["BENCH_DB_URL"], secret_key="bench", start_worker=False,
                               login_max_attempts=10_000), coder=synthetic_coder)


def seed(url: str, reviewers: int, per_reviewer: int) -> list[str]:
    """Create users, ingest and code encounters; returns one API token per reviewer."""
    from opencac.service.ingest import IngestData, create_encounter
    from opencac.service.worker import CodingWorker
    from opencac.store.accounts import create_user, issue_token
    from opencac.store.db import make_engine, session_factory, upgrade

    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    rng = random.Random(7)
    tokens = []
    with factory() as s:
        for i in range(reviewers):
            create_user(s, f"rev{i:02d}", "bench-password", roles=["coder"], actor="bench")
            tokens.append(issue_token(s, f"rev{i:02d}", actor="bench"))
        for _ in range(reviewers * per_reviewer):
            words = rng.sample(WORDS, 4)
            text = "Assessment: " + ". ".join(f"History of {w}" for w in words) + ".\n" + ("Plan: follow up. " * 40)
            create_encounter(s, IngestData(text=text, setting=rng.choice(["inpatient", "outpatient"])), "bench",
                             max_bytes=1_000_000)
        s.commit()
    CodingWorker(factory, lambda: synthetic_coder).drain()
    engine.dispose()
    return tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def reviewer(client: Any, token: str, idx: int, iterations: int, deadline: float,
                   lat: dict[str, list[float]], stats: dict[str, int], think: float = 0.0) -> None:
    h = {"Authorization": f"Bearer {token}"}
    rng = random.Random(idx)

    async def pause() -> None:  # a reviewer reads between actions: uniform 0.5..1.5 x think seconds
        if think > 0:
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))

    await asyncio.sleep(think * rng.random())  # staggered start
    for _ in range(iterations):
        if time.monotonic() > deadline:
            return
        t = time.perf_counter()
        r = await client.get("/api/v1/encounters", params={"status": "ready,in_review", "limit": 50,
                                                            "offset": rng.randrange(0, 100)}, headers=h)
        lat["worklist"].append(time.perf_counter() - t)
        stats[f"worklist {r.status_code}"] = stats.get(f"worklist {r.status_code}", 0) + 1
        items = r.json().get("items", []) if r.status_code == 200 else []
        if not items:
            continue
        eid = rng.choice(items)["id"]
        await pause()
        t = time.perf_counter()
        r = await client.get(f"/api/v1/encounters/{eid}", headers=h)
        lat["encounter"].append(time.perf_counter() - t)
        stats[f"encounter {r.status_code}"] = stats.get(f"encounter {r.status_code}", 0) + 1
        if r.status_code != 200:
            continue
        enc = r.json()
        pending = [s for s in enc["suggestions"] if s["state"] == "pending"]
        if not pending:
            continue
        s = rng.choice(pending)
        body: dict[str, Any] = {"action": rng.choice(["accept", "reject"]), "suggestion_id": s["id"],
                                "version": enc["version"]}
        if body["action"] == "reject":
            body["reason_code"] = "not_documented"
        await pause()
        t = time.perf_counter()
        r = await client.post(f"/api/v1/encounters/{eid}/decisions", json=body, headers=h)
        lat["decision"].append(time.perf_counter() - t)
        stats[f"decision {r.status_code}"] = stats.get(f"decision {r.status_code}", 0) + 1
        await pause()


async def drive(base: str, tokens: list[str], iterations: int, time_limit: float,
                think: float = 0.0) -> tuple[dict[str, list[float]], dict[str, int], float]:
    import httpx

    lat: dict[str, list[float]] = {k: [] for k in ROUTES}
    stats: dict[str, int] = {}
    limits = httpx.Limits(max_connections=len(tokens) + 5, max_keepalive_connections=len(tokens) + 5)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        t0 = time.monotonic()
        deadline = t0 + time_limit
        await asyncio.gather(*(reviewer(client, tok, i, iterations, deadline, lat, stats, think)
                               for i, tok in enumerate(tokens)))
        wall = time.monotonic() - t0
    return lat, stats, wall


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] * 1000


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    from opencac.store.testing import temp_database

    with tempfile.TemporaryDirectory() as d, temp_database(kind, Path(d)) as url:
        tokens = seed(url, args.reviewers, args.per_reviewer)
        port = free_port()
        env = dict(os.environ, BENCH_DB_URL=url, PYTHONPATH=str(ROOT / "bench") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "service_load:make_app", "--host",
                                 "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
                                 "--workers", str(args.workers)],
                                env=env, cwd=str(ROOT))
        try:
            import httpx

            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("server did not start")
                time.sleep(0.2)
            # Warm-up (not measured): the first decision loads lazily-built state in the server (e.g. the
            # learning layer's online learner, the code sets); every reviewer once, so every worker process warms up.
            asyncio.run(drive(f"http://127.0.0.1:{port}", tokens, 1, 180))
            time.sleep(2)
            lat, stats, wall = asyncio.run(drive(f"http://127.0.0.1:{port}", tokens, args.iterations, args.time_limit,
                                                 args.think))
        finally:
            proc.terminate()
            proc.wait(15)
    n = sum(len(v) for v in lat.values())
    return {"db": kind, "lat": lat, "stats": stats, "wall": wall, "requests": n}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| database | route | requests | p50 ms | p95 ms | max ms |", "|---|---|---:|---:|---:|---:|"]
    for r in results:
        for route in ROUTES:
            v = r["lat"][route]
            lines.append(f"| {r['db']} | {route} | {len(v)} | {pct(v, 0.5):.1f} | {pct(v, 0.95):.1f} | "
                         f"{(max(v) * 1000 if v else float('nan')):.1f} |")
    lines.append("")
    for r in results:
        lines.append(f"- {r['db']}: {r['requests']} requests in {r['wall']:.1f} s "
                     f"({r['requests'] / max(r['wall'], 1e-9):.0f} req/s); status counts {dict(sorted(r['stats'].items()))}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", action="append", choices=["sqlite", "postgresql"], help="repeatable (default both)")
    ap.add_argument("--reviewers", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=8, help="loops per reviewer")
    ap.add_argument("--per-reviewer", type=int, default=4, help="encounters seeded per reviewer")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per database")
    ap.add_argument("--think", type=float, default=1.0,
                    help="mean seconds a reviewer spends between actions (0 = stress test, no pauses)")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--core-only", action="store_true",
                    help="serve without other layers' routers (no learning hook): isolates the workbench core")
    ap.add_argument("--write", action="store_true", help="append the figures to bench/RESULTS-service.md")
    args = ap.parse_args()
    kinds = args.db or ["sqlite", "postgresql"]
    if args.core_only:
        os.environ["BENCH_CORE_ONLY"] = "1"
    results = []
    for kind in kinds:
        if kind == "postgresql":
            from opencac.store.testing import postgres_unreachable_reason

            reason = postgres_unreachable_reason()
            if reason:
                print(f"skipping PostgreSQL: {reason}", file=sys.stderr)
                continue
        results.append(run_one(kind, args))
    out = table(results)
    print(out)
    if args.write:
        cmd = "python bench/service_load.py " + " ".join(sys.argv[1:])
        with open(ROOT / "bench" / "RESULTS-service.md", "a", encoding="utf-8") as f:
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            f.write(f"\n### {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} — {args.reviewers} reviewers x "
                    f"{args.iterations} loops, think {args.think} s, {args.workers} worker(s), "
                    f"{os.cpu_count()} CPUs, load average {load:.1f}\n\nCommand: `{cmd}`\n\n{out}\n")


if __name__ == "__main__":
    main()
