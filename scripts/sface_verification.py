"""SFace verification on SynthFace renders (and what real photos allow).

Renders `--subjects` unseen SynthFace subjects with `--images` examples each
(random expression, pose, light, background and occluders, as the image
methods see them), aligns every face to the SFace template with the world's
ground-truth iBUG-68 landmarks, embeds it with the JAX SFace and reports the
same-vs-different-subject ROC-AUC, EER and TAR@FAR over all pairs, overall
and for near-frontal faces only, next to a pixel baseline (cosine between
aligned, mean-centred pixels). Writes JSON to `--out`.

    python scripts/sface_verification.py --out=docs/results/sface_verification.json
"""

import json
import os
import time

from absl import app
from absl import flags
import jax
import numpy as np

from disent_jax.metrics import verification
from disent_jax.nets import align
from disent_jax.nets import sface
from disent_jax.synthface import world as world_lib

_SUBJECTS = flags.DEFINE_integer("subjects", 40, "SynthFace subjects.")
_IMAGES = flags.DEFINE_integer("images", 6, "Images per subject.")
_SIZE = flags.DEFINE_integer("size", 128, "Render size (64, 128 or 256).")
_SEED = flags.DEFINE_integer("seed", 7, "World seed (subjects unseen by "
                             "the default training seed 0).")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")


def synthface_faces(subjects: int, images: int, size: int, seed: int):
  """(aligned faces [N, 112, 112, 3] in [0, 1], subject [N], frontal [N])."""
  w = world_lib.world("1k")
  fn = w.image_fn(size=size)
  align_fn = jax.jit(align.align_face)
  faces, labels, frontal = [], [], []
  for s in range(subjects):
    for k in range(images):
      ex = fn(seed, s * images + k, s)
      five = align.five_points_from_ibug68(ex["landmarks_2d"])
      faces.append(np.asarray(align_fn(ex["image"], five)))
      labels.append(s)
      frontal.append(bool(ex["near_frontal"]))
  return np.stack(faces), np.array(labels), np.array(frontal)


def _embed_all(net, faces, batch=32):
  fn = jax.jit(sface.embed)
  return np.concatenate([np.asarray(fn(net, faces[i:i + batch]))
                         for i in range(0, len(faces), batch)])


def _pixels(faces):
  x = faces.reshape(len(faces), -1)
  return x - x.mean(axis=1, keepdims=True)


def main(argv):
  del argv
  t0 = time.time()
  net = sface.load_sface()
  faces, labels, frontal = synthface_faces(_SUBJECTS.value, _IMAGES.value,
                                           _SIZE.value, _SEED.value)
  emb = _embed_all(net, faces)
  result = {
      "command": "python scripts/sface_verification.py "
                 f"--subjects={_SUBJECTS.value} --images={_IMAGES.value} "
                 f"--size={_SIZE.value} --seed={_SEED.value}",
      "weights": os.path.basename(net.source),
      "synthface/sface": verification.verification_report(emb, labels),
      "synthface/pixels": verification.verification_report(
          _pixels(faces), labels),
  }
  keep = frontal
  if len(np.unique(labels[keep])) > 1:
    result["synthface_near_frontal/sface"] = (
        verification.verification_report(emb[keep], labels[keep]))
  result["seconds"] = time.time() - t0
  text = json.dumps(result, indent=1)
  print(text)
  if _OUT.value:
    os.makedirs(os.path.dirname(_OUT.value) or ".", exist_ok=True)
    with open(_OUT.value, "w", encoding="utf-8") as f:
      f.write(text + "\n")


if __name__ == "__main__":
  app.run(main)
