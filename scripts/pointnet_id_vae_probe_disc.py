r"""What D_ID of a trained pointnet_id_vae run calls "the same identity".

    python scripts/pointnet_id_vae_probe_disc.py \
        --config=configs/pointnet_id_vae.py --workdir=runs/pointnet_id_vae \
        [--split=test] [--max_examples=480]

Restores the newest checkpoint of WORKDIR (pass the run's --config and any
--config.* overrides that change the data or the networks) and scores each
face X of the split against candidates of known kind:

  same-subject scan   another face of X's subject (D_ID's real pairs)
  GT neutral          X's ground-truth neutral (never shown to D_ID)
  predicted neutral   the VAE's X_id (D_ID's fake pairs)
  reconstruction      the VAE's full output X_id + X_exp
  X itself            the identical face
  other-subject scan  a face of another subject (pre-training negatives)
  mean face           the training mean face

A D_ID that judges identity scores the first two high and the last two
low; one that flags decoded meshes scores the predicted neutral and the
reconstruction low whatever their identity (runs without D_ID get only
the second table). Prints a markdown table
(mean probability of "same identity", fraction above 1/2, and the mean
distance of the candidate from X's GT neutral in mm) and writes it to
WORKDIR/disc_probe_<split>.{md,json}.

A second table says where the predicted neutrals' error (AVD_neu) comes
from: a bias shared by every face (the split's mean error field), a
shrinkage of the identity towards the mean face (the least-squares factor
alpha of the predicted identity offsets on the true ones), or neither.
"""

import json
import pathlib
from typing import Sequence

from absl import app
from absl import flags
import numpy as np

from disent_jax.cli import common
from disent_jax.methods.pointnet_id_vae import data as data_lib
from disent_jax.train import evaluation

_SPLIT = flags.DEFINE_enum("split", "test", ["train", "test"],
                           "Which faces to probe.")
_MAX = flags.DEFINE_integer("max_examples", 480,
                            "Probe at most this many faces (evenly spaced).")
_BATCH = flags.DEFINE_integer("probe_batch", 32, "Faces per D_ID call.")

KINDS = ("same-subject scan", "GT neutral", "predicted neutral",
         "reconstruction", "X itself", "other-subject scan", "mean face")


def probe(method, state, source, mean_face: np.ndarray, *, max_examples: int,
          batch: int, seed: int = 0
          ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
  """D_ID's scores of every candidate kind over `source`'s faces.

  Returns:
    ({kind: {"p_same": mean probability, "above_half": fraction > 0.5,
    "dist_to_neutral_mm": mean per-vertex distance of the candidate from
    the face's GT neutral}}, `neutral_error` of the predicted neutrals).
  """
  scores = method.applications.get("identity_scores")  # None: no D_ID.
  paired = data_lib.PairedSource(source, seed=seed)
  n = min(len(paired), max_examples)
  idx = np.unique(np.linspace(0, len(paired) - 1, n).round().astype(int))
  out = {k: {"p": [], "d": []} for k in KINDS}
  identities, neutrals = [], []
  for start in range(0, len(idx), batch):
    rows = [paired[int(i)] for i in idx[start:start + batch]]
    x = np.stack([r["vertices"] for r in rows]).astype(np.float32)
    neutral = np.stack([r["neutral"] for r in rows]).astype(np.float32)
    pred = method.eval_step(state, {"vertices": x})
    identities.append(np.asarray(pred["identity"]))
    neutrals.append(neutral)
    candidates = {
        "same-subject scan": np.stack([r["same_vertices"] for r in rows]),
        "GT neutral": neutral,
        "predicted neutral": np.asarray(pred["identity"]),
        "reconstruction": np.asarray(pred["face"]),
        "X itself": x,
        "other-subject scan": np.stack([r["other_vertices"] for r in rows]),
        "mean face": np.broadcast_to(mean_face, x.shape),
    }
    for kind, cand in candidates.items():
      if scores is None:
        break
      cand = np.asarray(cand, np.float32)
      out[kind]["p"].append(np.asarray(scores(state, x, cand)))
      out[kind]["d"].append(
          np.linalg.norm(cand - neutral, axis=-1).mean(axis=-1))
  result = {}
  for kind, v in out.items():
    if not v["p"]:
      continue
    p, d = np.concatenate(v["p"]), np.concatenate(v["d"])
    result[kind] = {"p_same": float(p.mean()),
                    "above_half": float((p > 0.5).mean()),
                    "dist_to_neutral_mm": float(d.mean())}
  error = neutral_error(np.concatenate(identities), np.concatenate(neutrals),
                        mean_face)
  return result, error


def neutral_error(identity: np.ndarray, neutral: np.ndarray,
                  mean_face: np.ndarray) -> dict[str, float]:
  """Splits the predicted neutrals' error into bias, shrinkage and rest.

  Args:
    identity: [N, V, 3] predicted neutrals (mm).
    neutral: [N, V, 3] ground-truth neutrals (mm).
    mean_face: [V, 3] the training mean face (mm).

  Returns:
    "AVD_neu": the mean per-vertex distance |identity - neutral|;
    "bias_norm": the mean per-vertex norm of the mean error field b;
    "AVD_neu_minus_bias": the AVD of identity - b;
    "alpha": the least-squares factor of (identity - b - m) on
    (neutral - m) (1: no shrinkage, 0: the mean face);
    "AVD_neu_minus_bias_and_shrinkage": the AVD of identity - b against
    m + alpha (neutral - m), the part neither explains.
  """
  identity = np.asarray(identity, np.float64)
  neutral = np.asarray(neutral, np.float64)
  m = np.asarray(mean_face, np.float64)
  avd = lambda e: float(np.linalg.norm(e, axis=-1).mean())
  err = identity - neutral
  bias = err.mean(axis=0)
  pred_off = identity - bias - m
  true_off = neutral - m
  alpha = float(np.sum(pred_off * true_off) /
                max(np.sum(true_off * true_off), 1e-12))
  return {"AVD_neu": avd(err), "bias_norm": avd(bias),
          "AVD_neu_minus_bias": avd(err - bias), "alpha": alpha,
          "AVD_neu_minus_bias_and_shrinkage": avd(pred_off - alpha * true_off)}


def markdown(result: dict[str, dict[str, float]], title: str,
             error: dict[str, float] | None = None) -> str:
  lines = [f"D_ID probe: {title}" + ("" if result else " (no D_ID)"), ""]
  if result:
    lines += ["| candidate | P(same identity) | fraction > 0.5 | "
              "distance to GT neutral (mm) |", "|---|---:|---:|---:|"]
  for kind, r in result.items():
    lines.append(f"| {kind} | {r['p_same']:.3f} | {r['above_half']:.3f} | "
                 f"{r['dist_to_neutral_mm']:.3f} |")
  if error:
    lines += ["", "Where the predicted neutrals' error comes from (mm; "
              "alpha: 1 = no shrinkage, 0 = the mean face):",
              "", "| AVD_neu | bias norm | AVD_neu − bias | alpha | "
              "AVD_neu − bias − shrinkage |", "|---:|---:|---:|---:|---:|",
              f"| {error['AVD_neu']:.3f} | {error['bias_norm']:.3f} | "
              f"{error['AVD_neu_minus_bias']:.3f} | {error['alpha']:.3f} | "
              f"{error['AVD_neu_minus_bias_and_shrinkage']:.3f} |"]
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> None:
  config, method = common.setup(argv)
  workdir = common.WORKDIR.value
  state, step, _ = evaluation.restore_checkpoint(config, workdir, method)
  sources = data_lib.make_sources(config)
  split = sources.test if _SPLIT.value == "test" else sources.train
  mean, _, _ = data_lib.normalization(
      sources.train, max_examples=config.data.stats_examples)
  result, error = probe(method, state, split, np.asarray(mean, np.float32),
                 max_examples=_MAX.value, batch=_BATCH.value,
                 seed=config.seed)
  text = markdown(result, f"{workdir}, step {step}, {_SPLIT.value} split",
                  error)
  print(text)
  base = pathlib.Path(workdir) / f"disc_probe_{_SPLIT.value}"
  base.with_suffix(".md").write_text(text)
  base.with_suffix(".json").write_text(json.dumps(
      {"step": step, "split": _SPLIT.value, "result": result,
       "neutral_error": error}, indent=1))


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main, flags_parser=common.parse_flags)
