"""The N-way examples run as a user runs them, offline, on the embedded N-way router."""

from __future__ import annotations

from tests.test_examples import run

BIG, MID, SMALL = (
    "llama-3.1-nemotron-51b-instruct",
    "llama-3.1-8b-instruct",
    "gemma-2-9b-it",
)


def test_nway_langchain_example_routes_an_lcel_chain_among_three_models():
    out = run("nway_langchain.py")
    blocks = out.split("lambda cost = ")[1:]
    assert [b.split(":")[0] for b in blocks] == ["0.0", "0.1", "1.0"]
    for block in blocks:
        rows = [line for line in block.splitlines() if "(stand-in answer from" in line]
        assert len(rows) == 4
        for row in rows:  # the chain's answer comes from the model the router chose
            assert (
                row.split()[0] in (BIG, MID, SMALL) and f"from {row.split()[0]})" in row
            )
    chosen = [
        [line.split()[0] for line in b.splitlines() if "stand-in" in line]
        for b in blocks
    ]
    # no cost weight: mostly the best (and costliest) model; a high one: never the costliest
    assert (
        chosen[0].count(BIG) >= 3
        and BIG not in chosen[2]
        and chosen[2].count(SMALL) >= 2
    )
    saved = [float(line.split("saved $")[1].split()[0]) for line in out.splitlines() if "saved $" in line]
    assert len(saved) == 3 and saved[2] > 0  # a high cost weight never calls the reference model


def test_nway_llamaindex_example_routes_query_engines_among_three_models():
    out = run("nway_llamaindex.py")
    routed = [
        line.split()[2]
        for line in out.splitlines()
        if line.strip().startswith("routed to")
    ]
    assert len(routed) == 6 and set(routed) <= {BIG, MID, SMALL}
    thrifty = out.split("thrifty (cost 1.0):")[1]
    assert "lambdas {'cost': 1.0}" in thrifty and f"routed to {BIG}" not in thrifty
    saved = [float(line.split("saved $")[1].split()[0]) for line in out.splitlines() if "saved $" in line]
    assert len(saved) == 2 and saved[1] > 0  # the thrifty engine never calls the reference model
