"""A pairwise LLM judge with MT-Bench's published prompts, judged in both answer orders.

The prompts are FastChat's ``judge_prompts.jsonl`` (lm-sys/FastChat, ``fastchat/llm_judge/data``,
Apache-2.0): ``pair-v2`` for general questions, ``pair-math-v1`` when a reference answer is
given. They are read from that file (give its path, or set ``ROUTELLM_JUDGE_PROMPTS``); the
project does not vendor data files.

Each pair of answers is judged twice, once in each order, to cancel the judge's position bias
(as in MT-Bench): when the two verdicts disagree the result is a tie. A verdict is parsed as
FastChat does (``[[A]]``, ``[[B]]``, ``[[C]]`` for a tie); an unparsable verdict is asked again
(``retries`` times) and then recorded as unparsable, never guessed.

Example:
    >>> import asyncio
    >>> from routellm_core.learning.judge import JudgePrompt, PairwiseJudge
    >>> prompt = JudgePrompt(name="pair-v2", system="Judge.", template="{question}|{answer_a}|{answer_b}")
    >>> async def judge_model(system, user):   # prefers the longer answer
    ...     q, a, b = user.split("|")
    ...     return "[[A]]" if len(a) > len(b) else "[[B]]"
    >>> v = asyncio.run(PairwiseJudge(judge_model, {"pair-v2": prompt}).compare("q", "long answer", "short"))
    >>> v.winner, v.first, v.second
    ('a', 'a', 'a')
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routellm_core.errors import JudgeError
from routellm_core.learning.models import ChatFn, Generation, as_chat_fn, model_name

JUDGE_PROMPTS_ENV = "ROUTELLM_JUDGE_PROMPTS"
GENERAL_PROMPT = "pair-v2"
REFERENCE_PROMPT = "pair-math-v1"
_MAX_PROMPT_FILE = 1 << 20
TEMPLATE_FIELDS = ("question", "answer_a", "answer_b")
OPTIONAL_TEMPLATE_FIELDS = ("ref_answer_1",)


@dataclass(frozen=True)
class JudgePrompt:
    """One pairwise judge prompt: a system prompt and a template with ``{question}``,
    ``{answer_a}``, ``{answer_b}`` (and ``{ref_answer_1}`` for the reference variant)."""

    name: str
    system: str
    template: str

    def render(self, question: str, answer_a: str, answer_b: str, reference: str | None = None) -> str:
        values = {"question": question, "answer_a": answer_a, "answer_b": answer_b, "ref_answer_1": reference or ""}
        return self.template.format(**values)

    def check(self) -> None:
        """Refuse a template the judge could not use, before any model is paid for: a placeholder
        other than ``{question}``, ``{answer_a}``, ``{answer_b}``, ``{ref_answer_1}`` (literal
        braces are written ``{{`` ``}}``), or one without the question and both answers.

        Raises:
            JudgeError: naming the prompt and the placeholder.
        """
        if not isinstance(self.template, str) or not isinstance(self.system, str):
            raise JudgeError(f"judge prompt {self.name!r}: the system prompt and template must be str")
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.template) if f is not None]
        except ValueError as exc:  # a lone '{' or '}'
            raise JudgeError(f"judge prompt {self.name!r} is not a valid template ({exc}); write literal braces "
                             "as '{{' and '}}'") from None
        allowed = (*TEMPLATE_FIELDS, *OPTIONAL_TEMPLATE_FIELDS)
        unknown = sorted({f for f in fields if f not in allowed})
        if unknown:
            shown = ", ".join("{" + f + "}" for f in unknown)
            raise JudgeError(f"judge prompt {self.name!r} has unknown placeholder(s) {shown}; a template may use "
                             f"{', '.join('{' + f + '}' for f in allowed)} (write literal braces as '{{{{' '}}}}')")
        missing = [f for f in TEMPLATE_FIELDS if f not in fields]
        if missing:
            raise JudgeError(f"judge prompt {self.name!r} lacks {', '.join('{' + f + '}' for f in missing)}: the "
                             "judge would not see the question and both answers")
        try:
            self.render("q", "a", "b", "r")
        except (ValueError, KeyError, IndexError, AttributeError) as exc:  # e.g. a nested field in a format spec
            raise JudgeError(f"judge prompt {self.name!r} does not render ({type(exc).__name__}: {exc})") from None


def load_judge_prompts(path: str | os.PathLike[str] | None = None) -> dict[str, JudgePrompt]:
    """The single-turn pairwise prompts of a FastChat ``judge_prompts.jsonl``: the file at
    ``path``, else at ``$ROUTELLM_JUDGE_PROMPTS``.

    Raises:
        JudgeError: no path, an unreadable or oversized file, malformed lines, or a file
            without ``pair-v2`` / ``pair-math-v1``.
    """
    path = path or os.environ.get(JUDGE_PROMPTS_ENV)
    if not path:
        raise JudgeError(f"give the judge prompts file (FastChat's fastchat/llm_judge/data/judge_prompts.jsonl, "
                         f"Apache-2.0) with --judge-prompts or ${JUDGE_PROMPTS_ENV}")
    p = Path(path)
    if not p.is_file():
        raise JudgeError(f"judge prompts file {str(p)!r} does not exist")
    if p.stat().st_size > _MAX_PROMPT_FILE:
        raise JudgeError(f"judge prompts file {str(p)!r} is larger than {_MAX_PROMPT_FILE} bytes")
    prompts: dict[str, JudgePrompt] = {}
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row.get("type") == "pairwise" and "multi-turn" not in row["name"]:
                prompts[row["name"]] = JudgePrompt(row["name"], str(row["system_prompt"]),
                                                   str(row["prompt_template"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise JudgeError(f"{p}: line {i} is not a judge prompt ({type(exc).__name__}: {exc})") from None
    for prompt in prompts.values():
        try:
            prompt.check()
        except JudgeError as exc:
            raise JudgeError(f"{p}: {exc}") from None
    missing = [n for n in (GENERAL_PROMPT, REFERENCE_PROMPT) if n not in prompts]
    if missing:
        raise JudgeError(f"{p} has no pairwise prompt {missing}; found {sorted(prompts)}")
    return prompts


def parse_verdict(text: str) -> str | None:
    """``"A"``, ``"B"`` or ``"C"`` (a tie) as FastChat parses a pairwise verdict; ``None`` when
    the text holds none.

    Example:
        >>> parse_verdict("B explains why. [[B]]"), parse_verdict("no verdict")
        ('B', None)
    """
    for mark in ("A", "B", "C"):
        if f"[[{mark}]]" in text:
            return mark
    return None


@dataclass(frozen=True)
class Verdict:
    """The judge's result for one question: ``winner`` is ``"a"`` (the first model's answer),
    ``"b"``, ``"tie"``, or ``None`` when a verdict stayed unparsable; ``first`` / ``second``
    are the verdicts of each order, mapped onto the models (``"a"`` / ``"b"`` / ``"tie"`` /
    ``None``)."""

    winner: str | None
    first: str | None
    second: str | None
    prompt: str
    judge: str
    raw_first: str
    raw_second: str
    calls: tuple[Generation, ...]


class PairwiseJudge:
    """Compare two answers with an LLM judge, in both orders.

    Args:
        model: the judge (a LangChain chat model, a LlamaIndex LLM or an async function).
        prompts: from :func:`load_judge_prompts` (each template is checked here,
            :meth:`JudgePrompt.check`).
        retries: how often an unparsable verdict is asked again.

    Raises:
        JudgeError: a missing prompt or an unusable template; ValueError: ``retries < 0``.
    """

    def __init__(self, model: Any, prompts: Mapping[str, JudgePrompt], *, retries: int = 2) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        for name in (GENERAL_PROMPT, REFERENCE_PROMPT):
            if name not in prompts and not (name == REFERENCE_PROMPT and GENERAL_PROMPT in prompts):
                raise JudgeError(f"the judge needs the {name!r} prompt")
        for prompt in prompts.values():
            if not isinstance(prompt, JudgePrompt):
                raise JudgeError(f"a judge prompt must be a JudgePrompt, got {type(prompt).__name__}")
            prompt.check()
        self.fn = as_chat_fn(model)
        self.name = model_name(model)
        self.prompts = dict(prompts)
        self.retries = retries

    async def _verdict(self, prompt: JudgePrompt, question: str, a: str, b: str,
                       reference: str | None, calls: list[Generation], ask: ChatFn) -> tuple[str | None, str]:
        text = ""
        for _ in range(self.retries + 1):
            gen = await ask(prompt.system, prompt.render(question, a, b, reference))
            calls.append(gen)
            text = gen.text
            verdict = parse_verdict(text)
            if verdict is not None:
                return verdict, text
        return None, text

    async def compare(self, question: str, answer_a: str, answer_b: str, reference: str | None = None, *,
                      ask: Callable[[str | None, str], Awaitable[Generation]] | None = None) -> Verdict:
        """Judge ``answer_a`` (model a) against ``answer_b`` (model b), both orders.

        ``ask`` makes each single judge call in place of the judge model itself (the labellers
        pass one that checks the budget before the call, retries a transient error of that one
        call, and charges it as it returns, so every order and re-ask is counted)."""
        prompt = self.prompts[REFERENCE_PROMPT if reference else GENERAL_PROMPT]
        calls: list[Generation] = []
        ask = ask or self.fn
        v1, raw1 = await self._verdict(prompt, question, answer_a, answer_b, reference, calls, ask)
        v2, raw2 = await self._verdict(prompt, question, answer_b, answer_a, reference, calls, ask)
        first = {"A": "a", "B": "b", "C": "tie"}.get(v1 or "")
        second = {"A": "b", "B": "a", "C": "tie"}.get(v2 or "")
        if first is None or second is None:
            winner = None
        else:
            winner = first if first == second else "tie"
        return Verdict(winner=winner, first=first, second=second, prompt=prompt.name, judge=self.name,
                       raw_first=raw1, raw_second=raw2, calls=tuple(calls))


__all__ = ["JUDGE_PROMPTS_ENV", "JudgeError", "JudgePrompt", "PairwiseJudge", "Verdict", "load_judge_prompts",
           "parse_verdict"]
