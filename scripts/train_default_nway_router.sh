#!/usr/bin/env bash
# Reproduce the embedded N-way default (shared/routellm_core/nway/default/): a quality predictor
# for LLMRouter's 9-model pool, trained on LLMRouter's train split only (MIT), with the test
# split and RouteLLM's evaluation sets held out, priced by LLMRouter's candidates table.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
export ROUTELLM_DATA_DIR="${ROUTELLM_DATA_DIR:-$(dirname "$PWD")/shared/data}"  # {data} in the specs
L="gold:{data}/llmrouter_9model_gold"
routellm nway train --router quality --out shared/routellm_core/nway/default --quiet \
  --data "$L/dcrouter_preprocessed__train.json" --holdout "$L/dcrouter_preprocessed__test.json" \
  --prices "{data}/llmrouter_9model_gold/example_data__llm_candidates__default_llm.json" \
  --param strip_templates=false
