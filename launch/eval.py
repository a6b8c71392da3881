"""Evaluates a checkpoint (see disent_jax/cli/eval.py).

  python launch/eval.py --config=configs/demo.py:runlocal --workdir=/tmp/run
"""

from disent_jax.cli import eval as eval_cli

if __name__ == "__main__":
  eval_cli.run()
