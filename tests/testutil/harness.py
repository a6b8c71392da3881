"""Shared helpers for harness tests: demo configs and runs."""

import importlib.util
import pathlib

import ml_collections

from disent_jax import methods
from disent_jax.train import loop

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_config(name: str, arg: str | None = None
                ) -> ml_collections.ConfigDict:
  """Loads `configs/<name>.py` and calls `get_config(arg)`."""
  spec = importlib.util.spec_from_file_location(
      f"configs_{name}", ROOT / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def demo_config(**overrides) -> ml_collections.ConfigDict:
  config = load_config("demo", "runlocal")
  config.progress_bar = False
  config.async_checkpointing = False
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def train_demo(workdir, **overrides) -> loop.TrainResult:
  config = demo_config(**overrides)
  return loop.train(config, str(workdir), methods.load("demo").build(config))
