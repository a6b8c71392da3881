r"""Harness demo: a tiny MLP autoencoder on procedural arrays (not a paper).

  python launch/train.py --config=configs/demo.py --workdir=/tmp/demo
  python launch/train.py --config=configs/demo.py:runlocal \
      --workdir=/tmp/demo_local --config.total_steps=50
  python launch/eval.py --config=configs/demo.py --workdir=/tmp/demo

Variants (comma-separated `key=value` or flags): `runlocal` (seconds on CPU).
"""

import ml_collections

from disent_jax.train import config_utils


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The demo config; `arg` selects variants, e.g. "runlocal"."""
  variant = config_utils.parse_variant(arg, runlocal=False)
  config = config_utils.harness_config("demo", total_steps=2000,
                                       batch_size=64)

  config.data = ml_collections.ConfigDict()
  config.data.seed = 1234
  config.data.dim = 32
  config.data.rank = 4
  config.data.noise = 0.05
  config.data.num_train = 20_000
  config.data.num_eval = 1024

  config.model = ml_collections.ConfigDict()
  config.model.hidden = (128, 64)
  config.model.latent = 4

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 3e-3
  config.optim.weight_decay = 1e-4

  if variant.runlocal:
    config.total_steps = 40
    config.batch_size = 16
    config.log_every_steps = 10
    config.checkpoint_every_steps = 10
    config.data.num_train = 512
    config.data.num_eval = 64
    config.model.hidden = (32,)
  return config
