r"""Converts a mesh dataset into the readers' on-disk array cache, once.

    python launch/cache_meshes.py --dataset=coma --root=/data/COMA \
        --cache_dir=/data/cache [--splits=train,test] \
        [--reader_kwargs='{"protocol": "identity"}']

Training with the same `data.cache_dir` and `data.reader_kwargs` then
opens the cache instead of parsing mesh files (`readers.cache.load_cached`).
Running it again verifies the cache and rebuilds it only if the files or
the reader options changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from disent_jax.data.readers import cache


def main(argv: Sequence[str] | None = None) -> int:
  """Builds (or verifies) the caches of a dataset's splits."""
  parser = argparse.ArgumentParser(
      prog="python launch/cache_meshes.py",
      description="Converts a mesh dataset into an on-disk array cache.")
  parser.add_argument("--dataset", required=True,
                      choices=sorted(cache.DATASETS))
  parser.add_argument("--root", required=True, help="the dataset directory")
  parser.add_argument("--cache_dir", required=True)
  parser.add_argument("--splits", default="train,test",
                      help="comma-separated: train, test, all")
  parser.add_argument("--reader_kwargs", default="{}",
                      help="JSON object of reader arguments, e.g. "
                           "'{\"protocol\": \"identity\"}' (use the same "
                           "as the training config's data.reader_kwargs)")
  parser.add_argument("--num_workers", type=int, default=None)
  args = parser.parse_args(argv)
  try:
    kwargs = json.loads(args.reader_kwargs)
  except json.JSONDecodeError as e:
    parser.error(f"--reader_kwargs is not valid JSON ({e})")
  if not isinstance(kwargs, dict):
    parser.error("--reader_kwargs must be a JSON object")
  for split in (s.strip() for s in args.splits.split(",") if s.strip()):
    source = cache.load_cached(args.dataset, args.root, split=split,
                               cache_dir=args.cache_dir,
                               reader_kwargs=kwargs,
                               num_workers=args.num_workers)
    print(f"{split}: {len(source)} meshes, "
          f"{source.manifest['num_neutrals']} neutrals, "
          f"V={source.num_vertices} -> {source.directory}")
  return 0


def run() -> None:
  sys.exit(main())
