"""MediaPipe's Face Landmarker on SynthFace renders: mapping and errors.

Renders `--subjects` x `--images` SynthFace examples (a world seed the
methods do not train on, occluders included), runs MediaPipe's Face
Landmarker on each, and

  * derives the iBUG-68 table (`landmarker.IBUG68_FROM_MEDIAPIPE`): for each
    iBUG point, the MediaPipe landmark nearest to it (inter-ocular
    normalised, visible points only) over the first `--train_fraction` of
    the subjects;
  * scores it on the other subjects: the normalised mean error (NME) of the
    68 points per face region, beside the trivial answer (the training
    mean 68-point shape placed by the detected five points), and of the
    five alignment points (from the 68, and with the iris centres as eyes);
  * scores the head pose (`landmarker.rotation_to_pose`) against the exact
    pose, beside the trivial answer "frontal";

and writes it all, with the command, to `--out` (JSON).

    python scripts/mediapipe_synthface.py \\
        --out=docs/results/mediapipe_synthface.json
"""

import json
import os
import time

from absl import app
from absl import flags
import jax
import numpy as np

from disent_jax.nets import align
from disent_jax.nets import landmarker
from disent_jax.synthface import world as world_lib

_SUBJECTS = flags.DEFINE_integer("subjects", 60, "SynthFace subjects.")
_IMAGES = flags.DEFINE_integer("images", 3, "Images per subject.")
_SIZE = flags.DEFINE_integer("size", 128, "Render size (64, 128 or 256).")
_SEED = flags.DEFINE_integer("seed", 11, "World seed.")
_TRAIN = flags.DEFINE_float("train_fraction", 2 / 3, "Subjects that derive "
                            "the table; the rest score it.")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")

_REGIONS = {"jaw": (0, 17), "brows": (17, 27), "nose": (27, 36),
            "eyes": (36, 48), "mouth": (48, 68)}


def _renders(subjects, images, size, seed):
  fn = world_lib.world("1k").image_fn(size=size)
  for s in range(subjects):
    for k in range(images):
      ex = jax.device_get(fn(seed, s * images + k, s))
      yield s, ex


def _nme(pred, gt, visible, interocular):
  err = np.linalg.norm(pred - gt, axis=-1) / interocular[:, None]
  return float((err * visible).sum() / max(visible.sum(), 1))


def derive_table(points, gt, visible, interocular):
  """For each iBUG point, the MediaPipe index with the least mean normalised
  distance over the faces where the point is visible (the 468 mesh
  landmarks only, not the irises)."""
  table = []
  for j in range(gt.shape[1]):
    d = np.linalg.norm(points[:, :468] - gt[:, j:j + 1], axis=-1)
    d = d / interocular[:, None]
    w = visible[:, j].astype(np.float64)
    table.append(int(np.argmin((d * w[:, None]).sum(0) / max(w.sum(), 1))))
  return tuple(table)


def main(argv):
  del argv
  t0 = time.time()
  lm = landmarker.Landmarker()
  rows = {"subject": [], "points": [], "gt": [], "visible": [], "pose": [],
          "gt_pose": []}
  found = total = 0
  detect_s = 0.0
  for s, ex in _renders(_SUBJECTS.value, _IMAGES.value, _SIZE.value,
                        _SEED.value):
    total += 1
    t = time.time()
    det = lm.detect(np.clip(np.asarray(ex["image"]), 0.0, 1.0))
    detect_s += time.time() - t
    if det is None:
      continue
    found += 1
    rows["subject"].append(s)
    rows["points"].append(det.landmarks[:, :2])
    # The renderer's pixel i covers [i, i + 1); ours are centred.
    rows["gt"].append(np.asarray(ex["landmarks_2d"]) - 0.5)
    rows["visible"].append(np.asarray(ex["landmarks_visible"]))
    rows["pose"].append(det.pose)
    rows["gt_pose"].append(np.asarray(ex["pose"]))
  lm.close()
  a = {k: np.asarray(v) for k, v in rows.items()}
  gt5 = np.asarray(align.five_points_from_ibug68(a["gt"]))
  interocular = np.linalg.norm(gt5[:, 0] - gt5[:, 1], axis=-1)
  train = a["subject"] < int(round(_TRAIN.value * _SUBJECTS.value))
  test = ~train
  table = derive_table(a["points"][train], a["gt"][train],
                       a["visible"][train], interocular[train])
  ibug = a["points"][:, list(table)]
  # The trivial answer: the training mean shape (in the five-point
  # template's frame) placed by each face's detected five points.
  five = np.asarray(align.five_points_from_ibug68(ibug))
  tpl = align.FIVE_POINT_TEMPLATE
  frame = []
  for i in np.where(train)[0]:
    m = np.asarray(align.similarity_2d(gt5[i], tpl))
    frame.append(a["gt"][i] @ m[:, :2].T + m[:, 2])
  mean68 = np.mean(frame, axis=0)
  placed = []
  for i in range(len(five)):
    m = np.asarray(align.similarity_2d(tpl, five[i]))
    placed.append(mean68 @ m[:, :2].T + m[:, 2])
  placed = np.asarray(placed)
  vis, io = a["visible"][test], interocular[test]
  result = {
      "command": "python scripts/mediapipe_synthface.py "
                 f"--subjects={_SUBJECTS.value} --images={_IMAGES.value} "
                 f"--size={_SIZE.value} --seed={_SEED.value} "
                 f"--train_fraction={_TRAIN.value:.4g}",
      "task_file": os.path.basename(landmarker.find_task_file()),
      "detected": found, "images": total,
      "ms_per_detection": 1000.0 * detect_s / max(total, 1),
      "ibug68_table": list(table),
      "table_matches_module": table == landmarker.IBUG68_FROM_MEDIAPIPE,
      "test_faces": int(test.sum()),
      "ibug68_nme/mediapipe": _nme(ibug[test], a["gt"][test], vis, io),
      "ibug68_nme/baseline_mean_shape": _nme(placed[test], a["gt"][test],
                                             vis, io),
      "ibug68_mean_px/mediapipe": float(
          (np.linalg.norm(ibug[test] - a["gt"][test], axis=-1) * vis).sum()
          / max(vis.sum(), 1)),
      "interocular_mean_px": float(io.mean()),
  }
  for name, (lo, hi) in _REGIONS.items():
    result[f"ibug68_nme/mediapipe/{name}"] = _nme(
        ibug[test][:, lo:hi], a["gt"][test][:, lo:hi], vis[:, lo:hi], io)
  iris = five.copy()
  iris[:, :2] = a["points"][:, list(landmarker.IRIS_CENTRES)]
  names = ("eye_left", "eye_right", "nose", "mouth_left", "mouth_right")
  for label, pts in (("from_ibug68", five), ("iris_eyes", iris)):
    err = np.linalg.norm(pts[test] - gt5[test], axis=-1) / io[:, None]
    for k, n in enumerate(names):
      result[f"five_points_nme/{label}/{n}"] = float(err[:, k].mean())
  deg = np.degrees
  pose_err = np.abs(deg(a["pose"]) - deg(a["gt_pose"]))
  for k, n in enumerate(("pitch", "yaw", "roll")):
    result[f"pose_mae_deg/mediapipe/{n}"] = float(pose_err[:, k].mean())
    result[f"pose_mae_deg/baseline_frontal/{n}"] = float(
        np.abs(deg(a["gt_pose"][:, k])).mean())
    result[f"pose_bias_deg/mediapipe/{n}"] = float(
        (deg(a["pose"][:, k]) - deg(a["gt_pose"][:, k])).mean())
  result["seconds"] = time.time() - t0
  text = json.dumps(result, indent=1)
  print(text)
  if _OUT.value:
    os.makedirs(os.path.dirname(_OUT.value) or ".", exist_ok=True)
    with open(_OUT.value, "w", encoding="utf-8") as f:
      f.write(text + "\n")


if __name__ == "__main__":
  app.run(main)
