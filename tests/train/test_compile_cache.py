"""Where the persistent compilation cache goes, and switching it off."""

import os

import jax

from disent_jax.train import compile_cache


def test_resolve_order(tmp_path, monkeypatch):
  monkeypatch.delenv(compile_cache.ENV_VAR, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert compile_cache.resolve() == str(tmp_path / "xdg" / "disent_jax" /
                                        "jax_cache")
  monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "env"))
  assert compile_cache.resolve() == str(tmp_path / "env")
  assert compile_cache.resolve(tmp_path / "flag") == str(tmp_path / "flag")
  for off in ("", "off", "OFF", "0", "none"):
    assert compile_cache.resolve(off) is None
    monkeypatch.setenv(compile_cache.ENV_VAR, off)
    assert compile_cache.resolve() is None


def test_enable_sets_jax_and_the_environment(tmp_path, monkeypatch):
  before = jax.config.jax_compilation_cache_dir
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", before or "")
  try:
    path = compile_cache.enable(tmp_path / "cache")
    assert path == str(tmp_path / "cache")
    assert (tmp_path / "cache").is_dir()
    assert jax.config.jax_compilation_cache_dir == path
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == path
    assert compile_cache.enable("off") is None
    assert jax.config.jax_compilation_cache_dir is None
  finally:
    jax.config.update("jax_compilation_cache_dir", before)
