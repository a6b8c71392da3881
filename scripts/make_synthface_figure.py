"""Renders docs/synthface.png: SynthFace faces across factors of variation.

    python scripts/make_synthface_figure.py --out docs/synthface.png

Rows are subjects; columns vary expression, pose, lighting and occluders.
"""

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from disent_jax.synthface import expression as expr
from disent_jax.synthface import sampling
from disent_jax.synthface import world as world_lib

# (expression, (pitch, yaw, roll) in degrees, light seed, occluder kind)
COLUMNS = (
    ("neutral", (0, 0, 0), 0, 0),
    ("high_smile", (0, -15, 0), 1, 0),
    ("mouth_open", (5, 10, 0), 2, 0),
    ("eyebrow", (0, 0, 5), 3, 0),
    ("bareteeth", (-10, 35, 0), 4, 0),
    ("smile_left", (0, -45, -5), 5, 0),
    ("blink", (10, 20, 0), 6, 1),
    ("mouth_side", (0, -20, 8), 7, 2),
)


def render_grid(*, resolution: str, size: int, rows: int, seed: int
                ) -> np.ndarray:
  """Returns the [rows * size, len(COLUMNS) * size, 3] uint8 grid."""
  world = world_lib.World(resolution)
  fn = jax.jit(lambda *a: world.render_factors(*a, size=size)["image"])
  tiles = []
  for r in range(rows):
    params = world.identity(seed, r)
    row = []
    for c, (name, pose, light, kind) in enumerate(COLUMNS):
      weights = (np.zeros(expr.NUM_EXPRESSIONS, np.float32) if name ==
                 "neutral" else expr.one_hot(name))
      key = jax.random.PRNGKey(1000 * r + 10 * c + light)
      sh = sampling.sample_sh(jax.random.fold_in(key, 1))
      bg = sampling.sample_background(jax.random.fold_in(key, 2), size)
      occ_params = jnp.asarray([0.8 if r % 2 else -0.8, 0.3, -0.5, 0.5])
      img = fn(params, jnp.asarray(weights),
               jnp.radians(jnp.asarray(pose, jnp.float32)), sh, bg,
               jnp.int32(kind), occ_params, jnp.float32(1.0),
               jnp.zeros(2, jnp.float32))
      row.append(np.asarray(img))
    tiles.append(np.concatenate(row, axis=1))
  grid = np.concatenate(tiles, axis=0)
  return (np.clip(grid, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--out", default="docs/synthface.png")
  parser.add_argument("--resolution", default="5k")
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--rows", type=int, default=4)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  grid = render_grid(resolution=args.resolution, size=args.size,
                     rows=args.rows, seed=args.seed)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(grid).save(out)
  print(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]})")


if __name__ == "__main__":
  main()
