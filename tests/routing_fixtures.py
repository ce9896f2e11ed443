"""Small, real battle sets the router tests train on (no mocks: the real encoder embeds them)."""

from __future__ import annotations

import pandas as pd

from routellm_core.data.schema import make_battles

HARD = [
    "Prove that there are infinitely many prime numbers.",
    "Derive the closed form of the sum of the first n squares.",
    "Show that the square root of 2 is irrational.",
    "Solve the differential equation y'' + y = 0 with y(0)=1, y'(0)=0.",
    "Compute the eigenvalues of the matrix [[2, 1], [1, 2]].",
    "Prove that every bounded monotone sequence of reals converges.",
    "Find all integer solutions of x^2 - 2y^2 = 1.",
    "Write a proof that the halting problem is undecidable.",
    "Evaluate the integral of x * e^x from 0 to 1.",
    "Prove by induction that 3 divides n^3 - n for every integer n.",
]
EASY = [
    "Hi there!",
    "Say hello to my friend Anna.",
    "Thanks, that was helpful.",
    "What is your name?",
    "Good morning!",
    "Tell me a friendly greeting.",
    "How are you today?",
    "Wish me a nice weekend.",
    "Say goodbye politely.",
    "Reply with a smiley face.",
]


def toy_battles(strong: str = "big-model", weak: str = "small-model", third: str = "mid-model") -> pd.DataFrame:
    """Hard maths: the strong model wins; small talk: a tie or the weak model wins."""
    rows = []
    for q in HARD:
        rows.append({"query": q, "model_a": strong, "model_b": weak, "winner": "a", "source": "toy"})
        rows.append({"query": q, "model_a": third, "model_b": weak, "winner": "a", "source": "toy"})
        rows.append({"query": q, "model_a": strong, "model_b": third, "winner": "a", "source": "toy"})
    for i, q in enumerate(EASY):
        rows.append({"query": q, "model_a": strong, "model_b": weak,
                     "winner": "tie" if i % 2 else "b", "source": "toy"})
        rows.append({"query": q, "model_a": third, "model_b": weak, "winner": "tie", "source": "toy"})
        rows.append({"query": q, "model_a": strong, "model_b": third, "winner": "b", "source": "toy"})
    return make_battles(rows)
