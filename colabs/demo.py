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
# # The disent_jax harness from a notebook
#
# Trains the harness demo (a small autoencoder on procedural arrays — not one
# of the paper methods) with the same library call the command line uses,
# then reads the checkpoint back and uses the model. On Colab, first run
# `!pip install -e .` from a clone of the repository.

# %%
import json
import pathlib
import tempfile

import jax
import numpy as np

from disent_jax import methods
from disent_jax.train import checkpointing
from disent_jax.train import compile_cache
from disent_jax.train import config_utils
from disent_jax.train import loop


# Compiled steps are cached on disk (~/.cache/disent_jax/jax_cache): a
# re-run of the notebook compiles nothing.
compile_cache.enable()
config = config_utils.load_config("demo", "runlocal")
config.progress_bar = False
workdir = tempfile.mkdtemp(prefix="demo_")
print(jax.devices(), workdir)

# %% [markdown]
# ## Train (re-running this cell resumes from the checkpoint)

# %%
method = methods.load(config.method).build(config)
result = loop.train(config, workdir, method)
print("step", result.step, "eval", result.eval_metrics)

# %%
rows = [json.loads(line) for line in
        pathlib.Path(workdir, "metrics.jsonl").read_text().splitlines()]
print([(r["step"], round(r["loss"], 4)) for r in rows])
assert rows[-1]["loss"] < rows[0]["loss"]

# %% [markdown]
# ## Read the checkpoint back and encode new data

# %%
state, step = checkpointing.load_state(workdir)
x = np.random.default_rng(0).normal(size=(4, config.data.dim))
x = x.astype(np.float32)
codes = method.applications["encode"](state, x)
print("restored step", step, "codes", np.asarray(codes).shape)
assert np.asarray(codes).shape == (4, config.model.latent)
