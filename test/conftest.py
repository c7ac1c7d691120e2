"""Fixtures shared by the whole suite: few threads, and Minari datasets in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Several test processes share few cores: one intra-op thread each."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def minari_datasets_path(tmp_path_factory: pytest.TempPathFactory,
                         monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$MINARI_DATASETS_PATH`` pointed at a fresh folder, so no test touches ~/.minari."""
    path = tmp_path_factory.mktemp("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    return path
