# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Identity and expression of 3D faces (PointNet VAE, paper 002)
#
# Loads a trained `pointnet_id_vae` run, or trains the seconds-long
# `runlocal` config, then uses the model: evaluation metrics, expression
# transfer between two unseen subjects, identity and expression
# interpolation, and an interactive 3D view. Set `WORKDIR` to a run directory
# (for instance the README's `runs/pointnet_id_vae`) to use its checkpoint:
# `runlocal` trains for a few steps only, so its decoded faces are still far
# from face-shaped and its metrics are those of an untrained model.
# On Colab, first run `!pip install -e .[test]` from a clone of the
# repository.

# %%
import json
import pathlib
import sys
import tempfile

from IPython import display
import jax
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly import subplots
import trimesh

from disent_jax import methods
from disent_jax.methods.pointnet_id_vae import data as data_lib
from disent_jax.synthface import expression
from disent_jax.train import checkpointing
from disent_jax.train import compile_cache
from disent_jax.train import evaluation
from disent_jax.train import config_utils
from disent_jax.train import loop
from disent_jax.viz import export
from disent_jax.viz import grids
from disent_jax.viz import mesh_render

# A run directory to load; empty: train the runlocal config into a temp dir.
WORKDIR = ""
# Compiled steps are cached on disk (~/.cache/disent_jax/jax_cache).
compile_cache.enable()

# Offline renderers (plotly.js is embedded in the output); Colab's own one
# loads plotly.js from the web.
pio.renderers.default = ("colab" if "google.colab" in sys.modules else
                         "plotly_mimetype+notebook")


if WORKDIR:
  workdir = str(pathlib.Path(WORKDIR).expanduser().absolute())
  # The run's saved settings over the current defaults.
  config = config_utils.load_config("pointnet_id_vae")
  config.update(json.loads(pathlib.Path(workdir, "config.json").read_text()))
else:
  config = config_utils.load_config("pointnet_id_vae", "runlocal")
  config.progress_bar = False
  workdir = tempfile.mkdtemp(prefix="pointnet_id_vae_")
out_dir = pathlib.Path(workdir, "notebook")
method = methods.load(config.method).build(config)
print(jax.devices(), workdir)
assert config.method == "pointnet_id_vae"

# %% [markdown]
# ## Train or load the checkpoint
#
# Without `WORKDIR`, this trains the `runlocal` config (discriminator
# pre-training, then joint training) with the library call the command line
# uses; re-running the cell resumes from the checkpoint. The state is then
# read back as numpy arrays.

# %%
if not WORKDIR:
  result = loop.train(config, workdir, method)
  print("trained to step", result.step)
state, step = checkpointing.load_state(workdir)
print("checkpoint step", step, "state", list(state))
assert step == config.total_steps or WORKDIR
assert {"vae", "disc"} >= set(state["params"]) >= {"vae"}
assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))

# %% [markdown]
# ## Evaluation on the test subjects
#
# E_rec (full faces), E_dis (identity parts across one subject's
# expressions) and AVD_neu (identity parts against the true neutral), in mm,
# and rank-1 recognition from identity codes; the baseline predicts each
# input face as its own neutral.

# %%
metrics_path = pathlib.Path(workdir, "metrics.json")
if metrics_path.exists():
  metrics = json.loads(metrics_path.read_text())
else:
  metrics = evaluation.evaluate_checkpoint(config, workdir, method)
for name in ("E_rec", "E_dis", "AVD_neu"):
  print(f"{name:8s} mean {metrics[name + '/mean']:8.3f} mm   "
        f"median {metrics[name + '/median']:8.3f} mm")
print("rank-1 from identity codes", metrics["rank1_identity_code"])
print("test meshes", int(metrics["num_test_meshes"]))
for name in ("E_rec", "E_dis", "AVD_neu"):
  assert np.isfinite(metrics[name + "/mean"]) and metrics[name + "/mean"] >= 0
assert 0.0 <= metrics["rank1_identity_code"] <= 1.0
case = pathlib.Path(workdir, "figures", "case_average.png")
if case.exists():
  display.display(display.Image(filename=str(case)))

# %% [markdown]
# ## Two test subjects
#
# From the method's test split (unseen identities on SynthFace), the most
# expressive face of one subject and, for a second subject, the most
# expressive face showing another expression.

# %%
sources = data_lib.make_sources(config)
test, faces = sources.test, np.asarray(sources.faces, np.int32)
labels = data_lib.subject_labels(test)
subject_a, subject_b = np.unique(labels)[:2]
names = (expression.COMA_EXPRESSIONS if config.data.name == "synthface" else
         None)


def most_expressive(subject, other_than=None):
  """The test example of `subject` farthest from its neutral (mean mm)."""
  candidates = [test[int(i)] for i in np.flatnonzero(labels == subject)]
  candidates = [c for c in candidates if other_than is None or
                int(c["expression"]) != other_than]
  return max(candidates, key=lambda c: np.linalg.norm(
      c["vertices"] - c["neutral"], axis=-1).mean())


def expression_name(example):
  e = int(example["expression"])
  return names[e] if names is not None else f"expression {e}"


example_a = most_expressive(subject_a)
example_b = most_expressive(subject_b, other_than=int(example_a["expression"]))
face_a = np.asarray(example_a["vertices"], np.float32)
face_b = np.asarray(example_b["vertices"], np.float32)
print(f"A: subject {subject_a}, {expression_name(example_a)}; "
      f"B: subject {subject_b}, {expression_name(example_b)}; "
      f"{face_a.shape[0]} vertices, {faces.shape[0]} triangles")


def distance(p, q):
  """Mean per-vertex distance (mm) of meshes [..., V, 3]."""
  return np.linalg.norm(np.asarray(p) - np.asarray(q), axis=-1).mean(-1)


assert subject_a != subject_b
assert example_a["expression"] != example_b["expression"]
assert face_a.shape == face_b.shape and face_a.shape[1] == 3
assert faces.min() >= 0 and faces.max() < face_a.shape[0]
assert distance(face_a, example_a["neutral"]) > 0
assert distance(face_b, example_b["neutral"]) > 0

# %% [markdown]
# ## Expression transfer
#
# The identity code of one face with the expression code of the other (paper
# §IV-G). Transferring a face's own expression gives back its
# reconstruction.

# %%
transfer = method.applications["transfer_expression"]
identity_faces = np.stack([face_a, face_b])
expression_faces = np.stack([face_b, face_a])
swapped = np.asarray(transfer(state, identity_faces, expression_faces))
recon = np.asarray(method.eval_step(state, {"vertices": identity_faces})[
    "face"])
print("A with B's expression vs A, B (mm):",
      distance(swapped[0], face_a), distance(swapped[0], face_b))
print("B with A's expression vs B, A (mm):",
      distance(swapped[1], face_b), distance(swapped[1], face_a))
assert swapped.shape == identity_faces.shape
assert np.isfinite(swapped).all()
np.testing.assert_allclose(transfer(state, identity_faces, identity_faces),
                           recon, atol=1e-2)
assert np.all(distance(swapped, identity_faces) > 1e-2)
assert np.all(distance(swapped, expression_faces) > 1e-2)
assert np.all(distance(swapped, recon) > 1e-3)

# %%
size = 160
images = mesh_render.render_meshes(
    np.concatenate([identity_faces, expression_faces, swapped]), faces,
    size=size)
rows = [[images[i], images[2 + i], images[4 + i]] for i in range(2)]
grid_path = grids.image_grid(
    str(out_dir / "transfer.png"), rows,
    row_labels=["A", "B"],
    col_labels=["identity from", "expression from", "transfer"],
    cell_inches=1.8)
ply_paths = [export.export_mesh(str(out_dir / f"transfer_{n}.ply"), v, faces)
             for n, v in zip("ab", swapped)]
display.display(display.Image(filename=grid_path))
assert images.shape == (6, size, size, 3)
covered = (images < 1.0).any(-1).mean((1, 2))
assert np.all(covered > 0.1), covered
for path, v in zip(ply_paths, swapped):
  mesh = trimesh.load(path, process=False)
  np.testing.assert_allclose(mesh.vertices, v, atol=1e-3)

# %% [markdown]
# ## Interpolation
#
# Identity from A to B with A's expression, and expression from A's to B's
# with A's identity. Both strips start at A's reconstruction; they end at
# B's identity with A's expression and at A's identity with B's expression.

# %%
interpolate = method.applications["interpolate"]
steps = 5
strips = {
    factor: np.asarray(interpolate(state, face_a, face_b, steps=steps,
                                   factor=factor))
    for factor in ("identity", "expression")}
b_with_a_expression = transfer(state, face_b[None], face_a[None])[0]
strip_images = [mesh_render.render_meshes(s, faces, size=size)
                for s in strips.values()]
strip_path = grids.image_grid(
    str(out_dir / "interpolation.png"), strip_images,
    row_labels=list(strips),
    col_labels=[f"t={t:.2f}" for t in np.linspace(0, 1, steps)],
    cell_inches=1.5)
display.display(display.Image(filename=strip_path))
for factor, s in strips.items():
  print(factor, "mm from the start:", np.round(distance(s, s[0]), 3))
  assert s.shape == (steps,) + face_a.shape and np.isfinite(s).all()
  np.testing.assert_allclose(s[0], recon[0], atol=1e-2)
  assert distance(s[-1], s[0]) > 1e-3
np.testing.assert_allclose(strips["identity"][-1], b_with_a_expression,
                           atol=1e-2)
np.testing.assert_allclose(strips["expression"][-1], swapped[0], atol=1e-2)

# %% [markdown]
# ## Interactive view
#
# Drag to rotate. Left: face A; right: A with B's expression, coloured by
# how far each vertex moved from A's reconstruction (mm). Below: a slider
# over the identity interpolation.

# %%
def mesh_trace(vertices, **kwargs):
  v = np.asarray(vertices)
  return go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=faces[:, 0],
                   j=faces[:, 1], k=faces[:, 2], flatshading=False, **kwargs)


front = dict(eye=dict(x=0.0, y=0.0, z=2.0), up=dict(x=0.0, y=1.0, z=0.0))
scene = dict(aspectmode="data", camera=front, xaxis_visible=False,
             yaxis_visible=False, zaxis_visible=False)
moved = np.linalg.norm(swapped[0] - recon[0], axis=-1)
fig = subplots.make_subplots(
    rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]],
    subplot_titles=["A", "A with B's expression"])
fig.add_trace(mesh_trace(face_a, color="lightgrey"), row=1, col=1)
fig.add_trace(mesh_trace(swapped[0], intensity=moved, colorscale="Jet",
                         colorbar_title="mm"), row=1, col=2)
fig.update_layout(scene=scene, scene2=scene, height=420,
                  margin=dict(l=0, r=0, t=30, b=0))
fig.show()
assert [t.type for t in fig.data] == ["mesh3d", "mesh3d"]
assert all(len(t.x) == face_a.shape[0] and len(t.i) == faces.shape[0]
           for t in fig.data)
assert np.isfinite(fig.data[1].intensity).all() and moved.max() > 0

# %%
slider = go.Figure([mesh_trace(v, color="lightgrey", visible=t == 0)
                    for t, v in enumerate(strips["identity"])])
slider.update_layout(
    scene=scene, height=420, margin=dict(l=0, r=0, t=30, b=0),
    title="identity A -> B (A's expression)",
    sliders=[dict(active=0, steps=[
        dict(method="update", label=f"{t:.2f}",
             args=[{"visible": [k == n for k in range(steps)]}])
        for n, t in enumerate(np.linspace(0, 1, steps))])])
slider.show()
assert len(slider.data) == steps and sum(t.visible for t in slider.data) == 1
assert len(slider.layout.sliders[0].steps) == steps
