"""The shipped default routers hold no question of the evaluation sets their figures are read on.

The default keeps a digest of each training query's normalised text (with and without the
template lines its training data shares) and the query's embedding; both are checked against
every MMLU, GSM8K and MT-Bench prompt of ``../shared/data/routellm_evals``.
"""

from __future__ import annotations

import numpy as np
import pytest

from routellm_core.checkpoints import load_router
from routellm_core.data.decontaminate import load_eval_prompts
from routellm_core.data.templates import normalize_text

pytestmark = pytest.mark.data


@pytest.fixture(scope="module", params=["default", "default-fast"])
def default(request):
    """Each embedded router: the MiniLM default and ``default-fast`` (same data, static encoder)."""
    return load_router(request.param)


@pytest.fixture(scope="module")
def evals(data_dir):
    return load_eval_prompts(data_dir / "routellm_evals")


def test_trained_on_finds_training_queries_under_their_template(default, data_dir):
    """The check itself: a training query is found as stored, under another case and spacing,
    and under a template line its source shares; a new question is not."""
    from routellm_core.data.gold import load_gold_matrix

    arc = data_dir / "routerdc_7model_and_routerbench_subset" / "routerbench_zs" / "arc_challenge_train.csv"
    query = load_gold_matrix(arc).queries[0]
    instruction = 'Print only a single choice  from "A" or "B" or "C" or "D" without explanation.'
    assert instruction in default.template_lines_ and "Answer:" in default.template_lines_
    assert default.query_digests_.shape == (len(default.query_embeddings_), 2)
    bare = query.replace(f"\n{instruction}\nAnswer:", "")  # the question and its options alone
    assert bare != query
    variants = [query, f"  {query.upper()}  ", bare, "A question no training set had."]
    assert default.trained_on(variants).tolist() == [True, True, True, False]


def test_no_stored_query_is_an_evaluation_prompt(default, evals):
    for bench, prompts in evals.items():
        hits = default.trained_on(prompts)
        found = [prompts[i][:100] for i in np.flatnonzero(hits)]
        assert not found, f"{len(found)} {bench} prompts are among the default's training queries: {found[:3]}"


@pytest.mark.slow
def test_no_stored_embedding_is_an_evaluation_prompt(default, evals):
    """Cosine > 0.999 between an eval prompt and a stored query embedding is a verbatim copy up
    to a character or two (the stored vectors are float16: cosine error about 1e-3)."""
    stored = default.query_embeddings_ / np.linalg.norm(default.query_embeddings_, axis=1, keepdims=True)
    for bench, prompts in evals.items():
        unique = sorted({normalize_text(p): p for p in prompts}.values())
        e = default.encoder_.encode(unique)
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
        best = np.concatenate([(e[i : i + 2048] @ stored.T).max(axis=1) for i in range(0, len(e), 2048)])
        close = [(unique[i][:100], float(best[i])) for i in np.flatnonzero(best > 0.999)]
        assert not close, f"{bench}: {len(close)} prompts have a stored twin: {close[:3]}"
