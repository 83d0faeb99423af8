"""Candidates -> ranking -> calibrated confidence -> CodeSuggestion with evidence."""

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence

__all__ = ["CodeSuggestion", "CodingResult", "EncounterContext", "Evidence"]
