r"""gcn_recon's learning curve on held-out and on training subjects.

    python scripts/gcn_recon_probe_training.py \
        --config=configs/gcn_recon.py --config.data.num_subjects=40 \
        --config.data.size=32 --config.batch_size=16 \
        --steps=600 --eval_every=200 --out=/tmp/gcn_probe.json

Trains the method in-process (the harness's train step, data and
baselines, no checkpoints) and every `eval_every` steps evaluates on the
test subjects and on as many training images. The two columns side by
side say whether a run that does not beat the baselines on unseen subjects
underfits (both high) or memorises its training images (training low,
test at the baseline). The head-pose error (mean absolute pitch / yaw /
roll of c_pose against the rendered pose, degrees, beside predicting zero)
says whether the landmarks are fitted by the pose or by deforming the
canonical shape. Prints the loss terms every `log_every` steps and
writes every row to --out (JSON) when given.
"""

import functools
import json
import pathlib
import time
from typing import Any, Mapping, Sequence

from absl import app
from absl import flags
import jax
import numpy as np

from disent_jax.cli import common
from disent_jax.methods.gcn_recon import data as data_lib
from disent_jax.methods.gcn_recon import evaluation
from disent_jax.methods.gcn_recon import method as method_lib
from disent_jax.methods.gcn_recon import steps as steps_lib

_STEPS = flags.DEFINE_integer("steps", 600, "Training steps.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 200,
                                   "Evaluate every this many steps.")
_LOG_EVERY = flags.DEFINE_integer("log_every", 50,
                                  "Print the mean terms every this many.")
_MAX_EVAL = flags.DEFINE_integer("max_eval_images", 192,
                                 "Images per evaluation split.")
_OUT = flags.DEFINE_string("out", None, "Write the rows here (JSON).")

# Metrics shown per evaluation (short name: evaluate()'s key).
SHOWN = {
    "shape": "shape/mean_mm",
    "shape_tpl": "baseline_template/shape/mean_mm",
    "shape_ridge": "baseline_ridge/shape/mean_mm",
    "nme": "landmarks/nme",
    "nme_mean": "baseline_mean_landmarks/landmarks/nme",
    "nme_ridge": "baseline_ridge/landmarks/nme",
    "photo": "recon/photometric",
    "photo_mean": "baseline_mean_image/recon/photometric",
}


def eval_batches(arrays: Mapping[str, np.ndarray], *, limit: int,
                 batch: int = 64) -> list[dict[str, np.ndarray]]:
  """At most `limit` evenly spaced rows of `arrays` in batches."""
  n = len(arrays["image"])
  idx = np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int))
  return [{k: v[idx[i:i + batch]] for k, v in arrays.items()}
          for i in range(0, len(idx), batch)]


def pose_errors(predict, state, batches: Sequence[Mapping[str, np.ndarray]]
                ) -> dict[str, float]:
  """Mean |c_pose[:3] - pose| (degrees) over the batches, and of zero."""
  err, zero = [], []
  for b in batches:
    pred = np.asarray(predict(state, b["image"])["code_pose"])[:, :3]
    gt = np.asarray(b["pose"])
    err.append(np.abs(pred - gt))
    zero.append(np.abs(gt))
  deg = 180.0 / np.pi
  e, z = np.concatenate(err).mean(0) * deg, np.concatenate(zero).mean(0) * deg
  return {"pose_deg": [round(float(x), 2) for x in e],
          "pose_deg_zero": [round(float(x), 2) for x in z]}


def run(config, *, steps: int, eval_every: int, log_every: int,
        max_eval: int) -> list[dict[str, Any]]:
  """Trains `config` for `steps`; returns the evaluation rows."""
  dcfg = data_lib.DataConfig.from_config(config.data)
  train, test = data_lib.generate(dcfg)
  ctx = method_lib.context(config, num_classes=dcfg.num_subjects)
  k = int(config.data_k)
  source = data_lib.GroupedSource(train, k=k, seed=config.seed)
  rng = np.random.default_rng(config.seed)

  def batch():
    js = rng.integers(0, len(source), config.batch_size // k)
    return data_lib.flatten_groups(
        {key: np.stack([source[j][key] for j in js])
         for key in data_lib.TRAIN_KEYS})

  state = steps_lib.init_state(jax.random.PRNGKey(config.seed), batch(),
                               ctx=ctx, num_classes=dcfg.num_subjects)
  step = jax.jit(functools.partial(steps_lib.train_step, ctx=ctx))
  predict = jax.jit(functools.partial(method_lib._predict, ctx=ctx))  # pylint: disable=protected-access
  baselines = evaluation.Baselines.fit(train, ctx.morphable)
  splits = {"test": eval_batches(test, limit=max_eval),
            "train": eval_batches(train, limit=max_eval)}

  def evaluate(s: int) -> dict[str, Any]:
    row = {"step": s}
    for name, batches in splits.items():
      r = evaluation.evaluate(predict, state, batches, baselines=baselines,
                              morphable=ctx.morphable)
      row[name] = {short: round(r[key], 4) for short, key in SHOWN.items()
                   if key in r}
      row[name].update(pose_errors(predict, state, batches))
      print(f"step {s} {name:5s} {row[name]}", flush=True)
    return row

  rows = [evaluate(0)]
  key = jax.random.PRNGKey(config.seed + 1)
  start, acc = time.time(), {}
  for s in range(1, steps + 1):
    state, metrics = step(state, batch(), jax.random.fold_in(key, s))
    for name, v in metrics.items():
      if name.startswith("terms/") or name in ("loss", "disc/loss"):
        acc.setdefault(name.replace("terms/", ""), []).append(float(v))
    if s % log_every == 0:
      means = {n: float(f"{np.mean(v):.4g}") for n, v in acc.items()}
      print(f"step {s} {time.time() - start:.0f}s {means}", flush=True)
      acc = {}
    if s % eval_every == 0 or s == steps:
      rows.append(evaluate(s))
  return rows


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = common.CONFIG.value
  if config.method != "gcn_recon":
    raise app.UsageError(f"--config is {config.method}, expected gcn_recon")
  rows = run(config, steps=_STEPS.value, eval_every=_EVAL_EVERY.value,
             log_every=_LOG_EVERY.value, max_eval=_MAX_EVAL.value)
  if _OUT.value:
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": config.to_dict(), "rows": rows},
                              indent=1, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
  common.quiet_library_logs()
  app.run(main, flags_parser=common.parse_flags)
