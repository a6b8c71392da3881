"""Evaluation of paper 002 (§IV-C) and its figures.

Metrics (mm): E_rec (eq. 9) of the full reconstruction, E_dis (eq. 10) of
the predicted identity shapes within a subject, AVD_neu of the predicted vs
ground-truth neutral, each mean / std / median over test meshes; rank-1
identification from identity codes (leave-one-out nearest neighbour,
cosine; and across expressions, excluding the probe's own sequence); and
the baselines of `baselines.py` (input as neutral, mean face, PCA, ridge
regressions) in the same metrics.
"""

import pathlib
from typing import Any, Callable, Iterable, Mapping

import ml_collections
import numpy as np

from disent_jax.methods.pointnet_id_vae import baselines as bl
from disent_jax.metrics import mesh_errors
from disent_jax.train import partitioning
from disent_jax.viz import export
from disent_jax.viz import grids
from disent_jax.viz import mesh_render


def collect(eval_step: Callable[..., Any], state: Any,
            dataset: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
  """Runs `eval_step` over a dataset; predictions and labels as numpy."""
  parts: dict[str, list[np.ndarray]] = {}
  for batch in dataset:
    out = partitioning.to_host(eval_step(state, batch))
    labels = partitioning.to_host({k: batch[k] for k in
                                   ("vertices", "neutral", "subject",
                                    "expression")})
    for k, v in {**out, **labels}.items():
      parts.setdefault(k, []).append(np.asarray(v))
  if not parts:
    raise ValueError("evaluation: the test set is empty")
  return {k: np.concatenate(v) for k, v in parts.items()}


def rank1_accuracy(codes: np.ndarray, subjects: np.ndarray, *,
                   groups: np.ndarray | None = None) -> float:
  """Leave-one-out rank-1 identification with cosine similarity.

  Args:
    codes: [N, D] identity codes.
    subjects: [N] labels.
    groups: optional [N] labels (e.g. one per expression sequence) whose
      other members are not candidates for a probe of the group: a probe
      must be recognised from faces of other expressions, not from a
      near-copy in its own sequence.

  Returns:
    The fraction of probes whose nearest candidate (by cosine) has the same
    subject, over probes that have a same-subject candidate at all.
  """
  codes = np.asarray(codes, np.float64).reshape(len(codes), -1)
  subjects = np.asarray(subjects)
  norms = np.linalg.norm(codes, axis=1, keepdims=True)
  unit = codes / np.maximum(norms, 1e-12)
  sim = unit @ unit.T
  excluded = np.eye(len(codes), dtype=bool)
  if groups is not None:
    groups = np.asarray(groups)
    excluded |= groups[:, None] == groups[None, :]
  sim[excluded] = -np.inf
  same = (subjects[:, None] == subjects[None, :]) & ~excluded
  valid = same.any(axis=1)
  if not valid.any():
    return float("nan")
  nearest = np.argmax(sim, axis=1)
  return float(np.mean((subjects[nearest] == subjects)[valid]))


def sequence_groups(subjects: np.ndarray, expressions: np.ndarray
                    ) -> np.ndarray:
  """[N] one label per (subject, expression) sequence."""
  pairs = np.stack([np.asarray(subjects), np.asarray(expressions)], axis=1)
  return np.unique(pairs, axis=0, return_inverse=True)[1].reshape(-1)


def metrics_from_predictions(p: Mapping[str, np.ndarray], *,
                             baselines: bl.Baselines | None = None,
                             align: str | None = None) -> dict[str, float]:
  """Paper 002's table row plus baselines, from `collect`'s output.

  Args:
    p: predictions ("face", "identity", "z_id", "z_exp") and labels
      ("vertices", "neutral", "subject", "expression") of the test set.
    baselines: fitted `Baselines` (None: only the input-as-neutral one,
      which needs no fit).
    align: rigid/similarity alignment before the errors (BU-3DFE: rigid).

  Returns:
    The model's E_rec, AVD_neu (all faces and non-neutral ones), E_dis,
    rank-1 of its codes (leave-one-out and across expressions), and
    `baseline_<name>/...` rows with `baseline_ratio/...` = baseline / model.
  """
  out = mesh_errors.mesh_metrics(p["face"], p["vertices"],
                                 identity=p["identity"], neutral=p["neutral"],
                                 subject_ids=p["subject"], align=align)
  expressive = bl.expressive_mask(p["vertices"], p["neutral"])
  out.update(bl.expressive_avd(p["identity"], p["neutral"], expressive,
                               align=align))
  if baselines is not None:
    out.update(baselines.metrics(p, align=align))
  else:  # The one baseline that needs no fit.
    out.update(bl.prediction_metrics("input_as_neutral",
                                     {"identity": p["vertices"]}, p,
                                     align=align))
  for k in ("AVD_neu/mean", "E_dis/mean", "AVD_neu_expressive/mean"):
    ref = out.get(f"baseline_input_as_neutral/{k}")
    if ref is not None and out.get(k, 0) > 0:
      out[f"baseline_ratio/{k}"] = ref / out[k]
  out["rank1_identity_code"] = rank1_accuracy(p["z_id"], p["subject"])
  out["rank1_expression_code"] = rank1_accuracy(p["z_exp"], p["subject"])
  if "expression" in p:
    groups = sequence_groups(p["subject"], p["expression"])
    out["rank1_identity_code/cross_expression"] = rank1_accuracy(
        p["z_id"], p["subject"], groups=groups)
    out["rank1_expression_code/cross_expression"] = rank1_accuracy(
        p["z_exp"], p["subject"], groups=groups)
    # The raw face as its own "code": recognition without a model.
    out["baseline_input/rank1_cross_expression"] = rank1_accuracy(
        np.asarray(p["vertices"]) - np.mean(p["vertices"], axis=0),
        p["subject"], groups=groups)
  out["num_test_meshes"] = float(len(p["subject"]))
  out["num_test_meshes_expressive"] = float(np.sum(expressive))
  return out


def evaluate(eval_step, state, dataset, *, config: ml_collections.ConfigDict,
             baselines: bl.Baselines | None = None) -> dict[str, float]:
  """`metrics_from_predictions` over a test dataset."""
  align = config.get("eval_align", "") or None
  return metrics_from_predictions(collect(eval_step, state, dataset),
                                  baselines=baselines, align=align)


# (metric, title) and (metrics prefix, label) of the baseline chart.
_CHART_METRICS = (("E_rec/mean", "E_rec"), ("AVD_neu/mean", "AVD_neu"),
                  ("AVD_neu_expressive/mean", "AVD_neu, non-neutral"),
                  ("E_dis/mean", "E_dis"))
_CHART_ROWS = (("", "model"), ("baseline_input_as_neutral/",
                               "input as neutral"),
               ("baseline_mean_face/", "mean face"),
               ("baseline_pca/", "PCA"),
               ("baseline_ridge_neutral/", "ridge → GT neutral"),
               ("baseline_ridge_subject_mean/", "ridge → subject mean"))


def baseline_chart(metrics: Mapping[str, float], path: str) -> str:
  """Bars of the model's E_rec / AVD_neu / E_dis beside each baseline's.

  Args:
    metrics: `metrics_from_predictions`'s output.
    path: the PNG to write.

  Returns:
    `path`.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(_CHART_METRICS),
                           figsize=(3.2 * len(_CHART_METRICS), 3.2))
  for ax, (key, title) in zip(axes, _CHART_METRICS):
    names, values = [], []
    for prefix, label in _CHART_ROWS:
      value = metrics.get(prefix + key)
      if value is not None and np.isfinite(value):
        names.append(label)
        values.append(value)
    colors = ["tab:red" if n == "model" else "tab:gray" for n in names]
    ax.barh(names[::-1], values[::-1], color=colors[::-1])
    for i, v in enumerate(values[::-1]):
      ax.text(v, i, f" {v:.2f}", va="center", fontsize=7)
    ax.set_title(f"{title} (mm)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.set_xlim(0, max(values + [1e-3]) * 1.3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def _cases(errors: np.ndarray) -> dict[str, int]:
  order = np.argsort(errors)
  return {"best": int(order[0]), "average": int(order[len(order) // 2]),
          "worst": int(order[-1])}


def figures(eval_step, state, test_source, faces: np.ndarray, workdir: str,
            *, config: ml_collections.ConfigDict,
            metrics: Mapping[str, float] | None = None,
            max_examples: int = 256) -> dict[str, str]:
  """The model against its baselines, and the paper's Fig. 5-10 layout for
  best / average / worst test cases.

  For each case: a row of ground truth (full face | neutral | expression),
  a row of predictions, and a row of per-vertex error heat maps; also
  `.ply` files of the predictions.
  """
  n = min(len(test_source), max_examples)
  items = [test_source[i] for i in range(n)]
  batch = {k: np.stack([it[k] for it in items]) for k in
           ("vertices", "neutral", "subject", "expression")}
  import jax  # pylint: disable=g-import-not-at-top
  pred = partitioning.to_host(eval_step(state, jax.tree.map(np.asarray,
                                                            batch)))
  out_dir = pathlib.Path(workdir) / "figures"
  out_dir.mkdir(parents=True, exist_ok=True)
  # Render with the neutral-relative expression placed on the mean face.
  mean_face = batch["neutral"].mean(axis=0)
  avd = np.asarray(mesh_errors.mesh_error(pred["identity"], batch["neutral"]))
  paths = {}
  if metrics:
    paths["Model and baselines (test set)"] = baseline_chart(
        metrics, str(out_dir / "baselines.png"))
  for name, i in _cases(avd).items():
    gt_exp = mean_face + (batch["vertices"][i] - batch["neutral"][i])
    pr_exp = mean_face + pred["expression"][i]
    rows = [
        mesh_render.render_meshes(
            np.stack([batch["vertices"][i], batch["neutral"][i], gt_exp]),
            faces, size=160),
        mesh_render.render_meshes(
            np.stack([pred["face"][i], pred["identity"][i], pr_exp]),
            faces, size=160),
    ]
    err = np.stack([
        np.linalg.norm(pred["face"][i] - batch["vertices"][i], axis=-1),
        np.linalg.norm(pred["identity"][i] - batch["neutral"][i], axis=-1),
        np.linalg.norm(pr_exp - gt_exp, axis=-1)])
    vmax = float(max(err.max(), 1e-6))
    rows.append(mesh_render.render_meshes(
        np.stack([batch["vertices"][i], batch["neutral"][i], gt_exp]),
        faces, values=err, vmin=0.0, vmax=vmax, size=160))
    path = grids.image_grid(
        str(out_dir / f"case_{name}.png"), rows,
        col_labels=["full face", "neutral", "expression"],
        row_labels=["ground truth", "prediction", f"error (0-{vmax:.1f} mm)"],
        title=f"{name} case: AVD_neu {avd[i]:.2f} mm")
    paths[f"{name.capitalize()} case (AVD_neu)"] = path
    export.export_mesh(str(out_dir / f"case_{name}_identity.ply"),
                       pred["identity"][i], faces)
    export.export_mesh(str(out_dir / f"case_{name}_face.ply"),
                       pred["face"][i], faces)
  del config
  return paths
