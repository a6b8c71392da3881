"""Evaluates a checkpoint: `disent-jax-eval --config=... --workdir=DIR`.

Writes metrics.json and report.md into DIR.
"""

from typing import Sequence

from absl import app
from absl import flags

from disent_jax.cli import common

flags.mark_flags_as_required(["config", "workdir"])


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  common.quiet_library_logs()
  common.maybe_initialize_distributed()
  from disent_jax import methods  # pylint: disable=g-import-not-at-top
  from disent_jax.train import config_utils  # pylint: disable=g-import-not-at-top
  from disent_jax.train import evaluation  # pylint: disable=g-import-not-at-top

  config = common.CONFIG.value
  config_utils.check_keys(config)
  method = methods.load(config.method).build(config)
  metrics = evaluation.evaluate_checkpoint(config, common.WORKDIR.value, method,
                                           step=common.STEP.value)
  print(f"eval {metrics}", flush=True)


def run() -> None:
  app.run(main, flags_parser=common.parse_flags)


if __name__ == "__main__":
  run()
