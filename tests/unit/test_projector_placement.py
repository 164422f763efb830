"""Where `a2n up` runs its projectors (A2N_UP_PROJECTORS): `auto` takes a child process only
where the CPUs this process may use, after a container's quota, number two or more."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api import projector_process
from api.projector_process import projectors_in_process, usable_cpus


@pytest.mark.parametrize(
    ("choice", "cpus", "in_process"),
    [
        ("auto", 1, False),
        ("auto", 1.5, False),
        ("auto", 2, True),
        ("auto", 16, True),
        ("threads", 16, False),
        ("process", 1, True),
    ],
)
def test_auto_takes_a_child_process_from_two_cpus_on(
    choice: projector_process.UpProjectors, cpus: float, in_process: bool
) -> None:
    assert projectors_in_process(choice, cpus) is in_process


def quota_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **texts: str) -> None:
    """Point the cgroup files at a new folder under `tmp_path` holding `texts` (name: text)."""
    folder = tmp_path / str(len(list(tmp_path.iterdir())))
    folder.mkdir()
    for name, text in texts.items():
        (folder / name).write_text(text)
    monkeypatch.setattr(
        projector_process,
        "CPU_QUOTA_FILES",
        (
            (folder / "cpu.max", None),
            (folder / "cpu.cfs_quota_us", folder / "cpu.cfs_period_us"),
        ),
    )


def scheduled_on() -> int:
    return len(os.sched_getaffinity(0))


def test_without_a_quota_the_cpus_are_those_the_process_may_run_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quota_files(tmp_path, monkeypatch)  # no cgroup files at all
    assert usable_cpus() == scheduled_on()
    quota_files(tmp_path, monkeypatch, **{"cpu.max": "max 100000\n"})
    assert usable_cpus() == scheduled_on()
    quota_files(
        tmp_path, monkeypatch, **{"cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n"}
    )
    assert usable_cpus() == scheduled_on()


def test_a_containers_cpu_quota_caps_the_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quota_files(tmp_path, monkeypatch, **{"cpu.max": "50000 100000\n"})  # cgroup v2, --cpus=0.5
    assert usable_cpus() == 0.5
    quota_files(
        tmp_path,
        monkeypatch,
        **{"cpu.cfs_quota_us": "100000\n", "cpu.cfs_period_us": "100000\n"},  # cgroup v1
    )
    assert usable_cpus() == min(1, scheduled_on())


def test_an_unreadable_quota_is_no_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quota_files(tmp_path, monkeypatch, **{"cpu.max": "garbage\n"})
    assert usable_cpus() == scheduled_on()
    quota_files(tmp_path, monkeypatch, **{"cpu.max": "100000 0\n"})
    assert usable_cpus() == scheduled_on()
