"""Evaluates a checkpoint: `disent-jax-eval --config=... --workdir=DIR`.

Writes metrics.json and report.md into DIR.
"""

from typing import Sequence

from absl import app
from absl import flags
from ml_collections import config_flags

from disent_jax.cli import common

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The config the run was trained with.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default newest).")
flags.mark_flags_as_required(["config", "workdir"])
common.define_distributed_flags()


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  common.quiet_library_logs()
  common.maybe_initialize_distributed()
  from disent_jax import methods  # pylint: disable=g-import-not-at-top
  from disent_jax.train import config_utils  # pylint: disable=g-import-not-at-top
  from disent_jax.train import evaluation  # pylint: disable=g-import-not-at-top

  config = _CONFIG.value
  config_utils.check_keys(config)
  method = methods.load(config.method).build(config)
  metrics = evaluation.evaluate_checkpoint(config, _WORKDIR.value, method,
                                           step=_STEP.value)
  print(f"eval {metrics}", flush=True)


def run() -> None:
  app.run(main, flags_parser=common.parse_flags)


if __name__ == "__main__":
  run()
