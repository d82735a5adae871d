"""End-to-end training on a few hundred bundled digits: the run folder, determinism, exact
resume (after an epoch and mid-epoch), the NaN stop and the shared discriminator."""

import json

import pytest
import torch

from training import checkpoint
from training.distributed import World
from training.errors import ConfigError, TrainingError
from training.model import Discriminator
from training.run import main
from training.rundir import new_run_dir
from training.trainer import Trainer


def cli(tmp_path, name, *extra):
    """The command-line arguments of a seconds-long dry run writing under tmp_path."""
    return ["--dry-run", "--out_dir", str(tmp_path / "runs"), "--name", name, "--progress", "false",
            "--threads", "1", "--log_every", "2", *extra]


def final_state(run_dir):
    state, _ = checkpoint.load_latest(run_dir)
    return state


def assert_same_weights(a, b):
    assert ("generator_ema" in a) == ("generator_ema" in b)
    for network in ("generator", "discriminator", "generator_ema"):
        for key in a.get(network, {}):
            assert torch.equal(a[network][key], b[network][key]), f"{network}.{key} differs"
    for optimizer in ("optimizer_g", "optimizer_d"):
        for index, slot in a[optimizer]["state"].items():
            for name in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(slot[name], b[optimizer]["state"][index][name])


def test_smoke_run_leaves_a_readable_run_folder(tmp_path, capsys):
    assert main(cli(tmp_path, "smoke")) == 0
    run_dir = tmp_path / "runs" / "smoke"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["latent_dim"] == 100 and config["run"]["dry_run"] is True
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6, 8]
    for record in records:
        assert set(record) == {"step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "wall_time"}
        assert 0 < record["d_real"] < 1 and 0 < record["d_fake"] < 1
    for picture in ("samples/epoch_0001.png", "samples/epoch_0002.png", "samples/final.png", "metrics.png"):
        assert (run_dir / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", picture
    state = final_state(run_dir)
    assert state["epoch"] == 2 and state["step"] == 8 and state["step_in_epoch"] == 0
    assert "device: cpu" in capsys.readouterr().out


def test_the_progress_bar_never_runs_past_the_last_epoch(tmp_path, capsys):
    # the default log interval: the bar's label was last set after the final epoch had ended
    assert main(["--dry-run", "--out_dir", str(tmp_path / "runs"), "--name", "bar", "--threads", "1",
                 "--progress", "true"]) == 0
    shown = capsys.readouterr()
    assert "epoch 2/2" in shown.err and "epoch 3/2" not in shown.err  # a 2-epoch dry run
    assert "1024 images, 4 steps per epoch" in shown.out


@pytest.mark.slow
def test_existing_run_is_never_overwritten_unless_asked(tmp_path):
    assert main(cli(tmp_path, "once")) == 0
    with pytest.raises(TrainingError, match="already exists"):
        main(cli(tmp_path, "once"))
    assert main(cli(tmp_path, "once", "--overwrite")) == 0


def test_unwritable_output_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TrainingError, match="cannot write"):
        new_run_dir(str(blocker), "run", overwrite=False)


@pytest.mark.slow
def test_same_seed_gives_identical_weights_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert main(cli(tmp_path, name, "--seed", seed)) == 0
    a, b, c = (final_state(tmp_path / "runs" / n) for n in "abc")
    assert_same_weights(a, b)
    assert not torch.equal(a["generator"]["stack.layers.0.weight"], c["generator"]["stack.layers.0.weight"])


@pytest.mark.slow
def test_resume_after_an_epoch_matches_an_uninterrupted_run(tmp_path):
    assert main(cli(tmp_path, "whole", "--epochs", "2")) == 0
    assert main(cli(tmp_path, "split", "--epochs", "1")) == 0
    assert final_state(tmp_path / "runs" / "split")["epoch"] == 1
    assert main(["--resume", str(tmp_path / "runs" / "split"), "--epochs", "2", "--progress", "false"]) == 0
    assert_same_weights(final_state(tmp_path / "runs" / "whole"), final_state(tmp_path / "runs" / "split"))
    steps = [json.loads(line)["step"] for line in
             (tmp_path / "runs" / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]  # the log continues without gaps or repeats


@pytest.mark.slow
@pytest.mark.parametrize("train_step", ["fast", "reference"])
def test_resume_mid_epoch_matches_an_uninterrupted_run(tiny_config, tmp_path, train_step):
    # with the moving average, the learning-rate decay, the shifts and R1 on, so they are covered too
    tiny_config.optimizer.ema_decay, tiny_config.optimizer.lr_decay_start = 0.9, 0.5
    tiny_config.optimizer.augment_shift, tiny_config.optimizer.r1_gamma = 2, 1.0
    tiny_config.run.train_step = train_step
    assert main(cli(tmp_path, "whole", "--ema_decay", "0.9", "--lr_decay_start", "0.5",
                    "--augment_shift", "2", "--r1_gamma", "1.0", "--train_step", train_step)) == 0
    run_dir = new_run_dir(tiny_config.run.out_dir, "stopped", overwrite=False)

    def stop_after_step_3(trainer):
        if trainer.step == 3:
            trainer.stop_requested = True

    trainer = Trainer(tiny_config, run_dir, World())
    assert trainer.train(on_step=stop_after_step_3) is False
    state = final_state(run_dir)
    assert (state["epoch"], state["step_in_epoch"], state["step"]) == (0, 3, 3)
    resumed = Trainer(tiny_config, run_dir, World(), resume_state=state)
    assert resumed.train() is True
    assert_same_weights(final_state(tmp_path / "runs" / "whole"), final_state(run_dir))


def test_resume_refuses_to_change_the_model(tmp_path):
    assert main(cli(tmp_path, "r", "--epochs", "1")) == 0
    with pytest.raises(ConfigError, match="latent_dim"):
        main(["--resume", str(tmp_path / "runs" / "r"), "--latent_dim", "8"])


@pytest.mark.parametrize("train_step", ["fast", "reference"])
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_config, monkeypatch, train_step):
    tiny_config.run.train_step = train_step
    real_step = Trainer.train_step

    def poisoned_step(self, real, labels=None):  # epoch 2 goes bad: its losses come back NaN
        metrics = real_step(self, real, labels)
        return metrics * float("nan") if self.step >= 5 else metrics

    monkeypatch.setattr(Trainer, "train_step", poisoned_step)
    run_dir = new_run_dir(tiny_config.run.out_dir, tiny_config.run.name, overwrite=False)
    with pytest.raises(TrainingError, match="non-finite loss"):
        Trainer(tiny_config, run_dir, World()).train()
    saved = checkpoint.list_checkpoints(run_dir)
    assert [p.name for p in saved] == ["step_000000004.pt"]  # the end of epoch 1, before the NaN
    state = checkpoint.load_checkpoint(saved[0])
    assert all(torch.isfinite(t).all() for t in state["generator"].values())


@pytest.mark.parametrize("r1_gamma", [0.0, 1.0])
def test_one_discriminator_scores_real_and_generated_batches(tiny_config, monkeypatch, r1_gamma):
    """The reference step's structure (the fast step uses the one module's layers by construction)."""
    tiny_config.optimizer.r1_gamma = r1_gamma
    tiny_config.run.train_step = "reference"
    calls = []
    original = Discriminator.forward

    def recording_forward(self, image, labels=None):
        calls.append((id(self), image.requires_grad))
        return original(self, image, labels)

    monkeypatch.setattr(Discriminator, "forward", recording_forward)
    trainer = Trainer(tiny_config, None, World())
    before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    trainer.train_step(trainer.data[:64])
    # D step: real batch (needing its gradient for R1), then the detached fake batch;
    # G step: the fake batch with its graph
    assert [requires for _, requires in calls] == [r1_gamma > 0, False, True]
    assert len({module for module, _ in calls}) == 1  # one module, so one set of weights
    after = list(trainer.discriminator.parameters())
    assert all(not torch.equal(b, a) for b, a in zip(before, after))


def test_auto_device_says_which_and_missing_devices_are_errors(monkeypatch):
    from training.trainer import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto", World()) == torch.device("cpu")
    with pytest.raises(ConfigError, match="cuda"):
        resolve_device("cuda", World())
    with pytest.raises(ConfigError, match="mps"):
        resolve_device("mps", World())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto", World()) == torch.device("cuda")
    assert resolve_device("cuda", World(rank=1, local_rank=1, size=2)) == torch.device("cuda", 1)


def test_learning_rates_decay_linearly_to_zero_after_the_start(tiny_config):
    tiny_config.optimizer.lr_decay_start = 0.5
    tiny_config.run.epochs = 10
    trainer = Trainer(tiny_config, None, World())
    trainer.epochs = 10
    rates = []
    for epoch in range(10):
        trainer._set_learning_rates(epoch)
        rates.append(trainer.optimizer_g.param_groups[0]["lr"] / tiny_config.optimizer.generator_lr)
    assert rates == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    assert trainer.optimizer_d.param_groups[0]["lr"] == pytest.approx(0.2 * tiny_config.optimizer.discriminator_lr)


def test_moving_average_trails_the_generator(tiny_config):
    tiny_config.optimizer.ema_decay = 0.999
    trainer = Trainer(tiny_config, None, World())
    trainer.step = 10_000  # past the warm-up: the decay is the configured one
    start = [p.detach().clone() for p in trainer.generator.parameters()]
    trainer.train_step(trainer.data[:64])
    for before, current, average in zip(start, trainer.generator.parameters(), trainer.generator_ema.parameters()):
        assert torch.allclose(average, 0.999 * before + 0.001 * current)
        assert not torch.equal(average, current)
    assert trainer.sampling_generator is trainer.generator_ema


def test_moving_average_warms_up(tiny_config):
    trainer = Trainer(tiny_config, None, World())  # step 0: decay min(0.999, 1/10) = 0.1
    start = [p.detach().clone() for p in trainer.generator.parameters()]
    trainer.train_step(trainer.data[:64])
    for before, current, average in zip(start, trainer.generator.parameters(), trainer.generator_ema.parameters()):
        assert torch.allclose(average, 0.1 * before + 0.9 * current, atol=1e-7)
