"""Shared fixtures: a tiny, fast training config for tests."""

import pytest

from training.config import TrainConfig


@pytest.fixture
def tiny_config(tmp_path) -> TrainConfig:
    """A dry run (1,024 bundled images, 4 steps of batch 256 an epoch) writing under tmp_path,
    single-threaded so that runs are bit-for-bit repeatable."""
    config = TrainConfig()
    config.run.dry_run = True
    config.run.out_dir = str(tmp_path / "runs")
    config.run.name = "tiny"
    config.run.progress = False
    config.run.threads = 1
    config.run.log_every = 2
    config.run.epochs = 2
    return config
