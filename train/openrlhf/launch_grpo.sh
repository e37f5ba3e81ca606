#!/usr/bin/env bash
# GRPO on an inftool environment with OpenRLHF 0.11.2 (Ray + vLLM + DeepSpeed), one node of 8 GPUs.
#
#   pip install -e . 'openrlhf[vllm]==0.11.2'   # in the checkout
#   inftool export-openrlhf inftool/Bookshelf-v0 --out prompts.jsonl
#   MODEL=Qwen/Qwen2.5-7B-Instruct DATA=prompts.jsonl bash launch_grpo.sh
#
# Needs NVIDIA GPUs (vLLM, DeepSpeed ZeRO-3, flash-attn); it has not been run in this repository's CI,
# which has none. Every GRPO setting below is stated; override any by environment variable, or append
# OpenRLHF flags after the script's name ("$@" goes last, so they win).
set -euo pipefail

MODEL=${MODEL:-Qwen/Qwen2.5-7B-Instruct}   # its tool-call format must match the export's --format (hermes)
DATA=${DATA:?set DATA to the JSONL from inftool export-openrlhf}
OUT=${OUT:-ckpt/inftool-grpo}
GPUS=${GPUS:-8}                             # per node; actor, reference and vLLM share them (colocate_all)
VLLM_ENGINES=${VLLM_ENGINES:-4}
VLLM_TP=${VLLM_TP:-2}

GROUP=${GROUP:-8}              # GRPO group: rollouts per prompt (each its own episode, own server state)
PROMPTS=${PROMPTS:-32}         # prompts per rollout batch -> PROMPTS * GROUP episodes
TRAIN_BATCH=${TRAIN_BATCH:-$((PROMPTS * GROUP))}  # one optimizer step per rollout batch (on-policy)
LR=${LR:-1e-6}                 # actor AdamW learning rate
KL=${KL:-1e-3}                 # KL to the reference model, as a loss term (GRPO), k3 estimator
CLIP=${CLIP:-0.2}              # PPO ratio clip
TEMPERATURE=${TEMPERATURE:-1.0}
MAX_LEN=${MAX_LEN:-8192}       # the whole episode (prompt, every turn, every tool result); OpenRLHF gives
                               # each turn what is left, and an episode that runs out gets reward 0. A prompt
                               # over it fails unplayed (logged; prompt_too_long): Google Calendar's are ~54k
                               # tokens (export-openrlhf --max-len warns)
EPISODES=${EPISODES:-1}        # passes over the dataset

AGENT=$(python -c 'from inftool_env.train.openrlhf import AGENT_FILE; print(AGENT_FILE)')

if ! ray status >/dev/null 2>&1; then  # a cluster already running is used, and left running
  trap 'ray stop || true' EXIT          # the head this script starts stops however the run ends (bash
                                        # runs an EXIT trap on an error, Ctrl-C and SIGTERM too)
  ray start --head --num-gpus "$GPUS"
fi

python -m openrlhf.cli.train_ppo_ray \
  --actor.model_name_or_path "$MODEL" \
  --actor.num_nodes 1 --actor.num_gpus_per_node "$GPUS" \
  --ref.num_nodes 1 --ref.num_gpus_per_node "$GPUS" \
  --vllm.num_engines "$VLLM_ENGINES" --vllm.tensor_parallel_size "$VLLM_TP" \
  --vllm.gpu_memory_utilization 0.6 --vllm.enable_prefix_caching --vllm.enable_sleep \
  --train.colocate_all --ds.enable_sleep \
  --ds.zero_stage 3 --ds.param_dtype bf16 --actor.gradient_checkpointing_enable --ds.packing_samples \
  --train.agent_func_path "$AGENT" \
  --data.prompt_dataset "$DATA" --data.input_key prompt --data.label_key label --data.apply_chat_template \
  --data.max_len "$MAX_LEN" \
  --algo.advantage.estimator group_norm \
  --rollout.n_samples_per_prompt "$GROUP" \
  --rollout.batch_size "$PROMPTS" --rollout.micro_batch_size 8 --rollout.temperature "$TEMPERATURE" \
  --train.batch_size "$TRAIN_BATCH" --train.micro_batch_size 4 --train.max_epochs 1 \
  --train.num_episodes "$EPISODES" \
  --actor.adam.lr "$LR" --actor.eps_clip "$CLIP" \
  --algo.kl.use_loss --algo.kl.estimator k3 --algo.kl.init_coef "$KL" \
  --ckpt.output_dir "$OUT" --ckpt.save_hf --ckpt.save_steps 20 \
  --logger.logging_steps 1 \
  "$@"
