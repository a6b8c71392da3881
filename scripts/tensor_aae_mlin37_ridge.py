"""The [37]-style baseline's ridge weight: test normal error per ridge.

    python scripts/tensor_aae_mlin37_ridge.py [--ridges 0.1 1 10] \
        [--images 40] [--sweeps 6]

Fits `multilinear_baseline.fit_multilinear` on the quick config's
near-frontal training images for each ridge weight and prints the mean
normal error on the first `--images` near-frontal test images (the sweep
behind the default ridge of 1; see the method README's deviations).
"""

import argparse

from disent_jax.methods.tensor_aae import data as data_lib
from disent_jax.methods.tensor_aae import multilinear_baseline as mlin
from disent_jax.metrics import normals as normal_metrics
from disent_jax.train import config_utils


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--ridges", type=float, nargs="+",
                      default=[0.1, 1.0, 10.0])
  parser.add_argument("--images", type=int, default=40)
  parser.add_argument("--sweeps", type=int, default=6)
  args = parser.parse_args()
  config = config_utils.load_config("tensor_aae")
  src = data_lib.make_sources(data_lib.DataConfig.from_config(config.data))
  train, test = src.train_arrays, src.test_arrays
  sel = train["near_frontal"] > 0.5
  near = test["gt_near_frontal"] > 0.5
  images = test["image"][near][:args.images]
  for ridge in args.ridges:
    dec = mlin.fit_multilinear(
        train["image"][sel], mlin.grey_light(train["fit_sh"][sel]),
        expression=int(config.model.expression),
        identity=int(config.model.identity), sweeps=args.sweeps,
        ridge=ridge)
    lat = dec.encode(images, sweeps=args.sweeps)
    stats = normal_metrics.normal_error_stats(
        dec.normals(lat["expression"], lat["identity"]),
        test["normals"][near][:args.images],
        test["face_mask"][near][:args.images][..., 0], thresholds=(35.0,))
    print(f"ridge {ridge:g}: train MSE {dec.losses[-1]:.5f}, test normal "
          f"error {stats['mean']:.1f}°", flush=True)


if __name__ == "__main__":
  main()
