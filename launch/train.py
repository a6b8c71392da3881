"""Trains a method (see disent_jax/cli/train.py).

  python launch/train.py --config=configs/demo.py:runlocal --workdir=/tmp/run
"""

from disent_jax.cli import train

if __name__ == "__main__":
  train.run()
