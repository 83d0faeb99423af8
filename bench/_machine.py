"""The machine's speed, recorded beside every speed figure.

CPU-bound figures move with the machine: session 4's machine ran the same engine code at less than
half the notes per CPU-second of session 3's, while a small pure-Python loop ran as fast or faster
there. Each benchmark therefore prints two references with the load average: the CPU time of a
10-million-step pure-Python loop (clock-bound) and of 2 million random look-ups in a
4-million-entry dict (memory-bound). They run in a child process, so that their memory never
counts toward the benchmark's own peak RSS (the probe peaks at about 0.5 GiB, below the engine's
train and predict runs, so `engine_codiesp.py`'s children-wide peak is unchanged).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PROBE = """
import json, random, time
t = time.process_time()
s = 0
for i in range(10_000_000):
    s += i
loop = time.process_time() - t
table = {i * 7919: i for i in range(4_000_000)}
keys = [random.Random(0).randrange(4_000_000) * 7919 for _ in range(2_000_000)]
t = time.process_time()
for k in keys:
    s += table[k]
print(json.dumps({"python_loop_10m_cpu_s": round(loop, 2), "dict_lookups_2m_cpu_s": round(time.process_time() - t, 2)}))
"""


def machine_reference() -> dict[str, float]:
    """``python_loop_10m_cpu_s``, ``dict_lookups_2m_cpu_s`` and ``load_avg_1m``, measured now (~3 s)."""
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True).stdout
    return {**json.loads(out), "load_avg_1m": round(os.getloadavg()[0], 2)}
