"""Child process for the resume tests: one batch run with the fake engine (killed by the test)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_fakes import FakeFactory  # noqa: E402

from opencac.batch.runner import BatchConfig, run_batch  # noqa: E402

if __name__ == "__main__":
    inp, out, workers, chunk, delay = sys.argv[1:6]
    run_batch(BatchConfig(input=Path(inp), out=Path(out), workers=int(workers), chunk_size=int(chunk),
                          rules=False, tsv=True, engine_factory=FakeFactory(float(delay)), checkpoint_interval_s=0.0))
