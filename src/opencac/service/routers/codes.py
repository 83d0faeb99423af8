"""Code look-up API: type-ahead search over ICD-10-CM and ICD-10-PCS, reasons pick list."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from opencac.service.coding import get_knowledge
from opencac.service.dependencies import current_user
from opencac.service.schemas import CodeHit, ErrorOut
from opencac.store.models import REASON_CODES, User

router = APIRouter(prefix="/api/v1", tags=["codes"])
ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}}


def search_codes(kb: Any, q: str, system: str | None, limit: int) -> list[dict[str, Any]]:
    """Search the knowledge base; an exact code typed in comes first."""
    from opencac.codesets.types import CodeSystem

    q = q.strip()
    if not q:
        return []
    sys_ = CodeSystem.parse(system) if system else None
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    exact = kb.find(q) if hasattr(kb, "find") else None
    if exact is not None and (sys_ is None or exact.system == sys_):
        out.append(exact)
    hits = [c for c, _s in kb.search(q, system=sys_, limit=limit)]
    scores = {c.code: float(s) for c, s in kb.search(q, system=sys_, limit=limit)} if hits else {}
    rows = []
    for c in out + hits:
        if c.code in seen:
            continue
        seen.add(c.code)
        rows.append({"code": c.code, "system": getattr(c.system, "value", str(c.system)),
                     "description": c.description, "billable": bool(c.billable),
                     "score": 1.0 if c is exact else scores.get(c.code, 0.0)})
    return rows[:limit]


@router.get("/codes/search", response_model=list[CodeHit], responses=ERRORS, summary="Type-ahead code search")
def code_search(q: str = Query(..., min_length=1, max_length=100, examples=["diabetes type 2"]),
                system: Literal["icd10cm", "icd10pcs"] | None = None, limit: int = Query(20, ge=1, le=100),
                _: User = Depends(current_user), kb: Any = Depends(get_knowledge)) -> list:
    """Codes whose description or index terms match ``q`` (or the code itself)."""
    return search_codes(kb, q, system, limit)


@router.get("/reasons", response_model=dict[str, str], responses=ERRORS, summary="Reason codes for reject/modify")
def reasons(_: User = Depends(current_user)) -> dict[str, str]:
    """The pick list of reasons (code -> label)."""
    return dict(REASON_CODES)
