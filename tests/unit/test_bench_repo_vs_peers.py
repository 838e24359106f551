"""The repository benchmark's figures: medians of per-round ratios to restic, per cache mode.

A round's ratio pairs the tool's figure with restic's in the same pass, so a
slow minute of the shared host moves both; the median of those ratios is
what the targets are checked on, with their range. The figures below are
made up so that this differs from the ratio of the medians (and of the best
rounds), which the benchmark reported before.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "repo_vs_peers.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("repo_vs_peers", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def result(bench: ModuleType, unchanged: list[float], rss: list[float]) -> object:
    tool = bench.ToolResult()
    for seconds, rss_mib in zip(unchanged, rss, strict=True):
        run = bench.Run(seconds, 1.0, rss_mib, seconds)
        tool.initial.append(run)
        tool.unchanged.append(run)
        tool.mutated.append(run)
        tool.restore.append(run)
        tool.repo_bytes.append(2**20)
        tool.added_bytes.append(2**20)
        tool.restored_bytes.append(10**6)
        tool.verified.append(True)
    return tool


def test_targets_are_checked_on_the_median_of_per_round_ratios(bench: ModuleType) -> None:
    results = {
        "cold": {
            "haprotect": result(bench, [1.0, 3.0, 2.0], [60, 60, 60]),
            "restic": result(bench, [4.0, 2.0, 10.0], [50, 80, 100]),
        }
    }
    summary = bench.summarise(results, 10**6)
    checks = {c.metric: c for c in bench.checks(summary)}

    unchanged = checks["unchanged_s"]
    assert unchanged.mode == "cold" and unchanged.tool == "haprotect"
    assert unchanged.ratio.median == pytest.approx(0.25)  # medians: 2 / 4 = 0.5
    assert (unchanged.ratio.low, unchanged.ratio.high) == pytest.approx((0.2, 1.5))
    assert unchanged.met
    assert checks["unchanged_rss_mib"].ratio.median == pytest.approx(0.75)
    assert "0.25 (0.20-1.50) met" in bench.render_targets(list(checks.values()), 3)


def test_every_target_of_the_issue_is_checked_in_each_cache_mode(bench: ModuleType) -> None:
    one = {"haprotect": result(bench, [1.0], [90]), "restic": result(bench, [1.0], [60])}
    summary = bench.summarise({"warm": one, "cold": one}, 10**6)
    found = {(c.mode, c.metric): c for c in bench.checks(summary)}

    metrics = ["initial_s", "unchanged_s", "unchanged_rss_mib", "mutated_s", "added_mib"]
    for mode in ("warm", "cold"):
        assert [found[mode, m].limit for m in [*metrics, "restore_s"]] == [
            0.4,
            0.4,
            1.0,
            0.5,
            0.6,
            0.5,
        ]
        assert not found[mode, "unchanged_rss_mib"].met
