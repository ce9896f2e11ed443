"""One learning cycle, one call: what ``routellm learn`` runs from a scheduler.

:func:`learn_cycle` takes the store's learning lock, then

1. picks unlabelled captured calls (``select``: see :mod:`routellm_core.learning.select`), read
   from the store in pages, so a cycle's memory does not grow with the store;
2. labels them with the judge within ``budget`` (:func:`~routellm_core.learning.label.alabel`);
3. retrains: the base router (``init``, the embedded default unless given) updated with every
   labelled battle of the store outside the held-out queries (``routellm train --init``); from
   the base, not from the live version, so that no label counts twice;
4. evaluates the candidate against the live version on the held-out labelled traffic (APGR with
   a bootstrap interval, :func:`~routellm_core.learning.promote.compare`);
5. when the candidate is not worse, saves it in a new directory under ``to`` and publishes it
   as the store's next router version, which every replica following the store picks up.

The report (:class:`CycleReport`: labels bought, dollars spent, APGR before and after with its
interval, the strong share at ``strong_fraction`` before and after) is returned and stored in
the store's ``learn_cycles`` table. Two cycles started at once do not both label or both
publish: the second finds the lock taken and returns at once (status ``"locked"``). A cycle
that died holds the lock until ``lock_ttl`` runs out.

Example:
    >>> import os, tempfile
    >>> from routellm_core.learning import TrafficStore
    >>> from routellm_core.learning.cycle import learn_cycle
    >>> async def strong(system, user): return "a thorough answer"
    >>> async def weak(system, user): return "short"
    >>> async def judge(system, user): return "[[A]]"
    >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "traffic.db"))
    >>> report = learn_cycle(store, strong=strong, weak=weak, judge=judge,
    ...                      to=tempfile.mkdtemp(), judge_prompts=os.environ.get("ROUTELLM_JUDGE_PROMPTS"))
    >>> report.status
    'nothing to label'
"""

from __future__ import annotations

import getpass
import heapq
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routellm_core.naming import routed_names
from routellm_core.store import TrafficStore, open_store

LOCK_KEY = "routellm-learn-cycle"  # the claims-table key of the learning lock
LOCK_TTL = 6 * 3600.0              # seconds before the lock of a cycle that died expires
POOL_PER_LABEL = 20                # candidates kept per label to buy (the selection's pool)
MIN_POOL = 2_000
STATUSES = ("published", "kept", "locked", "nothing to label", "too few held-out queries", "labelling failed",
            "failed")


@dataclass
class CycleReport:
    """What one :func:`learn_cycle` did.

    Attributes:
        status: one of :data:`STATUSES`.
        reason: the status in words (the comparison's verdict when there was one).
        live_version: the version live when the cycle started (``None``: the base router was).
        version: the version this cycle published, if any; ``location`` its checkpoint.
        candidates: distinct unlabelled queries the selection chose among; ``selected`` how
            many it chose; ``labelled`` / ``failed`` / ``spent`` what labelling did.
        apgr_before / apgr_after: APGR of the live router and of the candidate on the held-out
            queries; ``interval`` the bootstrap interval of the difference; ``held_out`` how
            many queries.
        strong_share_before / after: the share of the held-out queries each router sends
            strong at ``strong_fraction``.
    """

    status: str
    reason: str
    started_at: float
    finished_at: float = 0.0
    select: str = "random"
    live_version: int | None = None
    version: int | None = None
    location: str | None = None
    candidates: int = 0
    selected: int = 0
    labelled: int = 0
    failed: int = 0
    spent: float = 0.0
    held_out: int = 0
    apgr_before: float | None = None
    apgr_after: float | None = None
    interval: tuple[float, float] | None = None
    strong_fraction: float = 0.5
    strong_share_before: float | None = None
    strong_share_after: float | None = None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"{self.status}: {self.reason}",
                 f"labels: {self.labelled} bought of {self.selected} selected ({self.select}) among "
                 f"{self.candidates} unlabelled queries, {self.failed} failed; spent ${self.spent:.4f}"]
        if self.apgr_before is not None and self.apgr_after is not None:
            lo, hi = self.interval or (float("nan"), float("nan"))
            lines.append(f"APGR on {self.held_out} held-out queries: live {self.apgr_before:.3f} -> candidate "
                         f"{self.apgr_after:.3f} (difference interval [{lo:+.3f}, {hi:+.3f}])")
        if self.strong_share_before is not None and self.strong_share_after is not None:
            lines.append(f"strong share at strong_fraction {self.strong_fraction:g}: {self.strong_share_before:.2f} "
                         f"-> {self.strong_share_after:.2f}")
        if self.version is not None:
            lines.append(f"published version {self.version}: {self.location}")
        return "\n".join(lines)


def _check(labels: Any, holdout: Any, lock_ttl: Any, strong_fraction: Any, select: str, tolerance: Any) -> None:
    from routellm_core.learning.select import check_strategy

    if isinstance(labels, bool) or not isinstance(labels, int) or labels < 1:
        raise ValueError(f"labels must be a whole number >= 1, got {labels!r}")
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 < holdout < 1:
        raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout!r}")
    if isinstance(lock_ttl, bool) or not isinstance(lock_ttl, (int, float)) or not lock_ttl > 0:
        raise ValueError(f"lock_ttl must be a positive number of seconds, got {lock_ttl!r}")
    if isinstance(strong_fraction, bool) or not isinstance(strong_fraction, (int, float)) \
            or not 0 <= strong_fraction <= 1:
        raise ValueError(f"strong_fraction must be in [0, 1], got {strong_fraction!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be an APGR difference in [0, 1), got {tolerance!r}")
    check_strategy(select)


def unlabelled_pool(store: TrafficStore, size: int, *, select: str, seed: int = 0,
                    page: int = 5_000) -> tuple[list[str], np.ndarray | None]:
    """At most ``size`` distinct captured queries that have no stored battle, read in pages:
    the ``size`` nearest their call's threshold for the uncertainty strategies (calls whose
    router failed are left out; ``win_rates`` come back shifted so that the threshold is 0.5),
    a seeded uniform sample of the distinct queries for ``"random"``
    (:meth:`TrafficStore.sample_queries`; ``None`` for the rates). Memory holds ``size``
    queries and the labelled ones' texts, never the whole store."""
    import hashlib

    labelled = store.labelled_queries()
    if select == "random":
        return store.sample_queries(size, seed=seed, exclude=labelled, page=page), None
    heap: list[tuple[float, int, str, float]] = []  # (priority, tie-break, query, rate): the lowest on top
    kept: set[str] = set()
    for frame in store.iter_calls(("query", "win_rate", "threshold", "router_failed"), page=page):
        for row in frame.itertuples(index=False):
            q, w, t = row.query, row.win_rate, row.threshold
            if not isinstance(q, str) or not q.strip() or q in labelled or q in kept:
                continue
            if row.router_failed or w is None or t is None or not np.isfinite(w) or not np.isfinite(t):
                continue
            entry = (-abs(float(w) - float(t)), int.from_bytes(hashlib.sha256(q.encode()).digest()[:4], "big"), q,
                     float(w) - float(t) + 0.5)
            if len(heap) < size:
                heapq.heappush(heap, entry)
                kept.add(q)
            elif entry[:2] > heap[0][:2]:
                kept.discard(heapq.heapreplace(heap, entry)[2])
                kept.add(q)
    ordered = sorted(heap, reverse=True)
    return [e[2] for e in ordered], np.array([e[3] for e in ordered])


def _checkpoint_dir(to: str | os.PathLike[str], version: int) -> Path:
    """A new directory under ``to`` for the candidate: never one that exists."""
    root = Path(to)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    for n in range(1000):
        path = root / (f"v{version}-{stamp}" + (f"-{n}" if n else ""))
        if not path.exists():
            return path
    raise FileExistsError(f"no free checkpoint directory name under {root}")


def learn_cycle(
    store: TrafficStore | str | os.PathLike[str],
    *,
    strong: Any,
    weak: Any,
    judge: Any,
    to: str | os.PathLike[str],
    init: str = "default",
    labels: int = 200,
    select: str = "random",
    budget: float | None = None,
    prices: Mapping[str, tuple[float, float]] | None = None,
    judge_prompts: Any = None,
    holdout: float = 0.2,
    tolerance: float = 0.0,
    strong_fraction: float = 0.5,
    seed: int = 0,
    eval_data_dir: str | os.PathLike[str] | None = None,
    lock_ttl: float = LOCK_TTL,
    concurrency: int = 4,
    by: str | None = None,
    progress: bool = False,
    names: Mapping[str, str] | None = None,
) -> CycleReport:
    """Run one learning cycle on ``store`` (see the module docstring) and return its report.

    Args:
        store: the traffic store the replicas capture into (a :class:`TrafficStore`, a SQLite
            path or a SQLAlchemy URL).
        strong / weak / judge: the routed pair and the judge (LangChain chat models, LlamaIndex
            LLMs or async functions ``(system, user) -> str``), as for ``routellm label``.
        to: the directory under which each published checkpoint gets a new sub-directory (on
            storage every replica reads).
        init: the base router the cycle retrains from ("default", a checkpoint or a Hub id);
            also the one to beat while the store has no published version.
        labels: how many unlabelled queries to buy labels for (``budget`` may stop it first).
        select: the selection strategy (:data:`routellm_core.learning.select.STRATEGIES`).
        holdout / seed: the held-out fraction of labelled queries, by a seeded hash (the same
            queries every cycle), never trained on.
        tolerance: APGR the candidate may lose against the live router and still be published.
        strong_fraction: the setting the report's strong shares are given at.
        eval_data_dir: RouteLLM's evaluation sets to decontaminate the training data against
            (``None``: not decontaminated, as ``routellm train`` does for a store alone).
        lock_ttl: seconds after which the lock of a cycle that died expires.
        names: the strong and weak models' names, as the replicas' ``names=`` (e.g.
            ``{"strong": "gpt-5@high", "weak": "gpt-5@minimal"}``), so the new labels name the
            models as the captured calls do (:func:`~routellm_core.learning.label`'s rule).

    Raises:
        ValueError: a bad argument, before anything is read or paid.
    """
    from routellm_core.checkpoints import load_router, save_router
    from routellm_core.learning.label import label as label_prompts
    from routellm_core.learning.promote import compare, split_holdout, strong_shares, traffic_benchmark
    from routellm_core.learning.select import select_queries
    from routellm_core.routing.follow import checkpoint_sha256, load_version
    from routellm_core.training import train_router

    _check(labels, holdout, lock_ttl, strong_fraction, select, tolerance)
    pair = routed_names(strong=strong, weak=weak, names=names).pool_args()  # the captured calls' names
    store = open_store(store)
    report = CycleReport(status="locked", reason="", started_at=time.time(), select=select,
                         strong_fraction=float(strong_fraction))
    owner = uuid.uuid4().hex
    if not store.claim(LOCK_KEY, owner, lock_ttl):
        report.reason = (f"another learning cycle holds the lock of {store.url!r} (it expires {lock_ttl:g} s after "
                         "that cycle started); nothing was labelled or published")
        report.finished_at = time.time()
        store.add_cycle_report(report.as_dict())
        return report
    try:
        live = store.live_router()
        report.live_version = live.version if live else None
        current = load_version(live) if live else load_router(init)  # the live one, its digest checked

        pool_size = max(MIN_POOL, POOL_PER_LABEL * labels)
        queries, rates = unlabelled_pool(store, pool_size, select=select, seed=seed)
        report.candidates = len(queries)
        if queries:
            embeddings = current.encoder_.encode(queries) if select.endswith("diverse") else None
            chosen = select_queries(queries, labels, strategy=select, win_rates=rates,
                                    threshold=None if rates is None else 0.5, embeddings=embeddings, seed=seed)
            report.selected = len(chosen)
            labelled = label_prompts([queries[i] for i in chosen], strong=strong, weak=weak, judge=judge,
                                     store=store, judge_prompts=judge_prompts, prices=prices, budget=budget,
                                     concurrency=concurrency, source="learn", progress=progress, names=pair)
            report.labelled, report.failed, report.spent = labelled.labelled, labelled.failed, float(labelled.spent)
            report.errors = list(labelled.errors)
        if report.labelled == 0:
            report.status = "nothing to label" if not queries else "labelling failed"
            report.reason = ("no unlabelled captured call" if not queries else
                             f"none of the {report.selected} selected queries was labelled (see errors)"
                             ) + "; the live router stays"
            return report

        battles = store.training_battles()
        _, held = split_holdout(battles, holdout, seed=seed)
        pair_names = pair["strong"], pair["weak"]
        try:
            bench = traffic_benchmark(held, *pair_names, name="held-out traffic")
            if len(bench) < 10:
                raise ValueError(f"{len(bench)} held-out queries")
        except ValueError as exc:
            report.status = "too few held-out queries"
            report.reason = (f"{exc}: at least 10 held-out labelled queries are needed to compare routers; the "
                             "labels are stored and the next cycle counts them")
            return report
        report.held_out = len(bench)
        base = load_router(init)
        known = set(getattr(base, "known_models", None) or ())
        aliases = {name: target for name, target in zip(pair_names, (base.strong_model, base.weak_model))
                   if name not in known and name != target}  # the user's pair is the router's pair
        spec = "store:" + store.engine.url.render_as_string(hide_password=False)  # cards show it masked
        result = train_router(base.router_type, [spec], init=base, holdout=holdout, seed=seed,
                              aliases=aliases or None,
                              eval_data_dir=eval_data_dir, decontaminate=eval_data_dir is not None,
                              command=f"routellm learn (cycle of {time.strftime('%Y-%m-%d %H:%M:%S')})")
        candidate = result.router
        verdict = compare(candidate, current, bench, tolerance=tolerance, seed=seed)
        report.apgr_before, report.apgr_after = verdict.current_apgr, verdict.candidate_apgr
        report.interval, report.reason = verdict.interval, verdict.reason
        key, fractions = str(float(strong_fraction)), (float(strong_fraction),)
        report.strong_share_before = strong_shares(current, bench, fractions).get(key)
        report.strong_share_after = strong_shares(candidate, bench, fractions).get(key)
        if not verdict.promote:
            report.status = "kept"
            return report
        nxt = (live.version + 1) if live else 1
        out = _checkpoint_dir(to, nxt)
        save_router(candidate, out)
        report.location = str(out.resolve())
        figures = {k: v for k, v in report.as_dict().items() if k not in ("errors", "status", "version", "location")}
        published = store.publish_router(report.location, sha256=checkpoint_sha256(out), figures=figures,
                                         by=by or _user(), note="routellm learn")
        report.version, report.status = published.version, "published"
        return report
    except BaseException as exc:  # stored as such, then raised: a scheduler sees the failure
        report.status, report.reason = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        report.finished_at = time.time()
        try:
            store.add_cycle_report(report.as_dict())
        finally:
            store.release(LOCK_KEY, owner)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container: the host name says who
        return os.uname().nodename


def report_json(report: CycleReport) -> str:
    """The report as one JSON line (what ``routellm learn --json`` prints)."""
    return json.dumps(report.as_dict(), default=float)


__all__: Sequence[str] = ["CycleReport", "LOCK_KEY", "STATUSES", "learn_cycle", "report_json", "unlabelled_pool"]
