#!/usr/bin/env bash
# Reproduce the embedded default router (shared/routellm_core/default_router) from ../shared/data.
# Needs the data directory: $ROUTELLM_DATA_DIR, else ../shared/data beside the checkout. Its model card records this command.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
export ROUTELLM_DATA_DIR="${ROUTELLM_DATA_DIR:-$(dirname "$PWD")/shared/data}"  # {data} in the specs
routellm train --router sw_ranking \
  --data "gold:{data}/routerdc_7model_and_routerbench_subset/routerbench_zs/arc_challenge_train.csv" \
  --data "gold:{data}/routerdc_7model_and_routerbench_subset/routerbench_zs/mbpp_train.csv" \
  --data "gold:{data}/routerdc_7model_and_routerbench_subset/routerbench_zs/winograde_train.csv" \
  --data "gold:{data}/llmrouter_9model_gold/dcrouter_preprocessed__train.json" \
  --calibrate "{data}/arena_hard_prompts/arena-hard-v0.1_question.jsonl" \
  --calibrate "{data}/arena_hard_prompts/arena-hard-v2.0_question.jsonl" \
  --eval-benchmarks mmlu gsm8k \
  --seed 0 --param strip_templates=false "$@" \
  --out shared/routellm_core/default_router
