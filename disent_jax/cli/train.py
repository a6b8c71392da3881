"""Trains a method: `disent-jax-train --config=configs/x.py --workdir=DIR`.

Re-running the same command resumes from the newest checkpoint in DIR.
"""

import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging

from disent_jax.cli import common

flags.mark_flags_as_required(["config", "workdir"])


def main(argv: Sequence[str]) -> None:
  config, method = common.setup(argv)
  from disent_jax.train import loop  # pylint: disable=g-import-not-at-top
  try:
    result = loop.train(config, common.WORKDIR.value, method)
  except loop.NonFiniteError as e:
    logging.error("%s", e)
    sys.stderr.write(f"ERROR: {e}\n")
    sys.exit(3)
  logging.info("done at step %d; params fingerprint %s", result.step,
               loop.params_fingerprint(result.state))
  print(f"step {result.step} fingerprint "
        f"{loop.params_fingerprint(result.state)}", flush=True)
  if result.eval_metrics:
    print(f"eval {result.eval_metrics}", flush=True)


def run() -> None:
  app.run(main, flags_parser=common.parse_flags)


if __name__ == "__main__":
  run()
