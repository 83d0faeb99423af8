"""OpenCAC nlp layer: sections, sentences, normalisation, mentions, assertion, attributes.

Public API::

    from opencac.nlp import analyze, MentionMatcher, Mention
    doc = analyze(text, doc_id="note")
    matcher = MentionMatcher.build((phrase, payload) for ...)
    mentions = matcher.find(doc)
"""

from opencac.nlp.matcher import Mention, MentionMatcher
from opencac.nlp.pipeline import analyze

__all__ = ["Mention", "MentionMatcher", "analyze"]
