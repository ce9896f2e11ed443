"""Boilerplate shared across a data set's prompts, found from the data and stripped before comparing.

Data sets wrap their questions in instructions: LLMRouter appends "After careful thought, put
you final answer in \\boxed{...}." to every GSM8K-style question, MMLU prompts end in
``Answer:``. Two copies of one question under different templates are the same question, so
decontamination compares what is left when the lines a data set repeats across many of its
prompts are removed.

A line is boilerplate when, stripped of surrounding whitespace, it occurs in at least
``min_share`` of a data set's distinct prompts and in at least ``min_count`` of them. Stripping
removes those lines; a prompt made only of boilerplate is kept as it is, so that nothing is
compared as empty.

Example:
    >>> from routellm_core.data.templates import SharedBoilerplate
    >>> suffix = "After careful thought, put your answer in a box."
    >>> prompts = [f"Question {i}: what is {i} + {i}?\\n{suffix}" for i in range(10)]
    >>> boiler = SharedBoilerplate.find(prompts)
    >>> sorted(boiler.lines)
    ['After careful thought, put your answer in a box.']
    >>> boiler.strip(prompts[3])
    'Question 3: what is 3 + 3?'
    >>> boiler.strip(suffix)  # nothing but boilerplate: kept whole
    'After careful thought, put your answer in a box.'

Routers do the same to what they read (:class:`QueryTemplateStripping`): with
``strip_templates`` on, they learn the lines their training prompts share and strip them from
every text before it is embedded or scored, in training and on live traffic alike.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["QueryTemplateStripping", "SharedBoilerplate", "normalize_text", "queries_by_source", "text_digests"]

_NON_ALNUM = re.compile(r"[\W_]+")
MAX_LINES = 100_000  # bounds what a checkpoint's template may hold
MAX_LINE_CHARS = 100_000


def normalize_text(text: str) -> str:
    """Lower-case and collapse every run of non-alphanumerics to one space.

    Example:
        >>> normalize_text("  What's 2+2?\\n")
        'what s 2 2'
    """
    return _NON_ALNUM.sub(" ", text.lower()).strip()


def text_digests(texts: Sequence[str]) -> np.ndarray:
    """A 64-bit digest of each text's normalised form (lower-case, runs of non-alphanumerics
    collapsed to one space), as ``int64``: two texts that differ only in case, spacing or
    punctuation get the same digest. Checkpoints keep these, not the texts, to show which
    questions they were trained on.

    Example:
        >>> a, b, c = text_digests(["What is 2+2?", "what is 2 + 2", "What is 2+3?"])
        >>> bool(a == b), bool(a == c)
        (True, False)
    """
    out = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        norm = normalize_text(text)
        out[i] = int.from_bytes(
            hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
            "little",
            signed=True,
        )
    return out


def queries_by_source(battles: Any) -> list[list[str]]:
    """The ``query`` column of a battles frame, one list per ``source`` (one list without it):
    the groups whose shared lines :meth:`SharedBoilerplate.find_in_groups` looks for."""
    if "source" not in battles.columns:
        return [battles["query"].tolist()]
    return [g.tolist() for _, g in battles.groupby("source", sort=False)["query"]]


@dataclass(frozen=True)
class SharedBoilerplate:
    """The lines that a set of prompts shares; :meth:`find` learns them, :meth:`strip` removes them.

    Attributes:
        lines: the boilerplate lines, stripped of surrounding whitespace.
    """

    lines: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def find(
        cls, texts: Iterable[str], *, min_share: float = 0.01, min_count: int = 3
    ) -> SharedBoilerplate:
        """The lines found in at least ``min_share`` of the distinct ``texts`` and at least
        ``min_count`` of them."""
        if not 0.0 < min_share <= 1.0:
            raise ValueError(f"min_share must be in (0, 1], got {min_share!r}")
        if not isinstance(min_count, int) or min_count < 2:
            raise ValueError(f"min_count must be an integer >= 2, got {min_count!r}")
        distinct = {t for t in texts if isinstance(t, str)}
        counts: Counter[str] = Counter()
        for text in distinct:
            counts.update({line.strip() for line in text.splitlines()} - {""})
        floor = max(min_count, min_share * len(distinct))
        return cls(frozenset(line for line, n in counts.items() if n >= floor))

    @classmethod
    def find_in_groups(cls, groups: Iterable[Iterable[str]]) -> SharedBoilerplate:
        """The union of the boilerplate of each group (say, each data source) found alone."""
        found = cls()
        for texts in groups:
            found = found | cls.find(texts)
        return found

    @classmethod
    def from_lines(cls, lines: object, *, where: str = "template lines") -> SharedBoilerplate:
        """The template saved as a list of lines (a checkpoint's ``query_template``); a
        ``ValueError`` naming ``where`` for anything but a bounded list of non-empty strings."""
        if not isinstance(lines, list) or len(lines) > MAX_LINES:
            raise ValueError(f"{where} must be a list of at most {MAX_LINES} strings, got {lines!r:.80}")
        bad = [x for x in lines if not (isinstance(x, str) and x.strip() and len(x) <= MAX_LINE_CHARS)]
        if bad:
            raise ValueError(f"{where} must hold non-empty strings of at most {MAX_LINE_CHARS} "
                             f"characters, got {bad[0]!r:.80}")
        return cls(frozenset(line.strip() for line in lines))

    def to_lines(self) -> list[str]:
        """The lines, sorted (what a checkpoint saves)."""
        return sorted(self.lines)

    def __or__(self, other: SharedBoilerplate) -> SharedBoilerplate:
        return SharedBoilerplate(self.lines | other.lines)

    def strip(self, text: str) -> str:
        """``text`` without its boilerplate lines (``text`` itself when nothing else is left)."""
        if not self.lines:
            return text
        kept = [line for line in text.splitlines() if line.strip() not in self.lines]
        rest = "\n".join(kept).strip()
        return rest if rest else text

    def strip_all(self, texts: Iterable[str]) -> list[str]:
        """:meth:`strip` of each text, each distinct text stripped once."""
        texts = list(texts)
        if not self.lines:
            return texts
        done: dict[str, str] = {}
        return [
            (done[t] if t in done else done.setdefault(t, self.strip(t))) if isinstance(t, str) else t
            for t in texts
        ]


class QueryTemplateStripping:
    """What a router reads of a query: the text without the boilerplate its training prompts shared.

    A base of every router (through :class:`~routellm_core.estimator.EstimatorParams`). With its
    ``strip_templates`` parameter on, training learns ``query_template_`` (the lines shared within
    each data source) and :meth:`query_text` strips them from every text, in training and on live
    traffic alike; ``query_template_`` is ``None`` until then, and a checkpoint saves it.
    """

    query_template_: SharedBoilerplate | None = None
    strip_templates: bool

    def query_text(self, texts: Sequence[str]) -> list[str]:
        """The text the router reads for each of ``texts``: without the lines of its
        ``query_template_`` (a text made only of them is kept whole), unchanged when it has none.

        Example:
            >>> from routellm_core.data.schema import make_battles
            >>> from routellm_core.routers import SWRankingRouter
            >>> shot = "Q: 1+1? A: 2"
            >>> rows = [{"query": f"{shot}\\nQ: {i}*{i}? A:", "model_a": "big", "model_b": "small",
            ...          "winner": "ab"[i % 2], "source": "doc"} for i in range(8)]
            >>> sw = SWRankingRouter(strong_model="big", weak_model="small", n_tiers=2).fit(make_battles(rows))
            >>> sw.query_text([f"{shot}\\nQ: 12*12? A:"])
            ['Q: 12*12? A:']
        """
        template = self.query_template_
        return list(texts) if template is None else template.strip_all(texts)

    def _learn_query_template(self, groups: Iterable[Iterable[str]]) -> None:
        """Set ``query_template_`` from the training prompts, grouped by data source (``None``
        unless ``strip_templates`` is on and some lines are shared)."""
        self.query_template_ = None
        if self.strip_templates:
            found = SharedBoilerplate.find_in_groups(groups)
            self.query_template_ = found if found.lines else None
