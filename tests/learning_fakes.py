"""Fake chat models for the labelling tests, importable by path (``tests.learning_fakes:AnswerModel``)
as ``routellm label`` loads models: a strong and a weak answerer, and a judge."""

from __future__ import annotations

from tests.routing_fixtures import HARD

HARD_WORDS = ("prove", "derive", "solve", "compute", "integral", "eigenvalue", "irrational", "integer")


class AnswerModel:
    """Answers with a careful worked solution (``careful=True``) or a one-liner."""

    def __init__(self, model_name: str, careful: bool) -> None:
        self.model_name = model_name
        self.careful = careful

    async def __call__(self, system: str | None, user: str) -> str:
        return f"A careful step-by-step solution of: {user}" if self.careful else "Sure!"


class HardnessJudge:
    """Prefers the careful answer on hard questions (maths, proofs); calls the rest a tie."""

    model_name = "hardness-judge"

    async def __call__(self, system: str | None, user: str) -> str:
        question = user.split("[The Start of Assistant A's Answer]")[0].lower()
        if not any(w in question for w in HARD_WORDS):
            return "Both answers are fine. [[C]]"
        a = user.split("[The Start of Assistant A's Answer]")[1].split("[The End of Assistant A's Answer]")[0]
        return "[[A]]" if "careful" in a else "[[B]]"


def prompts(copies: int = 3) -> list[str]:
    from tests.routing_fixtures import EASY

    tails = ["", " Please answer.", " Be thorough.", " Thanks!", " Quickly."]
    return [f"{q}{tails[i]}" for i in range(copies) for q in (*HARD, *EASY)]


__all__ = ["HARD", "AnswerModel", "HardnessJudge", "prompts"]
