"""Shared helpers for harness tests: demo configs and runs."""

import pathlib

import ml_collections

from disent_jax import methods
from disent_jax.train import config_utils
from disent_jax.train import loop

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_config(name: str, arg: str | None = None
                ) -> ml_collections.ConfigDict:
  """Loads `configs/<name>.py` and calls `get_config(arg)`."""
  return config_utils.load_config(ROOT / "configs" / f"{name}.py", arg)


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
