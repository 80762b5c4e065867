#!/usr/bin/env bash
# The GPU checks of one device session, in one command (issues 9, 12, 15, 16):
#   1. TriMul: the reference and our kernels timed by tttd's speed evaluator (benchmarks/speed_bench.py)
#   2. the local trainer's peak memory for one 8,192-token completion, 0.5B and 8B shapes,
#      gradient checkpointing off/on (benchmarks/policy_bench.py --train-memory)
#   3. the hf sampling engine at the Qwen2-0.5B shape (benchmarks/policy_bench.py --engine hf)
#   4. one GPU visible through the sandbox with devices=(0,), none without (benchmarks/sandbox_gpu_check.py)
#   5. MLA decode (issue 26): its reference and plain PyTorch root timed by the evaluator (speed_bench.py)
#   6. data-parallel training (issue 34): tokens/s at 1, 2, 4, 8 ranks (as many as there are GPUs) and
#      the scaling efficiency, Qwen2-0.5B shape, torchrun + nccl (benchmarks/dp_bench.py); the same
#      with --parallel fsdp (FSDP2 sharded weights, issue 34)
#   7. the two-process speed harness on the GPU (issue 30): zero kernel and side-stream kernel refused,
#      the honest fp16 kernel within 5% of harness-free CUDA-event timing (speed_gpu_gaming.py)
# Each part has its own time limit and log; a failing part does not stop the others.
# Usage (repo root, CUDA machine, torch with CUDA installed): bash benchmarks/gpu_checks.sh [OUTDIR]
set -u
out=${1:-${OUT:-gpu-checks}}
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
part() {  # part NAME SECONDS CMD...
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s): $*"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  tail -n 40 "$out/$name.log"
  echo "=== $name: exit $rc after $((SECONDS - t0)) s"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1; cat "$out/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
part trimul 180 python3 benchmarks/speed_bench.py --device cuda --no-sandbox --skip-cpu
part train_memory 200 python3 benchmarks/policy_bench.py --train-memory --device cuda
part hf_engine 120 python3 benchmarks/policy_bench.py --engine hf --device cuda --random-init-shape qwen2-0.5b \
  --batch 64 --new-tokens 256 --train-batch 8 --train-tokens 1024 --repeats 1
part sandbox_gpu 60 python3 benchmarks/sandbox_gpu_check.py
part mla_decode 420 python3 benchmarks/speed_bench.py --device cuda --no-sandbox --skip-cpu --tasks mla_decode \
  --gpu-repeats 1 --gpu-budget-s 300
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
dp_ranks=$(python3 -c "print(','.join(str(r) for r in (1, 2, 4, 8) if r <= max(1, $ngpu)))")
part dp_scaling 480 python3 benchmarks/dp_bench.py --device cuda --ranks "$dp_ranks" --random-init-shape qwen2-0.5b \
  --batch 64 --tokens 1024 --repeats 2
part dp_scaling_fsdp 480 python3 benchmarks/dp_bench.py --device cuda --ranks "$dp_ranks" --random-init-shape qwen2-0.5b \
  --batch 64 --tokens 1024 --repeats 2 --parallel fsdp
part speed_gaming 300 python3 benchmarks/speed_gpu_gaming.py --task trimul
part speed_gaming_mla 300 python3 benchmarks/speed_gpu_gaming.py --task mla_decode --smoke
