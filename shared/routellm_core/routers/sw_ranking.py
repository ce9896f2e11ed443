"""Similarity-weighted (SW) ranking router.

For a query, every training battle is weighted by how similar its query is to this one,
``w = 10 * 10 ** (sim / max_sim)`` (cosine similarity; the paper's weighting), and a weighted
Bradley-Terry model over *tiers* of models (models grouped by Elo, see
:mod:`routellm_core.data.elo`) gives the strong tier's win rate over the weak tier's.

RouteLLM refits a scikit-learn logistic regression over all battles for every query
(2.9 decisions/s on 8 vCPUs). The likelihood only depends on, for each ordered pair of tiers, the
weighted count of wins; so battles are reduced once, at training time, to a per-query count
matrix ``K`` (unique queries x tier pairs), and a decision costs one similarity product, one
``weights @ K`` and a Newton solve over a handful of tiers. :func:`full_refit_win_rate` is the
per-query refit, kept as the reference the tests compare against.

Example:
    >>> from routellm_core.data.schema import make_battles
    >>> from routellm_core.routers.sw_ranking import SWRankingRouter
    >>> rows = [{"query": q, "model_a": "big", "model_b": "small", "winner": w, "source": "doc"}
    ...         for q, w in [("prove a theorem", "a"), ("say hi", "tie"), ("add 2 and 2", "b")]]
    >>> sw = SWRankingRouter(strong_model="big", weak_model="small").fit(make_battles(rows))
    >>> float(sw.win_rate(["prove a lemma"])[0]) > float(sw.win_rate(["add 3 and 3"])[0])
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from routellm_core.bradley_terry import fit_bradley_terry_batch
from routellm_core.data.templates import SharedBoilerplate, queries_by_source, text_digests
from routellm_core.routers.base import Router
from routellm_core.routers.battles import battle_arrays, check_sample_weight

LN10 = float(np.log(10.0))
SCORE_CHUNK = 256  # queries scored together in win_rate_embeddings
#: Up to this many queries the two products are computed by ``np.einsum`` on the calling thread,
#: not by BLAS: a multi-threaded BLAS call for one query (about 0.5 ms of work) waits for every
#: core it splits onto, and on a busy machine (the encoder's threads, other requests, other
#: processes) that wait was 20 ms or more. Large batches keep BLAS, where threads pay off.
SMALL_BATCH = 8


def similarity_weights(similarities: np.ndarray) -> np.ndarray:
    """The paper's weighting ``10 * 10 ** (sim / max_sim)``, row-wise for a 2-D input."""
    sims = np.atleast_2d(similarities)
    return _similarity_weights_inplace(sims.astype(np.result_type(sims, np.float32)))  # a copy; float32 stays


def _similarity_weights_inplace(sims: np.ndarray) -> np.ndarray:
    """:func:`similarity_weights` of a 2-D float array, written over it (no temporaries)."""
    sims *= LN10 / sims.max(axis=1, keepdims=True)
    np.exp(sims, out=sims)  # 10 ** (sim / max_sim), faster than np.power
    sims *= 10.0
    return sims


def tier_pair_counts(n_queries: int, n_tiers: int, ta: np.ndarray, tb: np.ndarray, q_idx: np.ndarray,
                     label: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-query weighted win counts of every ordered tier pair ``(n_queries, n_tiers**2)``, and
    the mask of battles between two tiers (a battle inside one tier adds nothing to the
    likelihood). RouteLLM duplicates every battle: a win counts twice, a tie once for each side."""
    keep = ta != tb
    counts = np.zeros((n_queries, n_tiers * n_tiers), dtype=np.float64)
    wk = weights[keep]
    np.add.at(counts, (q_idx[keep], ta[keep] * n_tiers + tb[keep]), 2.0 * label[keep] * wk)
    np.add.at(counts, (q_idx[keep], tb[keep] * n_tiers + ta[keep]), 2.0 * (1.0 - label[keep]) * wk)
    return counts, keep


class SWRankingRouter(Router):
    """Similarity-weighted Bradley-Terry ranking over Elo tiers.

    Args:
        n_tiers: number of model tiers (10 in the paper); models are grouped by their Elo
            rating over all training battles.
    """

    router_type: ClassVar[str] = "sw_ranking"
    fitted_attributes: ClassVar[tuple[str, ...]] = ("tiers_", "query_embeddings_", "counts_")
    # None when loaded from a checkpoint saved before digests were kept
    query_digests_: np.ndarray | None

    def __init__(self, *, n_tiers: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_tiers = n_tiers

    def _known_models(self) -> list[str]:
        return sorted(self.tiers_)

    def resolve_pair(
        self, strong_model: str | None = None, weak_model: str | None = None
    ) -> tuple[str, str]:
        strong, weak = super().resolve_pair(strong_model, weak_model)
        if self.tiers_[strong] == self.tiers_[weak]:
            raise ValueError(
                f"{strong!r} and {weak!r} fall in the same Elo tier ({self.tiers_[strong]}), so "
                "the sw_ranking router cannot tell them apart; use more tiers or another pair"
            )
        return strong, weak

    # ----------------------------------------------------------------- learning
    def fit(
        self,
        battles: pd.DataFrame,
        *,
        show_progress: bool = False,
        embeddings: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> SWRankingRouter:
        """Rate models, group them into tiers, and reduce the battles to per-query counts.

        ``sample_weight`` scales each battle's counts (and its weight in the Elo ratings).
        Nothing here is random: ``seed`` has no effect.
        """
        from routellm_core.data.elo import compute_elo, group_tiers

        if len(battles) == 0:
            raise ValueError("cannot train an sw_ranking router on zero battles")
        if embeddings is None:
            battles = self._training_battles(battles)
        else:
            self.query_template_ = None  # the given vectors fix what each query reads
        weights = check_sample_weight(sample_weight, len(battles))
        ratings = compute_elo(battles, sample_weight=weights)
        tiers = {m: int(t) for m, t in group_tiers(ratings, n_tiers=self.n_tiers).items()}
        queries, models, q_idx, a_idx, b_idx, label = battle_arrays(battles)
        if embeddings is None:
            embeddings = self.encoder_.encode(queries, show_progress=show_progress)
        tier_of = np.array([tiers[m] for m in models])
        n_t = int(tier_of.max()) + 1
        counts, keep = tier_pair_counts(len(queries), n_t, tier_of[a_idx], tier_of[b_idx], q_idx, label, weights)
        self.tiers_ = tiers
        self.ratings_ = {m: float(r) for m, r in ratings.items()}
        # Queries whose battles all sit inside one tier stay: they still set max_sim.
        # Embeddings are kept at float16 precision (half the checkpoint; cosine error ~1e-3).
        self.query_embeddings_ = np.asarray(embeddings, dtype=np.float16).astype(np.float32)
        self.counts_ = counts.astype(np.float32)
        self.n_battles_ = int(keep.sum())
        boiler = SharedBoilerplate.find_in_groups(queries_by_source(battles))
        self.template_lines_ = sorted(boiler.lines)
        self.query_digests_ = np.stack(
            [text_digests(queries), text_digests([boiler.strip(q) for q in queries])], axis=1
        )
        return self

    def partial_fit(
        self,
        battles: pd.DataFrame,
        *,
        show_progress: bool = False,
        embeddings: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> SWRankingRouter:
        """Add ``battles`` to a fitted router without refitting: their queries join the
        similarity-weighted evidence, counted on the router's existing Elo tiers. What a new
        label costs is the encoding of its query (a full :meth:`fit` re-rates every model and
        re-encodes every query).

        Model names go through ``aliases``; every model must be one the router has tiered (a
        new model needs a full :meth:`fit`).

        Example:
            >>> from routellm_core.data.schema import make_battles
            >>> rows = [{"query": q, "model_a": "big", "model_b": "small", "winner": w, "source": "doc"}
            ...         for q, w in [("prove a theorem", "a"), ("say hi", "b")]]
            >>> sw = SWRankingRouter(strong_model="big", weak_model="small", n_tiers=2).fit(make_battles(rows))
            >>> before = float(sw.win_rate(["write a haiku"])[0])
            >>> more = make_battles([{"query": "write a haiku about tea", "model_a": "big", "model_b": "small",
            ...                       "winner": "a", "source": "mine"}])
            >>> float(sw.partial_fit(more).win_rate(["write a haiku"])[0]) > before
            True
        """
        from routellm_core.data.schema import canonical_model_name

        self._check_fitted()
        if len(battles) == 0:
            return self
        weights = check_sample_weight(sample_weight, len(battles))
        battles = battles.assign(model_a=[canonical_model_name(m, self.aliases) for m in battles["model_a"]],
                                 model_b=[canonical_model_name(m, self.aliases) for m in battles["model_b"]])
        unknown = sorted((set(battles["model_a"]) | set(battles["model_b"])) - set(self.tiers_))
        if unknown:
            raise ValueError(f"models {unknown} have no Elo tier in this router: map them onto known models with "
                             f"aliases (e.g. {{{unknown[0]!r}: {self.strong_model!r}}}) or refit; known: "
                             f"{sorted(self.tiers_)}")
        if embeddings is None:
            battles = self._training_battles(battles, learn=False)
        queries, models, q_idx, a_idx, b_idx, label = battle_arrays(battles)
        if embeddings is None:
            embeddings = self.encoder_.encode(queries, show_progress=show_progress)
        n_t = int(round(np.sqrt(self.counts_.shape[1])))
        tier_of = np.array([self.tiers_[m] for m in models])
        counts, keep = tier_pair_counts(len(queries), n_t, tier_of[a_idx], tier_of[b_idx], q_idx, label, weights)
        new_emb = np.asarray(embeddings, dtype=np.float16).astype(np.float32)
        self.query_embeddings_ = np.concatenate([self.query_embeddings_, new_emb])
        self.counts_ = np.concatenate([self.counts_, counts.astype(np.float32)])
        self.n_battles_ = int(self.n_battles_ + keep.sum())
        old_digests = getattr(self, "query_digests_", None)
        if old_digests is not None:
            boiler = SharedBoilerplate(frozenset(self.template_lines_))
            digests = np.stack([text_digests(queries), text_digests([boiler.strip(q) for q in queries])], axis=1)
            self.query_digests_ = np.concatenate([old_digests, digests])
        return self

    def trained_on(self, texts: Sequence[str]) -> np.ndarray:
        """Whether each text is one of the training queries: equal after normalisation (case,
        spacing, punctuation) to one of them, with or without the template lines that the
        training data shares (:class:`~routellm_core.data.templates.SharedBoilerplate`).

        The router keeps 64-bit digests of its training queries, not their text. A checkpoint
        saved before digests were kept cannot answer and raises ``ValueError``.
        """
        self._check_fitted()
        digests = getattr(self, "query_digests_", None)
        if digests is None:
            raise ValueError("this sw_ranking checkpoint keeps no query digests: retrain it to check")
        boiler = SharedBoilerplate(frozenset(self.template_lines_))
        known = np.unique(digests)
        texts = self.query_text(texts)
        raw = text_digests(list(texts))
        stripped = text_digests([boiler.strip(t) for t in texts])
        return np.isin(raw, known) | np.isin(stripped, known)

    # ----------------------------------------------------------------- scoring
    def _win_rate(self, texts: list[str], strong: str, weak: str) -> np.ndarray:
        return self.win_rate_embeddings(self.encoder_.encode(texts), strong, weak)

    def win_rate_embeddings(self, embeddings: np.ndarray, strong: str, weak: str) -> np.ndarray:
        """Win rates from query embeddings, for canonical model names (no checks)."""
        n_t = int(np.sqrt(self.counts_.shape[1]))
        s, w = self.tiers_[strong], self.tiers_[weak]
        out = np.full(len(embeddings), np.nan)
        # in chunks, each with one large array written in place: fresh large allocations are
        # slow (page faults) and a chunk stays in cache
        for start in range(0, len(embeddings), SCORE_CHUNK):
            chunk = embeddings[start : start + SCORE_CHUNK].astype(np.float32, copy=False)
            # float32 products (the counts are float32 already); the per-query sums go to float64
            if len(chunk) <= SMALL_BATCH:
                sims = np.einsum("qd,nd->qn", chunk, self.query_embeddings_)
                stats = np.einsum("qn,nk->qk", _similarity_weights_inplace(sims), self.counts_).astype(np.float64)
            else:
                sims = chunk @ self.query_embeddings_.T
                stats = (_similarity_weights_inplace(sims) @ self.counts_).astype(np.float64)
            ok = np.all(np.isfinite(stats), axis=1)  # not finite: corrupt weights, a router failure upstream
            if ok.any():
                r = fit_bradley_terry_batch(stats[ok].reshape(-1, n_t, n_t))
                out[start : start + len(stats)][ok] = 1.0 / (1.0 + 10.0 ** (r[:, w] - r[:, s]))
        return out

    # ----------------------------------------------------------------- checkpoint hooks
    def _state(self) -> dict[str, np.ndarray]:
        counts: np.ndarray = self.counts_
        half = counts.astype(np.float16)
        if np.array_equal(half.astype(np.float32), counts):  # unweighted counts are small integers
            counts = half
        state: dict[str, np.ndarray] = {
            "query_embeddings": self.query_embeddings_.astype(np.float16), "counts": counts
        }
        digests = getattr(self, "query_digests_", None)
        if digests is not None:
            state["query_digests"] = digests
        return state

    def _extra_state(self) -> dict[str, Any]:
        extra = {"tiers": self.tiers_, "ratings": self.ratings_, "n_battles": self.n_battles_}
        if getattr(self, "query_digests_", None) is not None:
            extra["template_lines"] = list(self.template_lines_)
        return extra

    def _set_state(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        emb, counts = arrays["query_embeddings"], arrays["counts"]
        n_t = int(round(np.sqrt(counts.shape[1]))) if counts.ndim == 2 else -1
        if emb.shape[0] != counts.shape[0] or n_t * n_t != counts.shape[1]:
            raise ValueError(
                f"sw_ranking weights do not fit together: query_embeddings {emb.shape}, counts {counts.shape}"
            )
        self.query_embeddings_ = emb.astype(np.float32)
        self.counts_ = counts.astype(np.float32)
        tiers = extra["tiers"]
        if not isinstance(tiers, Mapping) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < n_t for v in tiers.values()
        ):
            raise ValueError(f"sw_ranking tiers must map model names to tiers 0..{n_t - 1}")
        self.tiers_ = {str(k): int(v) for k, v in tiers.items()}
        self.ratings_ = {str(k): float(v) for k, v in extra.get("ratings", {}).items()}
        self.n_battles_ = int(extra.get("n_battles", 0))
        digests = arrays.get("query_digests")
        if digests is not None and (digests.shape != (emb.shape[0], 2) or digests.dtype != np.int64):
            raise ValueError(
                f"sw_ranking query_digests must be int64 of shape ({emb.shape[0]}, 2), got "
                f"{digests.dtype} {digests.shape}"
            )
        lines = extra.get("template_lines", [])
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise ValueError("sw_ranking template_lines must be a list of strings")
        self.query_digests_ = digests
        self.template_lines_ = list(lines)


def full_refit_win_rate(router: SWRankingRouter, battles: pd.DataFrame, text: str) -> float:
    """RouteLLM's way, for reference: refit a weighted logistic regression over every battle.

    Slow by design (scikit-learn on all battles, per query); used by tests and benchmarks to
    show that :class:`SWRankingRouter` gives the same win rate.
    """
    from sklearn.linear_model import LogisticRegression

    strong, weak = router.resolve_pair()
    queries, models, q_idx, a_idx, b_idx, label = battle_arrays(battles)
    emb = router.query_embeddings_  # the same query vectors (rows follow battle_arrays' order)
    if len(emb) != len(queries):
        raise ValueError("these are not the battles the router was trained on")
    q = router.encoder_.encode([text])[0]
    weights = similarity_weights(emb @ q)[0][q_idx]
    tier_a = np.array([router.tiers_[models[i]] for i in a_idx])
    tier_b = np.array([router.tiers_[models[i]] for i in b_idx])
    n_t = int(max(router.tiers_.values())) + 1
    n = len(battles)
    x = np.zeros((2 * n, n_t))
    rows = np.arange(2 * n)
    x[rows, np.concatenate([tier_a, tier_a])] += np.log(10.0)
    x[rows, np.concatenate([tier_b, tier_b])] -= np.log(10.0)
    y = np.zeros(2 * n)
    y[:n][label == 1.0] = 1.0
    y[n:][label == 1.0] = 1.0
    y[:n][label == 0.5] = 1.0  # a tie: one copy a win, the other a loss
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8, max_iter=10_000)
    lr.fit(x, y, sample_weight=np.concatenate([weights, weights]))
    coef = lr.coef_[0]
    return float(1.0 / (1.0 + 10.0 ** (coef[router.tiers_[weak]] - coef[router.tiers_[strong]])))
