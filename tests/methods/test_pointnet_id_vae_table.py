"""Paper 002's Table IV aggregation and its runner script."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from disent_jax.methods.pointnet_id_vae import table

_REPO = pathlib.Path(__file__).resolve().parents[2]


def _metrics(avd, dis, rec, base_avd=0.8, base_dis=2.0):
  out = {}
  for name, value in (("AVD_neu", avd), ("E_rec", rec)):
    out.update({f"{name}/mean": value, f"{name}/std": value / 4,
                f"{name}/median": value * 0.9})
  out.update({"E_dis/mean": dis, "E_dis/median": dis * 0.9,
              "baseline_input_as_neutral/AVD_neu/mean": base_avd,
              "baseline_input_as_neutral/E_dis/mean": base_dis,
              "rank1_identity_code": 1.0})
  return out


def _write_runs(root, values):
  for (setting, seed), m in values.items():
    d = table.run_dir(root, setting, seed)
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps(m))


def test_aggregate_means_and_sample_std_over_seeds():
  s = table.Setting(ne_gt=False, id_dis=True)
  runs = {s: {0: _metrics(0.2, 0.1, 1.0), 1: _metrics(0.4, 0.3, 1.2),
              2: _metrics(0.3, 0.2, 1.1)}}
  (row,) = table.aggregate(runs)
  assert row.seeds == (0, 1, 2)
  mean, std = row.stats["AVD_neu/mean"]
  np.testing.assert_allclose(mean, 0.3)
  np.testing.assert_allclose(std, np.std([0.2, 0.4, 0.3], ddof=1))
  ratio = np.mean([0.8 / 0.2, 0.8 / 0.4, 0.8 / 0.3])
  np.testing.assert_allclose(row.stats["ratio/AVD_neu/mean"][0], ratio)
  np.testing.assert_allclose(row.stats["ratio/E_dis/mean"][0],
                             np.mean([20.0, 2.0 / 0.3, 10.0]))


def test_markdown_rows_in_paper_order_with_arrows(tmp_path):
  values = {}
  for seed in (0, 1):
    values[(table.Setting(True, True), seed)] = _metrics(0.1, 0.05, 0.9)
    values[(table.Setting(False, False), seed)] = _metrics(2.0, 1.0, 0.7)
    values[(table.Setting(False, True), seed)] = _metrics(1.0, 0.5, 0.8)
  _write_runs(tmp_path, values)
  runs, missing = table.collect(tmp_path, [0, 1])
  assert len(missing) == 2 * 1  # +ne-gt -id-dis was not run.
  assert all("gt_nodis" in m for m in missing)
  text = table.markdown(table.aggregate(runs))
  lines = text.strip().splitlines()
  assert [ln.split(" | ")[0] for ln in lines[2:]] == [
      "| -ne-gt -id-dis", "| -ne-gt +id-dis", "| +ne-gt +id-dis",
      "| baseline: input as its own neutral"]
  # +id-dis beats -id-dis without GT neutrals on AVD_neu and E_dis, not on
  # E_rec: arrows only where lower.
  dis_row = lines[3].split(" | ")
  assert dis_row[2] == "1.000 ± 0.000 ↓"  # AVD_neu mean
  assert dis_row[5] == "0.500 ± 0.000 ↓"  # E_dis mean
  assert "↓" not in dis_row[7]  # E_rec mean 0.8 > 0.7
  assert "0.40 ± 0.00×" in lines[2]
  base = lines[-1].split(" | ")
  assert base[2] == "0.800" and base[5] == "2.000"  # AVD_neu, E_dis means
  assert base[7] == "—"  # The baseline has no E_rec.


def test_load_metrics_names_the_file_on_bad_input(tmp_path):
  bad = tmp_path / "metrics.json"
  bad.write_text("{not json")
  with pytest.raises(ValueError, match="metrics.json"):
    table.load_metrics(bad)
  bad.write_text(json.dumps({"E_rec/mean": 1.0}))
  with pytest.raises(ValueError, match="missing metrics"):
    table.load_metrics(bad)
  with pytest.raises(FileNotFoundError, match="nothere"):
    table.load_metrics(tmp_path / "nothere" / "metrics.json")


def test_script_rebuilds_the_table_from_finished_runs(tmp_path):
  values = {(s, seed): _metrics(1.0 + i, 0.5, 1.0)
            for i, s in enumerate(table.SETTINGS) for seed in (0, 1)}
  _write_runs(tmp_path, values)
  proc = subprocess.run(
      [sys.executable, str(_REPO / "scripts" / "pointnet_id_vae_table4.py"),
       f"--root={tmp_path}", "--seeds", "0", "1", "--table_only"],
      capture_output=True, text=True, cwd=_REPO, check=False)
  assert proc.returncode == 0, proc.stderr
  assert (tmp_path / "table.md").read_text() in proc.stdout
  rows = json.loads((tmp_path / "table.json").read_text())
  assert [r["setting"] for r in rows] == [s.label for s in table.SETTINGS]
  assert rows[3]["stats"]["AVD_neu/mean"] == [4.0, 0.0]
