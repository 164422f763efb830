"""deploy/prometheus/alerts.yml: valid for Prometheus, firing on the figures it is for, and
naming only metrics A2N serves; deploy/prometheus/prometheus.yml: a valid scrape configuration
that sends the metrics token. promtool comes from Debian's prometheus package (`make test`
unpacks it into .venv/bin through .ci/promtool); without it these tests skip and say so."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from api.metrics import Metrics

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool") or shutil.which(
    "promtool", path=str(Path(sys.executable).parent)
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: `make promtool` unpacks it from Debian's prometheus package",
)
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def promtool(*args: str, cwd: Path = RULES) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
def test_the_rules_are_valid_prometheus_rules() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout


@needs_promtool
def test_the_rules_fire_on_the_figures_they_are_for() -> None:
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


@needs_promtool
def test_the_rule_tests_catch_a_rule_that_no_longer_fires(tmp_path: Path) -> None:
    rules = (RULES / "alerts.yml").read_text()
    threshold = "sum(rate(a2n_executions_total[5m])) > 0.1"
    assert threshold in rules
    (tmp_path / "alerts.yml").write_text(rules.replace(threshold, threshold[:-3] + "0.5"))
    shutil.copy(RULES / "alerts_test.yml", tmp_path)
    tested = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "HighExecutionFailureRate" in tested.stdout + tested.stderr


@needs_promtool
def test_the_scrape_config_is_valid_and_sends_the_metrics_token(tmp_path: Path) -> None:
    """/metrics is never public: the scrape sends `Authorization: Bearer <A2N_METRICS_TOKEN>`,
    the token read from a file beside the config (promtool checks that it is there)."""
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(RULES / name, tmp_path)
    missing = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert missing.returncode != 0
    assert "metrics_token" in missing.stdout + missing.stderr
    (tmp_path / "metrics_token").write_text("0123456789abcdef" * 4 + "\n")
    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout
    scrape = (RULES / "prometheus.yml").read_text()
    assert "metrics_path: /metrics" in scrape
    assert "authorization:\n      type: Bearer\n      credentials_file: metrics_token" in scrape


def test_the_rules_name_only_metrics_a2n_serves() -> None:
    named = set(re.findall(r"\ba2n_[a-z_]+", (RULES / "alerts.yml").read_text()))
    served = {family.name for family in Metrics().registry.collect()}

    def base(name: str) -> str:
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in served:
                return name.removesuffix(suffix)
        return name

    assert named
    assert {base(name) for name in named} <= served
