"""OpenCAC nlp layer: sections, sentences, normalisation, mentions, assertion, attributes.

Public API::

    from opencac.nlp import analyze, MentionMatcher, Mention
    doc = analyze(text, doc_id="note")
    matcher = MentionMatcher.build((phrase, payload) for ...)
    mentions = matcher.find(doc)          # start, end, text, phrase, payloads, sentence,
                                          # section, assertion, trigger, attributes, score,
                                          # kind ("exact" | "bag"), subsumed
    assert_span(doc, start, end)          # -> (assertion, trigger)
    extract_attributes(doc, start, end)   # -> {"laterality": ..., "acuity": ..., ...}
    normalize(text)                       # -> (normalised text, offset map)
"""

from opencac.nlp.assertion import assert_span
from opencac.nlp.attributes import extract_attributes
from opencac.nlp.matcher import Mention, MentionMatcher
from opencac.nlp.normalize import normalize
from opencac.nlp.pipeline import analyze

__all__ = ["Mention", "MentionMatcher", "analyze", "assert_span", "extract_attributes", "normalize"]
