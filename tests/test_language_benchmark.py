"""benchmarks/language.py groups prompts by the script they are written in."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    spec = importlib.util.spec_from_file_location("language_benchmark", ROOT / "benchmarks" / "language.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prompts_are_grouped_by_the_script_most_of_their_letters_use():
    group = _benchmark().script_group
    assert group("Write a haiku about tea.") == "Latin script"
    assert group("Écris un poème sur le thé, s'il te plaît.") == "Latin script"
    assert group("用Python写一个快速排序") == "Chinese, Japanese, Korean"       # Python's letters are fewer
    assert group("お茶についての俳句を書いて") == "Chinese, Japanese, Korean"
    assert group("Напиши хайку о чае") == "Cyrillic"
    assert group("Γράψε ένα χαϊκού") == "other scripts"
    assert group("12345 + 678 = ?") == "other scripts"
