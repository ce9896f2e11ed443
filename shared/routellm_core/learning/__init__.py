"""Learning from the user's own traffic: label prompts with an LLM judge, store calls, battles
and feedback, and read them back as training data.

- :func:`label` / :func:`alabel` (``routellm label``): both models answer, a pairwise judge
  compares (MT-Bench prompts, both orders), each battle is stored before the next starts.
- :class:`TrafficStore`: calls, battles and feedback in SQLite or any SQLAlchemy database;
  :meth:`TrafficStore.training_battles` is what ``routellm train store:PATH`` reads.
- :class:`PairwiseJudge`, :func:`load_judge_prompts`: the judge.
- :class:`TrafficCapture` and :class:`ShadowLabeller`: what the adapters' ``capture=`` and
  ``shadow=`` settings run, off the call path.

Example:
    >>> from routellm_core.learning import TrafficStore, label, PairwiseJudge
    >>> callable(label)
    True
"""

from routellm_core.learning.capture import TrafficCapture, coerce_capture
from routellm_core.learning.judge import JudgeError, JudgePrompt, PairwiseJudge, Verdict, load_judge_prompts
from routellm_core.learning.label import BudgetSpent, LabelReport, Prompt, alabel, label, read_prompts
from routellm_core.learning.models import Generation, as_chat_fn, load_model, model_name
from routellm_core.learning.shadow import ShadowLabeller
from routellm_core.store import BackgroundWriter, RouterVersion, StoreError, TrafficStore, open_store

__all__ = [
    "BackgroundWriter",
    "BudgetSpent",
    "Generation",
    "JudgeError",
    "JudgePrompt",
    "LabelReport",
    "PairwiseJudge",
    "Prompt",
    "RouterVersion",
    "ShadowLabeller",
    "StoreError",
    "TrafficCapture",
    "TrafficStore",
    "Verdict",
    "alabel",
    "as_chat_fn",
    "coerce_capture",
    "label",
    "load_judge_prompts",
    "load_model",
    "model_name",
    "open_store",
    "read_prompts",
]
