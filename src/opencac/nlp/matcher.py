"""Mention detection: an Aho-Corasick automaton over normalised dictionary phrases.

``MentionMatcher.build(entries)`` normalises every phrase (see :mod:`opencac.nlp.normalize`),
groups payloads by normalised phrase and compiles one ``pyahocorasick`` automaton over token
codes (each token a fixed pair of characters, so only whole tokens match). ``find(doc)`` normalises
each sentence, runs the automaton, maps matches back to original offsets and fills in
section, assertion and attributes.

Two kinds of mention:

* ``exact``: the phrase's tokens contiguous in the note (score 1.0). All overlapping
  matches are returned; the ones strictly inside a longer match are flagged ``subsumed``
  (longest-match preference, with the overlaps kept available).
* ``bag``: a multiword phrase whose content words all occur in one sentence in another
  order or with words between them (index ``"Fracture, femur, neck"`` vs note
  ``"fracture of the neck of the femur"``), scored lower (0.25-0.75, by compactness).
"""

from __future__ import annotations

import bisect
import pickle
import re
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opencac.codesets.config import read_pickle, write_pickle
from opencac.codesets.packed import PackedMap
from opencac.errors import ModelFormatError
from opencac.nlp.assertion import assert_span, assert_within
from opencac.nlp.attributes import extract_attributes
from opencac.nlp.normalize import Token, tokenize
from opencac.text.document import Document, Span

__all__ = ["DEFAULT_STOP_PHRASES", "MATCH_STOPWORDS", "Mention", "MentionMatcher"]

#: Tokens dropped on both sides before matching (articles, "of", index-only words).
MATCH_STOPWORDS = frozenset({"the", "an", "of", "nos", "nec", "mellitus"})

#: One-word phrases too generic to be mentions on their own (they still count inside
#: multiword phrases).
DEFAULT_STOP_PHRASES = frozenset(
    """disease disorder status condition history problem finding findings abnormal abnormality
    complication complications syndrome state change changes defect observation examination exam
    admission care test use type stage grade form case person patient problem presence absence
    other unspecified specified site part region area organ tissue left right bilateral acute
    chronic of with without due to in on and or by for from at as after before during
    follow followup up new old late early primary secondary multiple single total partial
    effect effects reaction reactions factor factors level levels result results sign signs
    symptom symptoms body system function lesion illness investigation investigations scale""".split()
) | frozenset(
    # index main terms whose one word a note uses for something else: "general anesthesia" (not
    # R20.0), "ulnar nerve" (the index's "Nerves" is R45.0, nervousness), "sinus rhythm" (L98.8),
    # "blood gas" (R14.3), "cold extremities" (J00), "alcohol consumption" (A15.9), the month or
    # verb "may" (May-Hegglin, D72.0), "physical activity" (Y93.9), "the donor" (Z52.9), "cardiac
    # arrest" read as "arrest" (Z65.3, legal circumstances), "local anesthetic" and "analgesia"
    # (R20.0), "transient" (the index's "Transient (meaning homeless)", Z59.00), "adhesive" dressings
    # (K66.0), "dye" (Z77.098), "basal ganglia" and the translated notes' "ganglion" for lymph node
    # (M67.4-, a synovial cyst), "FFA" for fluorescein angiography (L66.12, frontal fibrosing alopecia),
    # "no anomalies", "malformations", a "deformity" or "dysplasia" of a named site (the bare term is Q89.9),
    # "clots" in the urine (Clot - see also Embolism, I74.9), "preserved diuresis" (R35.89, polyuria),
    # the patient "as a newborn" (Z38.2, the birth episode), an ECG's "axis" (S12.1, the second cervical
    # vertebra), an antibiogram's "sensitive" / "sensitivity" (T78.40, allergy), a culture's "growth"
    # (D49), "standing", "reaching", "lifting" (X50, overexertion), "exposure" (X58, T75.89) and "noise"
    # (W42.9) as words of prose, and the translated "toxic habits" (substance use; T65.91, toxic effect),
    # the "central nervous system" (R45.0, nervousness), a tumor "adherent" to a plane (K66.0) and the
    # "mixed dentition" of a child's teeth (the index's "Dentition (syndrome)", K00.7, is teething),
    # and the patient's "age" (the index's "Age (old) - see Senility", R41.81)
    """anesthesia nerve sinus gas cold consumption may activity donor arrest anesthetic analgesia
    transient adhesive dye ganglion ffa anomaly anomalous deformity dysplasia malformation clot diuresis
    newborn neonatal axis sensitive sensitivity growth standing reaching lifting exposure noise toxic
    nervous adherent dentition age""".split()
)

# Words ignored when matching a phrase as a bag of content words.
_BAG_IGNORE = frozenset(
    """with in on to and or by for from at as due other specified unspecified site type
    classified elsewhere without except not no""".split()
)
_BAG_BLOCK = frozenset({"without", "except", "not", "no", "elsewhere"})
#: Phrases with one of these words are matched where they are written, not as a bag of words:
#: prose is full of them ("a blood test" is no "type A blood", "hepatitis A" needs its "A",
#: "his disease" is no His-Werner disease, A79.0, "her heart disease" no Hers' disease, E74.09).
_BAG_PROSE = frozenset({"a", "i", "his", "her"})
#: A phrase ending in one of these was cut from its continuation (the index row "Hepatitis > B >
#: with" of "with hepatic coma", B19.11): as a bag it is its head alone ("hepatitis B").
_BAG_DANGLING = frozenset({"with", "in", "of", "to", "by", "from", "and", "or", "due"})
#: Everything that decides which phrases become bags (the dictionary cache key reads it).
BAG_RULES = frozenset({f"ignore:{w}" for w in _BAG_IGNORE} | {f"block:{w}" for w in _BAG_BLOCK}
                      | {f"prose:{w}" for w in _BAG_PROSE} | {f"dangling:{w}" for w in _BAG_DANGLING})
#: A word-bag match of a "with" phrase whose words are separated by one of these reads the
#: opposite of its phrase ("acute appendicitis without perforation" is not "acute appendicitis
#: with perforation").
_BAG_GAP_NEGATORS = frozenset({"without", "no", "not", "non", "nor", "except", "excluding", "absence", "absent",
                               "free", "negative", "denies", "denied"})

FORMAT_VERSION = 9  # 7, 8: bag anchors packed (_Anchors, a PackedMap since 8); 9: BAG_RULES (in the cache key since)
_SEE_TAIL = re.compile(r"\s+(?:see|see also)\s+\S.*$")
_UNKNOWN = "\x01"  # stands for a note token that no phrase contains


def _whole_words(tokens: Sequence[Token], spans: list[frozenset[int]]) -> list[frozenset[int]] | None:
    """Each token set widened to every token of the written words it touches, or None when no
    word became several tokens (then a set is its own widening). A match also lies inside a longer
    one when the written words they cover do: "leiomyosarcoma" (read "leiomyo sarcoma", C49.9) lies
    inside "leiomyosarcoma of the colon" (C18.9), which holds only its "sarcoma". The tokens of one
    word are consecutive."""
    if not any(a.start == b.start and a.end == b.end for a, b in zip(tokens, tokens[1:])):
        return None
    same_word: dict[tuple[int, int], list[int]] = {}
    for k, t in enumerate(tokens):
        same_word.setdefault((t.start, t.end), []).append(k)
    return [frozenset(k2 for k in toks for k2 in same_word[(tokens[k].start, tokens[k].end)]) for toks in spans]


def _char(i: int) -> str:
    """The private-alphabet character of token id ``i`` (skipping the surrogate range)."""
    c = 0x100 + i
    return chr(c if c < 0xD800 else c + 0x800)


def _pair(c: str) -> str:
    """The two characters that stand for a token (its private-alphabet character ``c``) in the
    automaton's keys: ``id // 256`` from the private use area, then ``id % 256``. A trie node
    then has at most a few hundred children, where one character per token gave the root one
    child per first word (~19,000, searched one by one on every failure back to the root: 1-4
    microseconds per token). The two ranges are disjoint, so a key can only match at a token's
    first character."""
    o = ord(c)
    i = o - 0x100 if o < 0xD800 else o - 0x900
    return chr(0xE000 + (i >> 8)) + chr(0x100 + (i & 0xFF))


_UNKNOWN_PAIR = _UNKNOWN * 2


class _Ragged(Sequence[tuple[int, ...]]):
    """A list of int tuples stored flat (values + offsets)."""

    def __init__(self, flat: array, offsets: array) -> None:
        self._flat, self._offs = flat, offsets

    def __len__(self) -> int:
        return len(self._offs) - 1

    def __getitem__(self, i: int) -> tuple[int, ...]:  # type: ignore[override]
        return tuple(self._flat[self._offs[i] : self._offs[i + 1]])


class _Lines(Sequence[str]):
    """Strings kept as one text and their start offsets, each sliced out when read: a loaded
    matcher builds no list of 600,000 phrases (0.1 s and ~40 MB at every start)."""

    def __init__(self, text: str, starts: array) -> None:
        self.text, self.starts = text, starts  # item i is text[starts[i] : starts[i + 1] - 1]

    @classmethod
    def pack(cls, items: Sequence[str]) -> _Lines:
        if isinstance(items, _Lines):
            return items
        starts = array("q", [0])
        pos = 0
        for x in items:
            pos += len(x) + 1
            starts.append(pos)
        return cls("\n".join(items), starts)

    def state(self) -> tuple[str, bytes]:
        """What :meth:`MentionMatcher.save` writes; :meth:`from_state` reads it back."""
        return self.text, self.starts.tobytes()

    @classmethod
    def from_state(cls, state: tuple[str, bytes]) -> _Lines:
        starts = array("q")
        starts.frombytes(state[1])
        return cls(state[0], starts)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        n = len(self.starts) - 1
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self.text[self.starts[i] : self.starts[i + 1] - 1]


class _Anchors(PackedMap):
    """Bag anchors: token pair (two characters) -> the ids of the bags it anchors, as a
    :class:`~opencac.codesets.packed.PackedMap` of int32 bytes read as a ``memoryview`` of ints.
    A loaded matcher made a dict of 116,000 byte strings at every start (0.1 s of each
    ``opencac code``); this form is a few blobs and a binary search per look-up."""

    @classmethod
    def pack(cls, anchor: Mapping[str, Any]) -> _Anchors:
        if isinstance(anchor, _Anchors):
            return anchor
        return cls({k: array("i", v).tobytes() for k, v in anchor.items()})

    def __getitem__(self, key: str) -> Any:
        return memoryview(super().__getitem__(key)).cast("i")


class _PayloadStore(Sequence[list[Any]]):
    """Payload lists pickled in chunks of ``CHUNK`` phrases, decoded on access (and cached).

    Chunking lets pickle share class references and repeated strings inside a chunk;
    decoding on access keeps :meth:`MentionMatcher.load` fast.
    """

    CHUNK = 16

    def __init__(self, blob: bytes, offsets: array, n: int) -> None:
        self.blob, self.offsets, self.n = blob, offsets, n
        self._chunks: dict[int, list[list[Any]]] = {}

    @classmethod
    def pack(cls, payloads: Sequence[list[Any]]) -> _PayloadStore:
        parts: list[bytes] = []
        offsets = array("q", [0])
        pos = 0
        for i in range(0, len(payloads), cls.CHUNK):
            b = pickle.dumps(list(payloads[i : i + cls.CHUNK]), protocol=pickle.HIGHEST_PROTOCOL)
            parts.append(b)
            pos += len(b)
            offsets.append(pos)
        return cls(b"".join(parts), offsets, len(payloads))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> list[Any]:  # type: ignore[override]
        if not 0 <= i < self.n:
            raise IndexError(i)
        c, r = divmod(i, self.CHUNK)
        chunk = self._chunks.get(c)
        if chunk is None:
            chunk = self._chunks[c] = pickle.loads(self.blob[self.offsets[c] : self.offsets[c + 1]])
        return chunk[r]


@dataclass(slots=True)
class Mention:
    """A dictionary phrase found in a document.

    Attributes:
        start: start offset into ``doc.text``.
        end: end offset into ``doc.text``.
        text: ``doc.text[start:end]``.
        phrase: the matched normalised phrase.
        payloads: the payloads of every dictionary entry with that normalised phrase.
        sentence: index into ``doc.sentences`` (into the note's non-blank lines when the
            document has no sentence layer).
        section: the section label.
        assertion: one of ``opencac.nlp.assertion.ASSERTIONS``.
        trigger: the assertion trigger (``None`` when affirmed without one).
        attributes: laterality, acuity, episode, stage, type when found.
        score: 1.0 for an exact match; lower for a bag-of-words match.
        kind: ``"exact"`` or ``"bag"``.
        subsumed: the match lies strictly inside a longer match.
        specified: a longer match covering this one (exact, or its words side by side in another
            order) has every word of this phrase and more ("inguinal hernia" over "hernia",
            "hepatitis c" over "hepatitis"): it names a more specific form of the same condition.
    """

    start: int
    end: int
    text: str
    phrase: str
    payloads: list[Any]
    sentence: int = -1
    section: str = ""
    assertion: str = "affirmed"
    trigger: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    score: float = 1.0
    kind: str = "exact"
    subsumed: bool = False
    specified: bool = False


class MentionMatcher:
    """Whole-token dictionary matching over normalised text.

    Use :meth:`build` to compile one from ``(phrase, payload)`` pairs, :meth:`save` /
    :meth:`load` to cache it.

    Args:
        stop_phrases: one-word normalised phrases never reported alone.
        bag: also report bag-of-content-words matches.
        bag_max_tokens: longest phrase (content words) matched as a bag.
    """

    def __init__(
        self,
        stop_phrases: Iterable[str] = DEFAULT_STOP_PHRASES,
        bag: bool = True,
        bag_max_tokens: int = 6,
    ) -> None:
        self.stop_phrases = frozenset(stop_phrases)
        self.bag = bag
        self.bag_max_tokens = bag_max_tokens
        self.automaton_: Any = None
        self.vocab_: dict[str, str] = {}
        self.phrases_: list[str] = []
        self.payloads_: _PayloadStore | list[list[Any]] = []
        self.bag_keys_: list[str] = []
        self.bag_pids_: list[tuple[int, ...]] = []
        self.bag_anchor_: dict[str, list[int]] = {}

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        entries: Iterable[tuple[str, Any]],
        *,
        stop_phrases: Iterable[str] = DEFAULT_STOP_PHRASES,
        bag: bool = True,
        bag_max_tokens: int = 6,
    ) -> MentionMatcher:
        """Compile a matcher from ``(phrase, payload)`` pairs.

        Args:
            entries: phrases as written (they are normalised here) and any payload.
            stop_phrases: one-word normalised phrases never reported alone.
            bag: also index multiword phrases for bag-of-words matching.
            bag_max_tokens: longest phrase (content words) indexed for bag matching.

        Returns:
            The compiled matcher.
        """
        return cls(stop_phrases=stop_phrases, bag=bag, bag_max_tokens=bag_max_tokens).fit(entries)

    def fit(self, entries: Iterable[tuple[str, Any]]) -> MentionMatcher:
        """Compile the automaton from ``(phrase, payload)`` pairs; returns ``self``.

        Every normalised token gets one character of a private alphabet (``vocab_``, what the
        bag-of-words matching works on), and the automaton's keys spell each token as the two
        characters of :func:`_pair`: whole-token matching by construction, a trie a fraction
        of the size of a character-level one, and no node with thousands of children.
        """
        import ahocorasick

        norm_cache: dict[str, str] = {}
        pid_of: dict[str, int] = {}
        phrases: list[str] = []
        payloads: list[list[Any]] = []
        for phrase, payload in entries:
            norm = norm_cache.get(phrase)
            if norm is None:
                # an index cross-reference kept in the phrase ("Gastrectomy Partial see Excision,
                # Stomach") is not wording a note uses
                bare = _SEE_TAIL.sub("", phrase)
                norm = " ".join(_collapse_repeats([t.norm for t in tokenize(bare, MATCH_STOPWORDS)]))
                norm_cache[phrase] = norm
            if not norm:
                continue
            pid = pid_of.get(norm)
            if pid is None:
                if " " not in norm and (norm in self.stop_phrases or len(norm) < 3 or norm.isdigit()):
                    continue
                pid = pid_of[norm] = len(phrases)
                phrases.append(norm)
                payloads.append([])
            payloads[pid].append(payload)
        del norm_cache, pid_of
        vocab: dict[str, str] = {}
        automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for pid, norm in enumerate(phrases):
            key = "".join(_pair(vocab.get(w) or vocab.setdefault(w, _char(len(vocab)))) for w in norm.split(" "))
            automaton.add_word(key, pid)
        automaton.make_automaton()
        self.automaton_ = automaton
        self.vocab_ = vocab
        self.__dict__.pop("_pairs", None)
        self.phrases_ = phrases
        self.payloads_ = payloads
        if self.bag:
            self._build_bags()
        return self

    def _build_bags(self) -> None:
        vocab = self.vocab_
        ignore = {vocab[w] for w in _BAG_IGNORE if w in vocab}
        groups: dict[str, list[int]] = defaultdict(list)
        for pid, norm in enumerate(self.phrases_):
            words = norm.split(" ")
            if len(words) < 2 or any(w in _BAG_BLOCK or w in _BAG_PROSE for w in words) or words[-1] in _BAG_DANGLING:
                continue
            content = "".join(sorted({vocab[w] for w in words} - ignore))
            if len(content) < 2 or len(content) > self.bag_max_tokens:
                continue
            groups[content].append(pid)
        freq: dict[str, int] = defaultdict(int)
        for content in groups:
            for c in content:
                freq[c] += 1
        keys: list[str] = []
        pids_out: list[tuple[int, ...]] = []
        anchor: dict[str, list[int]] = defaultdict(list)
        for content, pids in groups.items():
            a, b = sorted(sorted(content, key=lambda c: (freq[c], c))[:2])
            anchor[a + b].append(len(keys))  # the two rarest tokens, in code-point order
            keys.append(content)
            pids_out.append(tuple(pids))
        self.bag_keys_ = keys
        self.bag_pids_ = pids_out
        self.bag_anchor_ = dict(anchor)
        self.__dict__.pop("_partner_index", None)

    def __len__(self) -> int:
        return len(self.phrases_)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the compiled matcher to ``path`` (one file; payloads must pickle).

        Payloads are stored one pickled record per phrase and decoded only when a
        phrase matches, so loading stays fast with hundreds of thousands of payloads.
        """
        if self.automaton_ is None:
            raise ModelFormatError("the mention matcher is not built; nothing to save.")
        store = self.payloads_ if isinstance(self.payloads_, _PayloadStore) else _PayloadStore.pack(self.payloads_)
        flat = array("i")
        offs = array("q", [0])
        for pids in self.bag_pids_:
            flat.extend(pids)
            offs.append(len(flat))
        state = {
            "format": FORMAT_VERSION,
            "params": {"stop_phrases": sorted(self.stop_phrases), "bag": self.bag,
                       "bag_max_tokens": self.bag_max_tokens},
            "automaton": self.automaton_,
            "vocab": "\n".join(f"{w}\t{c}" for w, c in self.vocab_.items()),
            "phrases": _Lines.pack(self.phrases_).state(),
            "payload_blob": store.blob,
            "payload_offsets": store.offsets.tobytes(),
            "payload_count": len(store),
            "bag_keys": _Lines.pack(self.bag_keys_).state(),
            "bag_pids": (flat.tobytes(), offs.tobytes()),
            "bag_anchor": _Anchors.pack(self.bag_anchor_),
        }
        # atomically, through a temporary file of this writer's own (``write_pickle``): processes
        # that compile the same dictionary at once (test workers, batch workers on a fresh cache)
        # must not write into one temporary file or rename it from under each other
        write_pickle(state, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> MentionMatcher:
        """Load a matcher written by :meth:`save`.

        Raises:
            ModelFormatError: the file is missing, not a saved matcher, or another format version.
        """
        p = Path(path)
        try:
            state = read_pickle(p)  # millions of small objects: the collector paused
        except FileNotFoundError:
            raise ModelFormatError(f"mention matcher file {str(p)!r} does not exist.") from None
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a format error
            raise ModelFormatError(f"{str(p)!r} is not a saved mention matcher ({type(exc).__name__}).") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
            raise ModelFormatError(
                f"{str(p)!r} is not a mention matcher of format {FORMAT_VERSION}; rebuild it with MentionMatcher.build."
            )
        m = cls(**state["params"])
        m.automaton_ = state["automaton"]
        m.vocab_ = dict(line.split("\t", 1) for line in state["vocab"].split("\n")) if state["vocab"] else {}
        m.phrases_ = _Lines.from_state(state["phrases"])  # type: ignore[assignment]
        offsets = array("q")
        offsets.frombytes(state["payload_offsets"])
        m.payloads_ = _PayloadStore(state["payload_blob"], offsets, state["payload_count"])
        m.bag_keys_ = _Lines.from_state(state["bag_keys"])  # type: ignore[assignment]
        flat, offs = array("i"), array("q")
        flat.frombytes(state["bag_pids"][0])
        offs.frombytes(state["bag_pids"][1])
        m.bag_pids_ = _Ragged(flat, offs)  # type: ignore[assignment]
        m.bag_anchor_ = state["bag_anchor"]
        return m

    # -- matching -------------------------------------------------------------------------
    def _encode(self, tokens: list[Token]) -> str:
        vocab = self.vocab_
        return "".join(vocab.get(t.norm, _UNKNOWN) for t in tokens)

    def _exact(self, enc: str) -> Iterator[tuple[int, int, int]]:
        """Yield ``(pid, first token, last token)`` for every whole-token match."""
        phrases = self.phrases_
        if not phrases:
            return
        pairs = self.__dict__.get("_pairs")
        if pairs is None:
            pairs = self.__dict__["_pairs"] = {_UNKNOWN: _UNKNOWN_PAIR}
        try:
            keys = "".join(map(pairs.__getitem__, enc))
        except KeyError:  # tokens not seen yet (filled as notes come: one note needs a few hundred)
            for c in enc:
                if c not in pairs:
                    pairs[c] = _pair(c)
            keys = "".join(map(pairs.__getitem__, enc))
        for end_idx, pid in self.automaton_.iter(keys):
            last = end_idx >> 1
            yield pid, last - phrases[pid].count(" "), last

    def _bags(self, enc: str, exact_pids: set[int]) -> Iterator[tuple[int, tuple[int, ...], tuple[int, ...]]]:
        """Yield ``(bag id, phrase ids, token indices)`` for bag-of-words matches in one sentence.

        Bags are indexed by their two rarest tokens: every pair of distinct sentence
        tokens is looked up, then the bag's other tokens are checked.
        """
        where: dict[str, list[int]] = defaultdict(list)
        for i, c in enumerate(enc):
            if c != _UNKNOWN:
                where[c].append(i)
        if len(where) < 2:
            return
        keys, bag_pids, anchor = self.bag_keys_, self.bag_pids_, self.bag_anchor_
        chars = sorted(where)
        partners = self._partners()
        if partners is None:
            pairs: Iterable[tuple[str, str]] = ((a, b) for i, a in enumerate(chars) for b in chars[i + 1 :])
        else:  # the same pairs in the same order, without trying every pair of the sentence
            pairs = ((a, b) for a in chars if a in partners for b in sorted(partners[a].intersection(where)))
        for a, b in pairs:
            bids = anchor.get(a + b)
            if not bids:
                continue
            for bid in bids:
                content = keys[bid]
                if len(content) > 2 and not all(map(where.__contains__, content)):
                    continue
                pids = tuple(p for p in bag_pids[bid] if p not in exact_pids)
                if not pids:
                    continue
                ref = where[a][0]
                idx = tuple(sorted(min(where[x], key=lambda k: abs(k - ref)) for x in content))
                if idx[-1] - idx[0] + 1 > 4 * len(content) + 2:
                    continue
                yield bid, pids, idx

    #: After this many notes a matcher indexes each bag anchor's partner tokens (~0.05 s once),
    #: so that a sentence's token pairs are not all tried; single notes skip the index.
    PARTNER_INDEX_AFTER = 8

    def _partners(self) -> dict[str, set[str]] | None:
        partners = self.__dict__.get("_partner_index")
        if partners is None and self.__dict__.get("_n_found", 0) >= self.PARTNER_INDEX_AFTER:
            built: dict[str, set[str]] = defaultdict(set)
            for key in self.bag_anchor_:
                built[key[0]].add(key[1])
            partners = self.__dict__["_partner_index"] = dict(built)
        return partners

    def find(
        self,
        doc: Document,
        *,
        overlapping: bool = True,
        bag: bool | None = None,
        assertion: bool = True,
        attributes: bool = True,
        keep: Callable[[Any], bool] | None = None,
        within_for: Callable[[Any], bool] | None = None,
    ) -> list[Mention]:
        """Find the mentions of dictionary phrases in an analysed document.

        Args:
            doc: a document from :func:`opencac.nlp.analyze` (sentences and sections filled;
                a document without sentences is treated as one sentence per line).
            overlapping: keep matches inside longer matches (flagged ``subsumed``); when
                False only the longest (unsubsumed) matches are returned.
            bag: report bag-of-words matches (default: as built).
            assertion: fill ``assertion`` / ``trigger``.
            attributes: fill ``attributes``.
            keep: return only mentions with at least one payload for which ``keep(payload)`` is
                true (e.g. one code system's); the others still count when deciding which
                matches are ``subsumed``, so the kept mentions are exactly as without the filter.
            within_for: a bag-of-words match whose words lie apart takes the negation or
                uncertainty of a trigger between them (:func:`opencac.nlp.assertion.assert_within`)
                when every payload passes this test (default: always). A procedure's match wants
                none: "MRI showed no brain lesions" was an MRI of the brain.

        Returns:
            Mentions sorted by start offset, then longest first.
        """
        if self.automaton_ is None:
            raise ModelFormatError("the mention matcher is not built; call MentionMatcher.build first.")
        self.__dict__["_n_found"] = self.__dict__.get("_n_found", 0) + 1
        use_bag = self.bag if bag is None else bag
        sentences = doc.sentences or _line_spans(doc.text)
        sec_starts = [s.start for s in doc.sections]
        out: list[Mention] = []
        text = doc.text
        units: list[tuple[int, Span, list[Token]]] = []
        # a heading names its section ("Investigations:" is no Z04.9), except a test's name heading
        # its results ("Echocardiogram:"): that test was done
        heads = {(h.start, h.end) for h in doc.headings if h.label not in ("imaging", "labs")}
        for si, sent in enumerate(sentences):
            if heads:
                raw = text[sent.start:sent.end]
                if (sent.start + len(raw) - len(raw.lstrip()), sent.start + len(raw.rstrip())) in heads:
                    continue
            all_tokens = tokenize(text[sent.start : sent.end], MATCH_STOPWORDS)
            for chunk in _chunks(all_tokens, text, sent.start):
                units.append((si, sent, chunk))
        for si, sent, tokens in units:
            enc = self._encode(tokens)
            found: list[tuple[frozenset[int], Mention]] = []
            exact_pids: set[int] = set()
            for pid, a, b in self._exact(enc):
                exact_pids.add(pid)
                s0, e0 = sent.start + tokens[a].start, sent.start + tokens[b].end
                found.append((frozenset(range(a, b + 1)),
                              Mention(s0, e0, text[s0:e0], self.phrases_[pid], self.payloads_[pid], si)))
            if use_bag and self.bag_anchor_:
                for bid, pids, idx in self._bags(enc, exact_pids):
                    if idx[-1] - idx[0] + 1 > len(idx) and any(tokens[k].norm in _BAG_GAP_NEGATORS
                                                               for k in range(idx[0] + 1, idx[-1])):
                        # "X without Y" is not the phrase "X with Y"; a phrase without "with"
                        # ("MRI brain" in "MRI showed no brain lesions") still matches
                        pids = tuple(p for p in pids if " with " not in f" {self.phrases_[p]} ")
                        if not pids:
                            continue
                    s0, e0 = sent.start + tokens[idx[0]].start, sent.start + tokens[idx[-1]].end
                    if ";" in text[s0:e0]:
                        continue  # a semicolon separates list items ("type 2 diabetes; ...; CKD stage")
                    if _coordinated(tokens, idx, text, sent.start):
                        # "blood and urine tests" names two things; the phrase "blood in urine" one
                        pids = tuple(p for p in pids if not _RELATION_RE.search(self.phrases_[p]))
                        if not pids:
                            continue
                    width = idx[-1] - idx[0] + 1
                    score = round(0.25 + 0.5 * len(self.bag_keys_[bid]) / max(width, len(idx)), 4)
                    for pid in pids:
                        found.append((frozenset(idx), Mention(s0, e0, text[s0:e0], self.phrases_[pid],
                                                              self.payloads_[pid], si, score=score, kind="bag")))
            if not found:
                continue
            wider = _whole_words(tokens, [toks for toks, _ in found])
            for k, (toks, m) in enumerate(found):
                m.subsumed = any(toks < other or (wider is not None and wider[k] < wider[j])
                                 for j, (other, _) in enumerate(found) if j != k)
                if m.subsumed:
                    words = set(m.phrase.split(" ")) - _BAG_IGNORE  # "unspecified kidney failure"
                    # over an exact match, or a bag of its words side by side ("renal transplant")
                    m.specified = bool(words) and any(toks < other and (o.kind == "exact" or o.score >= 0.75)
                                                      and words < set(o.phrase.split(" ")) for other, o in found)
            section = _section_label(doc.sections, sec_starts, sent.start)
            done: dict[tuple[int, int], tuple[str, str, str | None, dict[str, str]]] = {}
            for _, m in found:
                if not overlapping and m.subsumed:
                    continue
                if keep is not None and not any(map(keep, m.payloads)):
                    continue
                got = done.get((m.start, m.end))
                if got is None:
                    sec = _section_label(doc.sections, sec_starts, m.start) if sec_starts else section
                    a, trig = assert_span(doc, m.start, m.end, sentence=sent, section=sec) if assertion \
                        else ("affirmed", None)
                    attrs = extract_attributes(doc, m.start, m.end, sentence=sent) if attributes else {}
                    got = done[(m.start, m.end)] = (sec, a, trig, attrs)
                m.section, m.assertion, m.trigger = got[0], got[1], got[2]
                if m.kind == "bag" and assertion and got[1] in ("affirmed", "historical") and (
                        within_for is None or all(map(within_for, m.payloads))):
                    within = assert_within(doc, m.start, m.end, m.phrase, sentence=sent)
                    if within is not None:
                        m.assertion, m.trigger = within
                m.attributes = dict(got[3])
                out.append(m)
        out.sort(key=lambda m: (m.start, -(m.end - m.start), -m.score))
        return out


#: A phrase relating its words ("blood in urine", "insomnia due to depression"); not "with", which
#: ICD-10-CM reads as "and" ("nausea with vomiting", I.A.15).
_RELATION_RE = re.compile(r" (?:in|of|to|from|on|into) ")
_COORDINATORS = frozenset({"and", "or", "nor"})


def _coordinated(tokens: list[Token], idx: Sequence[int], text: str, base: int) -> bool:
    """Whether two neighbouring words of a bag match are joined only by a coordinator or a
    comma ("blood and urine", "blood, urine"): items of a list, not one phrase's words."""
    for a, b in zip(idx, idx[1:]):
        gap = [tokens[k].norm for k in range(a + 1, b)]
        if gap and all(g in _COORDINATORS for g in gap):
            return True
        if not gap and "," in text[base + tokens[a].end:base + tokens[b].start]:
            return True
    return False


#: Longest run of tokens matched as one unit; longer sentences (a note without punctuation or
#: line breaks) are cut, preferably after a comma/semicolon/colon, to keep matching linear.
MAX_UNIT_TOKENS = 120


def _chunks(tokens: list[Token], text: str, base: int) -> list[list[Token]]:
    """Split a sentence's tokens into units of at most :data:`MAX_UNIT_TOKENS` tokens."""
    if len(tokens) <= MAX_UNIT_TOKENS:
        return [tokens] if tokens else []
    out: list[list[Token]] = []
    i = 0
    while i < len(tokens):
        j = min(len(tokens), i + MAX_UNIT_TOKENS)
        if j < len(tokens):
            for k in range(j - 1, max(i, j - 40), -1):  # cut after punctuation if there is some
                gap = text[base + tokens[k].end : base + tokens[k + 1].start]
                if any(c in gap for c in ",;:()"):
                    j = k + 1
                    break
        out.append(tokens[i:j])
        i = j
    return out


def _collapse_repeats(words: list[str]) -> list[str]:
    """Drop an immediately repeated run of words: a phrase that spells out an abbreviation
    ("Human immunodeficiency virus (HIV) disease") normalises to the expansion twice."""
    i = 0
    out = list(words)
    while i < len(out):
        for n in (4, 3, 2, 1):
            if i + 2 * n <= len(out) and out[i : i + n] == out[i + n : i + 2 * n]:
                del out[i + n : i + 2 * n]
                break
        else:
            i += 1
    return out


def _line_spans(text: str) -> list[Span]:
    spans: list[Span] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if body.strip():
            spans.append(Span(pos, pos + len(body), "sentence"))
        pos += len(line)
    return spans


def _section_label(sections: list[Span], starts: list[int], offset: int) -> str:
    i = bisect.bisect_right(starts, offset) - 1
    if i >= 0 and sections[i].start <= offset < sections[i].end:
        return sections[i].label
    return ""
