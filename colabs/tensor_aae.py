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
# # Normals, albedo, shading and editing (neuro-tensorial AE, paper 000)
#
# Loads a trained `tensor_aae` run, or trains the seconds-long `runlocal`
# config, then uses the model: decomposition of held-out images into
# normals, albedo, shading and mask; expression, pose and light transfer
# between two faces of the probe grid, beside the grid's ground-truth
# re-render; and an interpolation strip. Set `WORKDIR` to a run directory
# (for instance `runs/tensor_aae` from the method README) to use its
# checkpoint: `runlocal` trains for a few steps only, so its outputs are
# those of an untrained model. On Colab, first run `!pip install -e .[test]`
# from a clone of the repository.

# %%
import json
import pathlib
import tempfile

from IPython import display
import jax
import numpy as np

from disent_jax import methods
from disent_jax.methods.tensor_aae import data as data_lib
from disent_jax.methods.tensor_aae import figures
from disent_jax.methods.tensor_aae import evaluation as taae_eval
from disent_jax.train import checkpointing
from disent_jax.train import compile_cache
from disent_jax.train import config_utils
from disent_jax.train import loop

# A run directory to load; empty: train the runlocal config into a temp dir.
WORKDIR = ""
compile_cache.enable()

if WORKDIR:
  workdir = str(pathlib.Path(WORKDIR).expanduser().absolute())
  config = config_utils.load_config("tensor_aae")
  config.update(json.loads(pathlib.Path(workdir, "config.json").read_text()))
else:
  config = config_utils.load_config("tensor_aae", "runlocal")
  config.progress_bar = False
  workdir = tempfile.mkdtemp(prefix="tensor_aae_")
out_dir = pathlib.Path(workdir, "notebook")
out_dir.mkdir(parents=True, exist_ok=True)
method = methods.load(config.method).build(config)
print(jax.devices(), workdir)
assert config.method == "tensor_aae"

# %% [markdown]
# ## Train or load the checkpoint
#
# Without `WORKDIR` this trains `runlocal` with the library call the command
# line uses (and evaluates it); re-running the cell resumes from the
# checkpoint.

# %%
if not WORKDIR:
  result = loop.train(config, workdir, method)
  print("trained to step", result.step)
state, step = checkpointing.load_state(workdir)
print("checkpoint step", step, "networks", sorted(state["params"]))
assert "ae" in state["params"]
assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))
metrics = json.loads(pathlib.Path(workdir, "metrics.json").read_text())
for key in ("recon/mse", "baseline_mean_image/recon/mse", "normals/mean",
            "baseline_mean_normals/mean", "baseline_fit_normals/mean"):
  print(f"{key:34s} {metrics[key]:.4f}")

# %% [markdown]
# ## Decomposition of held-out faces
#
# Stream 2 of the decoder: the normal map (shown as (n + 1) / 2), albedo,
# SH shading and mask, composited with the background into x̂; beside them
# the exact normals SynthFace knows (the model never sees them).

# %%
dcfg = data_lib.DataConfig.from_config(config.data)
test = data_lib.make_sources(dcfg).test_arrays
images = test["image"][:4]
path, parts = figures.decomposition(str(out_dir / "decompose.png"),
                                    method.applications, state, images,
                                    test["normals"][:4])
display.display(display.Image(filename=path))
# [30]'s head: n_z >= 0; unit length inside the unit disc of (n_x, n_y),
# where the unit-length loss pulls a trained model.
assert parts["normals"].shape == images.shape
assert (parts["normals"][..., 2] >= 0).all()
assert (np.linalg.norm(parts["normals"], axis=-1) <= np.sqrt(2) + 1e-4).all()

# %% [markdown]
# ## Transfer between two faces, against the ground truth
#
# The probe grid is a full factorial of unseen identities × expressions ×
# yaws × lights, so the true re-render of every edit exists. Each row:
# the target, the donor, the edit (eq. 19–20; relighting §5.2) and the
# ground truth.

# %%
grid = taae_eval.probe_grid_arrays(
    resolution=dcfg.resolution, render_size=dcfg.render_size,
    num_identities=max(2, int(config.eval.probe_identities)),
    seed=dcfg.seed + 1,
    downsample=lambda x: data_lib.downsample_images(x, size=dcfg.size))
path = figures.transfers(str(out_dir / "transfer.png"), method.applications,
                        state, grid, pairs=1)
display.display(display.Image(filename=path))
for key in ("expression", "pose", "light"):
  print(f"{key:10s} edit MSE {metrics.get(f'edit/{key}/mse', np.nan):.4f}"
        f"  no edit {metrics.get(f'edit/{key}/no_edit/mse', np.nan):.4f}"
        f"  change ratio {metrics.get(f'edit/{key}/change_ratio', np.nan):.3f}")

# %% [markdown]
# ## Interpolating one factor
#
# App. D: the expression, identity and light latents, one at a time, from
# one face to another in 0.1 steps, the rest of the first face kept.

# %%
path, strips = figures.interpolation(str(out_dir / "interpolate.png"),
                                     method.applications, state, images[0],
                                     images[1])
display.display(display.Image(filename=path))
assert strips.shape == (3, 11) + images.shape[1:]
