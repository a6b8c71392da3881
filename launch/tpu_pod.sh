#!/usr/bin/env bash
# Train on a Cloud TPU VM pod slice: the same command on all workers.
#
#   bash launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [extra flags...]
#
# e.g.
#   bash launch/tpu_pod.sh my-v4-32 us-central2-b \
#     configs/demo.py /mnt/shared/runs/demo --config.batch_size=1024
#
# Every worker runs launch/train.py with --distributed, so
# jax.distributed.initialize() finds the other workers from the TPU
# metadata. WORKDIR must be visible to all workers (a Filestore/NFS mount or
# a gcsfuse-mounted bucket). The repository is copied to each worker first.
set -euo pipefail
if [[ $# -lt 4 ]]; then
  echo "usage: $0 TPU_NAME ZONE CONFIG WORKDIR [extra flags...]" >&2
  exit 2
fi
tpu=$1
zone=$2
config=$3
workdir=$4
shift 4
repo=$(cd "$(dirname "$0")/.." && pwd)

gcloud compute tpus tpu-vm scp --recurse "$repo" "$tpu":~/disent_jax \
  --zone="$zone" --worker=all
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all --command="
  set -e
  cd ~/disent_jax
  python3 -m venv .venv && . .venv/bin/activate
  pip install -q -e . 'jax[tpu]'
  python launch/train.py --distributed --config=$config --workdir=$workdir $*
"
