"""Config layering (defaults -> file -> command line) and the errors for bad keys and values."""

import json
import re
from pathlib import Path

import pytest

from training.config import TrainConfig, parse_command_line
from training.errors import ConfigError


def test_defaults_are_the_design():
    config = parse_command_line([]).config
    assert config.model.latent_dim == 100
    assert config.model.generator_hidden == (128,) and config.model.discriminator_hidden == (128,)
    assert config.model.leaky_relu_alpha == 0.01
    assert config.optimizer.label_smoothing == 0.1


def test_command_line_forms():
    line = parse_command_line(["--latent_dim", "64", "--generator-hidden=256,256", "--dry-run",
                               "--beta1", "0.4", "--progress", "false", "--data_dir", "x"])
    config = line.config
    assert config.model.latent_dim == 64
    assert config.model.generator_hidden == (256, 256)
    assert config.run.dry_run is True and config.run.progress is False
    assert config.optimizer.beta1 == 0.4
    assert config.data.data_dir == "x"
    assert line.overrides["latent_dim"] == "64"


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_config_file_then_command_line(tmp_path, suffix):
    path = tmp_path / f"c{suffix}"
    if suffix == ".toml":
        path.write_text('latent_dim = 32\n[optimizer]\ngenerator_lr = 0.001\n[run]\nepochs = 7\n')
    else:
        path.write_text(json.dumps({"latent_dim": 32, "optimizer": {"generator_lr": 0.001},
                                    "run": {"epochs": 7}}))
    config = parse_command_line(["--config", str(path), "--epochs", "9"]).config
    assert config.model.latent_dim == 32
    assert config.optimizer.generator_lr == 0.001
    assert config.run.epochs == 9  # the command line wins over the file


@pytest.mark.parametrize("argv, named", [
    (["--lattent_dim", "3"], "lattent_dim"),
    (["--latent_dim", "1.5"], "latent_dim"),
    (["--latent_dim", "0"], "latent_dim"),
    (["--leaky_relu_alpha", "1.5"], "leaky_relu_alpha"),
    (["--label_smoothing", "abc"], "label_smoothing"),
    (["--dry_run", "maybe"], "dry_run"),
    (["--generator_hidden", "128,x"], "generator_hidden"),
    (["--latent_distribution", "cauchy"], "latent_distribution"),
    (["--device", "tpu"], "device"),
    (["--epochs"], "epochs"),
    (["epochs", "3"], "epochs"),
    (["--name", "../escape"], "name"),
    (["--augment_shift", "9"], "augment_shift"),
    (["--r1_gamma", "-1"], "r1_gamma"),
])
def test_bad_command_line_names_the_key(argv, named):
    with pytest.raises(ConfigError, match=named):
        parse_command_line(argv)


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        parse_command_line(["--batchsize", "3"])


@pytest.mark.parametrize("argv, meant", [
    (["--lr", "abc"], "did you mean 'generator_lr' or 'discriminator_lr' or 'lr_decay_start'?"),  # a word of each
    (["--hidden=64"], "did you mean 'generator_hidden' or 'discriminator_hidden'?"),
    (["--cache", "x"], "did you mean 'cache_dir' or 'evaluator_cache'?"),  # a typo's and a word's, once each
])
def test_unknown_key_suggests_the_keys_it_is_part_of(argv, meant):
    with pytest.raises(ConfigError, match=re.escape(meant)):
        parse_command_line(argv)


def test_unknown_key_in_a_table_names_the_table_of_the_key_meant(tmp_path):
    (tmp_path / "lr.toml").write_text("[optimizer]\nlr = 0.1\n")
    (tmp_path / "epochs.toml").write_text("[model]\nepochs = 3\n")
    with pytest.raises(ConfigError, match=re.escape("'optimizer.lr' (from ") + ".*did you mean 'generator_lr' or"):
        parse_command_line(["--config", str(tmp_path / "lr.toml")])
    with pytest.raises(ConfigError, match=re.escape("'model.epochs'") + ".*did you mean 'epochs' in \\[run\\]\\?$"):
        parse_command_line(["--config", str(tmp_path / "epochs.toml")])
    with pytest.raises(ConfigError) as nothing_close:
        parse_command_line(["--bogus", "1"])
    assert str(nothing_close.value) == "unknown config key 'bogus' (from the command line)"


@pytest.mark.parametrize("text, named", [
    ('latent_dim = "big"\n', "latent_dim"),
    ("[model]\nepochs = 3\n", "model.epochs"),  # a key in the wrong section
    ("nonsense = 1\n", "nonsense"),
    ("dry_run = 1\n", "dry_run"),  # 1 is not a boolean in a typed file
    ("latent_dim = [", "not valid TOML"),
])
def test_bad_file_names_the_key(tmp_path, text, named):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named):
        parse_command_line(["--config", str(path)])


def test_missing_or_unsupported_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        parse_command_line(["--config", str(tmp_path / "none.toml")])
    (tmp_path / "c.yaml").write_text("a: 1")
    with pytest.raises(ConfigError, match=r"\.toml or \.json"):
        parse_command_line(["--config", str(tmp_path / "c.yaml")])


def test_round_trip_through_a_plain_dict():
    config = parse_command_line(["--generator_hidden", "64,32", "--seed", "5"]).config
    values = config.to_dict()
    assert json.loads(json.dumps(values)) == values
    assert TrainConfig.from_dict(values) == config


def test_help_lists_every_key(capsys):
    from training.config import FIELDS
    from training.run import main

    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert all(f"--{key}" in shown for key in FIELDS)


def test_the_run_says_how_to_load_its_package_and_when_its_name_is_a_built_in_one():
    from training.run import load_hint

    assert load_hint(Path("runs/mine/model")) == "load it in Python with ganpack.load('runs/mine/model')"
    assert load_hint(Path("runs/conditional/model")) == (
        "load it in Python with ganpack.load('runs/conditional/model'); ganpack.load('conditional') opens "
        "ganpack's built-in model of that name, not this run")
    assert "built-in" in load_hint(Path("/elsewhere/default/model"))


def test_book_preset_reproduces_the_chapter_and_yields_to_the_command_line():
    config = parse_command_line(["--preset", "book", "--epochs", "3"]).config
    assert (config.optimizer.generator_lr, config.optimizer.discriminator_lr) == (0.001, 0.001)
    assert (config.optimizer.beta1, config.optimizer.beta2) == (0.9, 0.999)
    assert config.model.init == "glorot_uniform" and config.model.latent_distribution == "uniform"
    assert config.data.batch_size == 100 and config.optimizer.ema_decay == 0.0
    assert config.run.epochs == 3 and config.run.preset == "book"
    assert config.model.generator_hidden == (128,) and config.optimizer.label_smoothing == 0.1  # the design
    assert config.optimizer.augment_shift == 0 and config.optimizer.r1_gamma == 0.0  # the chapter had neither
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        parse_command_line(["--preset", "nope"])


# The commands that trained the built-in models (docs/quality.md, "The built-in models")
BUILTIN_COMMANDS = {"default": ["--preset", "builtin"],
                    "conditional": ["--preset", "builtin", "--conditional", "--epochs", "8000"]}


@pytest.mark.parametrize("name", BUILTIN_COMMANDS)
def test_builtin_preset_is_the_recipe_of_the_models_in_the_wheel(name):
    """Every model, optimizer and data value, the epochs, seed, threads and step kind of the wheel's
    models are what the documented command gives: the manifests record the recipe."""
    import ganpack

    config = parse_command_line(BUILTIN_COMMANDS[name]).config.to_dict()
    recorded = ganpack.load(name).manifest.training_config
    config["model"]["classes"] = 10 if name == "conditional" else 0  # 0 takes the data's: the run records 10
    for section in ("model", "optimizer", "data"):
        assert recorded[section] == config[section], (name, section)
    for key in ("epochs", "seed", "threads", "train_step"):
        assert recorded["run"][key] == config["run"][key], (name, key)
    assert config["run"]["preset"] == "builtin"


def test_wide_preset_widens_both_stacks_keeps_its_measured_rates_and_the_other_defaults():
    config = parse_command_line(["--preset", "wide", "--discriminator_hidden", "512"]).config
    assert config.model.generator_hidden == (256,) and config.model.discriminator_hidden == (512,)
    assert config.run.epochs == 3000 and config.run.preset == "wide"
    assert (config.optimizer.generator_lr, config.optimizer.discriminator_lr) == (4e-4, 2e-4)
    defaults = TrainConfig()
    defaults.optimizer.generator_lr, defaults.optimizer.discriminator_lr = 4e-4, 2e-4
    assert config.optimizer == defaults.optimizer and config.data == defaults.data
