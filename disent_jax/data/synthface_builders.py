"""TFDS builders of the SynthFace datasets (array_record, no TensorFlow).

    synthface_meshes   CoMA-like sequences; splits interpolation_*,
                       extrapolation_*, identity_* (train/test each)
    synthface_images   CelebA-like images with identity labels, pseudo-GT
                       3DMM fits and a labelled flag; train/test
    synthface_grid     a full factorial grid for linear probes; train/test
    synthface_scans    neutral scans plus images per subject; test

Configurations and example generation live in `onthefly.py`, shared with the
on-the-fly path, so materialised and generated examples are identical.
Build with `python -m disent_jax.data.build --dataset=synthface_meshes/s`;
load with `load_source` (which checks the build first).

Every build writes `synthface_manifest.json` (file sizes and SHA-256, record
counts per split, the configuration); `verify_build` checks a directory
against it, so a partial or corrupted build is never used silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import pathlib
from typing import Any

from array_record.python import array_record_module
from etils import epath
import jax
import numpy as np
import tensorflow_datasets as tfds

from disent_jax.data import onthefly

VERSION = "1.0.0"
FILE_FORMAT = "array_record"
MANIFEST = "synthface_manifest.json"

_DESCRIPTIONS = {
    "synthface_meshes": "SynthFace CoMA-like expression sequences (mm).",
    "synthface_images": "SynthFace CelebA-like images with ground truth.",
    "synthface_grid": "SynthFace factorial identity x expression x pose x "
                      "light grid.",
    "synthface_scans": "SynthFace neutral scans with images per subject.",
}


class BuildError(RuntimeError):
  """A dataset directory is missing, partial or corrupt."""


def feature_spec(gen: onthefly.Generator) -> dict[str, tuple[tuple[int, ...],
                                                             np.dtype]]:
  """(shape, dtype) of every field of one stored example (no computation)."""
  shapes = jax.eval_shape(
      gen.chunk_fn, jax.ShapeDtypeStruct((onthefly.CHUNK,), np.int32))
  zero = {k: np.zeros(v.shape[1:], v.dtype) for k, v in shapes.items()}
  ex = gen.postprocess(zero)
  return {k: (tuple(np.shape(v)), np.asarray(v).dtype) for k, v in ex.items()}


def _features(gen: onthefly.Generator) -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      k: tfds.features.Tensor(shape=shape, dtype=dtype)
      for k, (shape, dtype) in sorted(feature_spec(gen).items())})


def _config_json(cfg: Any) -> dict[str, Any]:
  return {k: (list(v) if isinstance(v, tuple) else v)
          for k, v in dataclasses.asdict(cfg).items()}


class _SynthFaceBuilder(tfds.core.GeneratorBasedBuilder):
  """Shared logic: examples come from `onthefly.generator`."""

  VERSION = tfds.core.Version(VERSION)
  DATASET = ""
  progress = None  # Optional callable(n) for a progress bar.

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # The file of this module (TFDS's default lookup needs the optional
    # importlib_resources package).
    return epath.Path(inspect.getfile(cls))

  @classmethod
  def _configs(cls):
    return [tfds.core.BuilderConfig(name=name, description=str(cfg))
            for name, cfg in onthefly.CONFIGS[cls.DATASET].items()]

  @property
  def generator(self) -> onthefly.Generator:
    return onthefly.generator(self.DATASET, self.builder_config.name)

  def _info(self) -> tfds.core.DatasetInfo:
    gen = self.generator
    cfg = gen.config
    return tfds.core.DatasetInfo(
        builder=self,
        description=_DESCRIPTIONS[self.DATASET],
        features=_features(gen),
        disable_shuffling=True,
        metadata=tfds.core.MetadataDict(
            resolution=cfg.resolution, config=_config_json(cfg),
            num_vertices=int(gen.world.num_vertices)),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {name: self._generate_examples(name)
            for name in self.generator.splits}

  def _generate_examples(self, split: str):
    gen = self.generator
    for i, ex in gen.iterate(gen.splits[split], progress=self.progress):
      yield i, ex


def _builder(dataset: str):
  cls = type(
      "".join(p.capitalize() for p in dataset.split("_")),
      (_SynthFaceBuilder,),
      {"DATASET": dataset, "BUILDER_CONFIGS": None,
       "__module__": __name__,
       "__doc__": _DESCRIPTIONS[dataset]})
  cls.BUILDER_CONFIGS = cls._configs()  # pylint: disable=protected-access
  return cls


SynthfaceMeshes = _builder("synthface_meshes")
SynthfaceImages = _builder("synthface_images")
SynthfaceGrid = _builder("synthface_grid")
SynthfaceScans = _builder("synthface_scans")
BUILDERS = {"synthface_meshes": SynthfaceMeshes,
            "synthface_images": SynthfaceImages,
            "synthface_grid": SynthfaceGrid,
            "synthface_scans": SynthfaceScans}


def parse_name(name: str) -> tuple[str, str]:
  """"synthface_meshes/s" -> ("synthface_meshes", "s") (default config)."""
  dataset, _, config = name.partition("/")
  if dataset not in BUILDERS:
    raise ValueError(f"unknown dataset {dataset!r}; one of {sorted(BUILDERS)}")
  configs = list(onthefly.CONFIGS[dataset])
  config = config or configs[0]
  if config not in configs:
    raise ValueError(f"{dataset} has configs {configs}, not {config!r}")
  return dataset, config


def dataset_dir(name: str, data_dir: str | pathlib.Path) -> pathlib.Path:
  """Where `name` ("dataset/config") lives under `data_dir`."""
  dataset, config = parse_name(name)
  return pathlib.Path(data_dir) / dataset / config / VERSION


def _sha256(path: pathlib.Path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def _num_records(path: pathlib.Path) -> int:
  reader = array_record_module.ArrayRecordReader(str(path))
  try:
    return int(reader.num_records())
  finally:
    reader.close()


def _data_files(directory: pathlib.Path) -> list[pathlib.Path]:
  return sorted(p for p in directory.iterdir()
                if p.is_file() and FILE_FORMAT in p.name)


def write_manifest(directory: pathlib.Path, name: str) -> dict[str, Any]:
  """Records files, hashes and record counts of a finished build."""
  dataset, config = parse_name(name)
  gen = onthefly.generator(dataset, config)
  files = {}
  for p in _data_files(directory):
    files[p.name] = {"bytes": p.stat().st_size, "sha256": _sha256(p),
                     "records": _num_records(p)}
  manifest = {
      "dataset": dataset, "config": config, "version": VERSION,
      "settings": _config_json(gen.config),
      "splits": {k: int(len(v)) for k, v in gen.splits.items()},
      "files": files,
  }
  (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
  return manifest


def verify_build(name: str, data_dir: str | pathlib.Path, *,
                 check_hashes: bool = True) -> pathlib.Path:
  """Checks a built dataset directory; returns it.

  Raises:
    BuildError: naming the directory and what is missing, partial or
      corrupt (no manifest, a configuration change, missing, truncated or
      altered files, wrong record counts).
  """
  directory = dataset_dir(name, data_dir)
  dataset, config = parse_name(name)
  where = f"{name} at {directory}"
  if not directory.is_dir():
    raise BuildError(f"{where}: not built")
  path = directory / MANIFEST
  if not path.is_file():
    raise BuildError(f"{where}: no {MANIFEST}; the build is partial or "
                     f"was not made by disent_jax.data.build")
  try:
    manifest = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise BuildError(f"{where}: unreadable {MANIFEST}: {e}") from e
  gen = onthefly.generator(dataset, config)
  if manifest.get("settings") != _config_json(gen.config):
    raise BuildError(f"{where}: built with settings {manifest.get('settings')}"
                     f", the configuration is now {_config_json(gen.config)}")
  if not (directory / "dataset_info.json").is_file():
    raise BuildError(f"{where}: dataset_info.json is missing")
  present = {p.name for p in _data_files(directory)}
  listed = set(manifest["files"])
  if present != listed:
    raise BuildError(f"{where}: data files differ from the manifest: missing "
                     f"{sorted(listed - present)}, unexpected "
                     f"{sorted(present - listed)}")
  for fname, meta in manifest["files"].items():
    p = directory / fname
    if p.stat().st_size != meta["bytes"]:
      raise BuildError(f"{where}: {fname} has {p.stat().st_size} bytes, the "
                       f"build wrote {meta['bytes']} (truncated or altered)")
    if check_hashes and _sha256(p) != meta["sha256"]:
      raise BuildError(f"{where}: {fname} does not match its SHA-256")
  for split, count in manifest["splits"].items():
    records = sum(m["records"] for f, m in manifest["files"].items()
                  if f"-{split}." in f)
    if records != count:
      raise BuildError(f"{where}: split {split} has {records} records, "
                       f"expected {count}")
  return directory


def load_source(name: str, data_dir: str | pathlib.Path, split: str):
  """A verified random-access source (`tfds` data source) of one split."""
  directory = verify_build(name, data_dir, check_hashes=False)
  builder = tfds.builder_from_directory(str(directory))
  return builder.as_data_source(split=split)
