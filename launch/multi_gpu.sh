#!/usr/bin/env bash
# Train on every GPU of one host, or on several GPU hosts under SLURM.
#
# One host (JAX sees all local GPUs; the `data` mesh axis spans them):
#   bash launch/multi_gpu.sh configs/demo.py /path/to/workdir [--config.x=y ...]
#
# Several hosts under SLURM (one process per host; jax.distributed reads the
# SLURM environment):
#   srun --nodes=4 --ntasks-per-node=1 --gpus-per-node=8 \
#     bash launch/multi_gpu.sh configs/demo.py /shared/workdir --distributed
#
# The workdir must be one directory that every host can read and write
# (NFS, Lustre, a gcsfuse mount, ...). Install the CUDA build of JAX first:
#   pip install -e . "jax[cuda12]"
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 CONFIG WORKDIR [extra flags...]" >&2
  exit 2
fi
config=$1
workdir=$2
shift 2
# Let XLA use most of the GPU memory; keep the host allocator sane.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
exec python "$(dirname "$0")/train.py" --config="$config" \
  --workdir="$workdir" "$@"
