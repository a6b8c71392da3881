"""Builds a SynthFace dataset into a TFDS data directory.

    python -m disent_jax.data.build --dataset=synthface_meshes/s \\
        --data_dir=~/tensorflow_datasets

An existing complete build is verified and reused; a partial or corrupt one
stops the command with the reason unless `--overwrite` is given, which
deletes it and builds again.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import time

import tqdm

from disent_jax.data import synthface_builders as sfb


def build(name: str, data_dir: str | pathlib.Path, *,
          overwrite: bool = False, progress: bool = True) -> pathlib.Path:
  """Builds (or verifies) `name` = "dataset/config" under `data_dir`.

  Returns:
    The dataset directory.

  Raises:
    sfb.BuildError: when a partial or corrupt build is in the way and
      `overwrite` is False.
  """
  dataset, config = sfb.parse_name(name)
  name = f"{dataset}/{config}"
  data_dir = pathlib.Path(data_dir).expanduser()
  target = sfb.dataset_dir(name, data_dir)
  config_dir = target.parent
  if target.exists():
    try:
      sfb.verify_build(name, data_dir)
      print(f"{name} is already built and verified at {target}")
      return target
    except sfb.BuildError as e:
      if not overwrite:
        raise sfb.BuildError(
            f"{e}\nRefusing to reuse it: rerun with --overwrite to delete "
            f"{target} and build again.") from e
      shutil.rmtree(target)
  if config_dir.exists():
    for stale in config_dir.glob("*incomplete*"):
      shutil.rmtree(stale, ignore_errors=True)
  gen = sfb.onthefly.generator(dataset, config)
  total = sum(len(v) for v in gen.splits.values())
  builder_cls = sfb.BUILDERS[dataset]
  builder = builder_cls(config=config, data_dir=str(data_dir),
                        file_format=sfb.FILE_FORMAT)
  start = time.time()
  with tqdm.tqdm(total=total, desc=name, unit="ex", disable=not progress,
                 file=sys.stdout) as bar:
    builder_cls.progress = bar.update
    try:
      builder.download_and_prepare()
    finally:
      builder_cls.progress = None
  sfb.write_manifest(target, name)
  sfb.verify_build(name, data_dir, check_hashes=False)
  print(f"wrote {name} {sfb.VERSION} ({total} examples in "
        f"{len(gen.splits)} splits, {time.time() - start:.1f} s) to {target}")
  return target


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      description="Build a SynthFace dataset (array_record, no TensorFlow).")
  parser.add_argument("--dataset", required=True,
                      help="dataset/config, e.g. synthface_meshes/s; one of "
                      + ", ".join(sorted(sfb.BUILDERS)))
  parser.add_argument("--data_dir", default="~/tensorflow_datasets")
  parser.add_argument("--overwrite", action="store_true",
                      help="delete an existing partial or corrupt build")
  parser.add_argument("--no_progress", action="store_true")
  args = parser.parse_args(argv)
  try:
    build(args.dataset, args.data_dir, overwrite=args.overwrite,
          progress=not args.no_progress)
  except (sfb.BuildError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
