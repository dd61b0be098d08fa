#!/usr/bin/env bash
# GPU readiness in one command: every family's default run on CUDA (fp32, bf16,
# bf16 + torch.compile), throughput, peak GPU memory, an exact-resume check and,
# with two GPUs, a 2-process torchrun. Prints JSON. See benchmarks/gpu_check.py.
#
#   benchmarks/gpu_check.sh                       # on a CUDA machine
#   benchmarks/gpu_check.sh --device cpu --tiny   # CPU fallback (run by the test suite)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"
[ -x "$python" ] || python=python3
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" "$here/gpu_check.py" "$@"
