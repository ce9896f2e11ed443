#!/usr/bin/env bash
# N-way routing figures of the README: train Tryage-style (quality) and ZOOTER routers per model
# pool on the train split only, then evaluate on the test split. Writes benchmarks/results/nway_*.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
export ROUTELLM_DATA_DIR="${ROUTELLM_DATA_DIR:-$(dirname "$PWD")/shared/data}"  # {data} in the specs
L="gold:{data}/llmrouter_9model_gold"
R="gold:{data}/routerdc_7model_and_routerbench_subset/routerbench_zs"
PRICES="{data}/llmrouter_9model_gold/example_data__llm_candidates__default_llm.json"
OUT=benchmarks/results
for router in quality zooter; do
  # LLMRouter: 9 models, the price table as cost (500 input + 500 output tokens a call)
  routellm nway train --router "$router" --out "runs/nway-llmrouter-$router" --quiet \
    --data "$L/dcrouter_preprocessed__train.json?task_labels={data}/llmrouter_9model_gold/dcrouter_task_labels.csv" --holdout "$L/dcrouter_preprocessed__test.json" \
    --prices "$PRICES"
  routellm nway eval --router "runs/nway-llmrouter-$router" --data "$L/dcrouter_preprocessed__test.json" \
    --json "$OUT/nway_llmrouter_$router.json" --plot "$OUT/nway_llmrouter_$router.png"
  # RouterBench: 11 models, per-query dollar cost recorded in the data
  routellm nway train --router "$router" --out "runs/nway-routerbench-$router" --quiet \
    --data "$R/arc_challenge_train.csv" --data "$R/mbpp_train.csv" --data "$R/winograde_train.csv" \
    --holdout "$R/arc_challenge_test.csv" --holdout "$R/mbpp_test.csv" --holdout "$R/winograde_test.csv"
  routellm nway eval --router "runs/nway-routerbench-$router" \
    --data "$R/arc_challenge_test.csv" --data "$R/mbpp_test.csv" --data "$R/winograde_test.csv" \
    --json "$OUT/nway_routerbench_$router.json" --plot "$OUT/nway_routerbench_$router.png" --log-cost
done
