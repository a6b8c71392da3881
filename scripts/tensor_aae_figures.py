"""Paper 000's qualitative figures for a trained tensor_aae run.

    python scripts/tensor_aae_figures.py --workdir=runs/tensor_aae \
        [--out=DIR]

Reads the run's config and final checkpoint and writes decomposition.png,
transfer.png and interpolation.png (`methods.tensor_aae.figures`) to
DIR (default WORKDIR/figures): held-out faces split into normals, albedo,
shading and mask; expression, pose and light transfer on the probe grid
beside the ground truth; interpolation strips. With `--photos` (a folder
of face photos, or "astronaut" for scikit-image's portrait) it also writes
photo_decomposition.png: real photos framed like SynthFace images by
MediaPipe (`data.photos`) and decomposed by the SynthFace-trained model.
"""

import argparse
import json
import pathlib
import sys

from disent_jax import methods
from disent_jax.methods.tensor_aae import data as data_lib
from disent_jax.methods.tensor_aae import evaluation
from disent_jax.methods.tensor_aae import figures
from disent_jax.train import checkpointing
from disent_jax.train import config_utils


def _photo_figure(source: str, out: pathlib.Path, apps, state,
                  size: int) -> None:
  """Decomposes real photos (needs mediapipe; see docs/real_assets.md)."""
  from disent_jax.data import photos  # pylint: disable=g-import-not-at-top
  if source == "astronaut":
    from PIL import Image  # pylint: disable=g-import-not-at-top
    from skimage import data as skdata  # pylint: disable=g-import-not-at-top
    folder = out / "photos"
    folder.mkdir(exist_ok=True)
    Image.fromarray(skdata.astronaut()).save(folder / "astronaut.png")
    source = str(folder)
  found = photos.load_photos(source, size=size)
  for path, reason in found.skipped:
    print(f"{path}: skipped ({reason})")
  figures.decomposition(str(out / "photo_decomposition.png"), apps, state,
                        found.images)


def main() -> int:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", default="")
  parser.add_argument("--photos", default="",
                      help="a folder of face photos, or 'astronaut'")
  args = parser.parse_args()
  workdir = pathlib.Path(args.workdir).expanduser()
  saved = workdir / "config.json"
  if not saved.is_file():
    print(f"{saved}: missing; expected a tensor_aae run directory",
          file=sys.stderr)
    return 1
  config = config_utils.load_config("tensor_aae")
  config.update(json.loads(saved.read_text()))
  if config.method != "tensor_aae":
    print(f"{saved}: method {config.method!r}, expected tensor_aae",
          file=sys.stderr)
    return 1
  method = methods.load("tensor_aae").build(config)
  state, step = checkpointing.load_state(str(workdir))
  out = pathlib.Path(args.out) if args.out else workdir / "figures"
  out.mkdir(parents=True, exist_ok=True)
  dcfg = data_lib.DataConfig.from_config(config.data)
  test = data_lib.make_sources(dcfg).test_arrays
  apps = method.applications
  # Four held-out subjects, one image each.
  ipp = dcfg.images_per_subject
  pick = [i * ipp for i in range(min(4, dcfg.num_test_subjects))]
  figures.decomposition(str(out / "decomposition.png"), apps, state,
                        test["image"][pick], test["normals"][pick])
  grid = evaluation.probe_grid_arrays(
      resolution=dcfg.resolution, render_size=dcfg.render_size,
      num_identities=max(2, int(config.eval.probe_identities)),
      seed=dcfg.seed + 1,
      downsample=lambda x: data_lib.downsample_images(x, size=dcfg.size))
  figures.transfers(str(out / "transfer.png"), apps, state, grid)
  figures.interpolation(str(out / "interpolation.png"), apps, state,
                        test["image"][pick[0]], test["image"][pick[-1]])
  if args.photos:
    _photo_figure(args.photos, out, apps, state, dcfg.size)
  print(f"step {step}: wrote {sorted(p.name for p in out.glob('*.png'))} "
        f"to {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
