"""Evaluates a checkpoint: `disent-jax-eval --config=... --workdir=DIR`.

Writes metrics.json and report.md into DIR.
"""

from typing import Sequence

from absl import app
from absl import flags

from disent_jax.cli import common

flags.mark_flags_as_required(["config", "workdir"])


def main(argv: Sequence[str]) -> None:
  config, method = common.setup(argv)
  from disent_jax.train import evaluation  # pylint: disable=g-import-not-at-top
  metrics = evaluation.evaluate_checkpoint(config, common.WORKDIR.value, method,
                                           step=common.STEP.value)
  print(f"eval {metrics}", flush=True)


def run() -> None:
  app.run(main, flags_parser=common.parse_flags)


if __name__ == "__main__":
  run()
