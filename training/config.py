"""Training configuration: one dataclass per concern, layered defaults -> file -> command line.

Every key is unique across the four sections, so the command line is flat (`--latent_dim 64`,
`--data-dir ~/mnist`) while a TOML or JSON file may be flat or use `[model]`, `[optimizer]`,
`[data]` and `[run]` tables. An unknown or ill-typed key is a ConfigError that names it.
"""

import dataclasses
import difflib
import itertools
import json
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ganpack.contract import IMAGE_DIM, LATENT_DISTRIBUTIONS, NORMAL, UNIFORM
from training.errors import ConfigError


@dataclass
class ModelConfig:
    latent_dim: int = 100
    generator_hidden: tuple[int, ...] = (128,)  # widths of the generator's hidden layers
    discriminator_hidden: tuple[int, ...] = (128,)
    image_dim: int = IMAGE_DIM  # 28x28, flattened
    leaky_relu_alpha: float = 0.01  # f(x) = max(alpha * x, x)
    latent_distribution: str = NORMAL  # "normal": N(0, 1); "uniform": U(-1, 1) (ganpack.contract)
    init: str = "torch"  # "torch" (PyTorch's Linear default), "glorot_uniform", "normal_0.02"
    conditional: bool = False  # G and D also take the class label, one-hot, beside z and the image
    classes: int = 0  # conditional: how many classes; 0 takes the data's (a run records the number)


@dataclass
class OptimizerConfig:
    generator_lr: float = 6e-4
    discriminator_lr: float = 3e-4
    beta1: float = 0.5
    beta2: float = 0.999
    label_smoothing: float = 0.1  # one-sided: real targets are 1 - label_smoothing
    ema_decay: float = 0.999  # >0: also keep an exponential moving average of the generator's weights
    lr_decay_start: float = 1.0  # fraction of the epochs after which both rates fall linearly to 0
    augment_shift: int = 2  # D sees every image shifted by up to this many pixels (training/augment.py)
    r1_gamma: float = 1.0  # weight of the R1 gradient penalty on real images (training/losses.py)


@dataclass
class DataConfig:
    # "bundled" (5,000 digits shipped with ganpack), "mnist", "fashion-mnist", "kmnist" (60,000 each), or the
    # path of your own images: an IDX file, a .npy, a .npz or a folder of PNG / JPEG (training/datasets.py)
    data: str = "bundled"
    data_dir: str = ""  # folder with the named data set's IDX files; empty: the cache, downloading if needed
    cache_dir: str = ""  # folder for downloads; empty: ~/.cache/ganpack/<data set> (XDG)
    batch_size: int = 256  # per process; the global batch is batch_size * world size


TRAIN_STEPS = ("fast", "reference")  # RunConfig.train_step


@dataclass
class RunConfig:
    name: str = ""  # run folder name under out_dir; empty: a timestamp
    out_dir: str = "runs"
    epochs: int = 2000
    seed: int = 0
    device: str = "auto"  # "auto": cuda, else mps, else cpu
    threads: int = 0  # torch CPU threads; 0 leaves torch's default
    log_every: int = 50  # steps between metric lines (the only host syncs in the loop)
    sample_every: int = 10  # epochs between sample grids
    checkpoint_every: int = 25  # epochs between checkpoints (one is always written at the end)
    keep_checkpoints: int = 3
    eval_every: int = 100  # epochs between quality evaluations (0: never); see training/evaluate.py
    eval_samples: int = 1000  # samples per evaluation during training (the final one uses 10,000)
    evaluator_cache: str = ""  # where the evaluator's classifier is cached; empty: ~/.cache/ganpack/evaluator
    overwrite: bool = False  # replace an existing run folder of the same name
    dry_run: bool = False  # seconds-long smoke run on 1,024 images
    progress: bool = True  # tqdm progress bar
    preset: str = ""  # the preset the run started from (--preset), for the record
    export: bool = True  # write the model package to <run folder>/model at the end
    train_step: str = "fast"  # "fast": written out by hand (training/fast_step.py); "reference": autograd


SECTIONS = {
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "data": DataConfig,
    "run": RunConfig,
}


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        """Nested dict of plain values (tuples become lists): JSON- and checkpoint-safe."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        config = cls()
        apply_values(config, values, source="dict")
        return config


# ---------------------------------------------------------------------------------------------
# key lookup and type coercion


def _field_types() -> dict[str, tuple[str, type]]:
    """key -> (section, declared type) over all sections."""
    table = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            table[f.name] = (section, hints[f.name])
    return table


FIELDS = _field_types()


def _unknown_key(key: str, source: str) -> ConfigError:
    """Names the keys meant too: a typo's closest ones, and those with the name as a word ('lr')."""
    table, _, name = key.rpartition(".")  # a file's 'optimizer.lr': table 'optimizer'
    close = dict.fromkeys(difflib.get_close_matches(name, FIELDS) + [k for k in FIELDS if name in k.split("_")])
    shown = [f"'{k}'" + (f" in [{FIELDS[k][0]}]" if table and FIELDS[k][0] != table else "") for k in close]
    hint = f"; did you mean {' or '.join(shown)}?" if shown else ""
    return ConfigError(f"unknown config key '{key}' (from {source}){hint}")


def _coerce(key: str, value, kind: type, source: str):
    """Convert `value` (a string from the command line, or a parsed file value) to `kind`."""
    bad = ConfigError(f"config key '{key}' expects {_type_name(kind)}, got {value!r} (from {source})")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise bad
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise bad from None
        raise bad
    if kind is float:  # nan and inf (also 1e400, or a JSON NaN) would only surface as a NaN loss later
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad
        try:
            number = float(value)
        except (ValueError, OverflowError):  # OverflowError: an integer too big for a float
            raise bad from None
        if not math.isfinite(number):
            raise bad
        return number
    if kind is str:
        if isinstance(value, str):
            return value
        raise bad
    if typing.get_origin(kind) is tuple:  # tuple[int, ...]: "256,256" or [256, 256]
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items:
            raise bad
        return tuple(_coerce(key, item.strip() if isinstance(item, str) else item, int, source)
                     for item in items)
    raise ConfigError(f"config key '{key}' has an unsupported type {kind}")


def _type_name(kind: type) -> str:
    if typing.get_origin(kind) is tuple:
        return "a comma-separated list of integers"
    return {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}[kind]


def set_value(config: TrainConfig, key: str, value, source: str) -> None:
    key = key.replace("-", "_")
    if key not in FIELDS:
        raise _unknown_key(key, source)
    section, kind = FIELDS[key]
    setattr(getattr(config, section), key, _coerce(key, value, kind, source))


def apply_values(config: TrainConfig, values: dict, source: str) -> None:
    """Apply a flat or sectioned dict (as read from a TOML or JSON file)."""
    if not isinstance(values, dict):
        raise ConfigError(f"config from {source} must be a table of keys, got {type(values).__name__}")
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, dict):
            for inner_key, inner_value in value.items():
                if FIELDS.get(inner_key.replace("-", "_"), (None,))[0] != key:
                    raise _unknown_key(f"{key}.{inner_key}", source)
                set_value(config, inner_key, inner_value, source)
        else:
            set_value(config, key, value, source)


def load_file(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file '{path}' " + ("is a folder" if file.is_dir() else "does not exist"))
    if file.suffix not in (".toml", ".json"):
        raise ConfigError(f"config file '{path}' must end in .toml or .json")
    try:
        text = file.read_text(encoding="utf-8")
        if file.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except OSError as error:
        raise ConfigError(f"config file '{path}' cannot be read: {error.strerror or error}") from None
    except (ValueError, RecursionError) as error:  # decode errors (UnicodeDecodeError too) are ValueErrors;
        # RecursionError: a JSON file nested too deep
        raise ConfigError(f"config file '{path}' is not valid {file.suffix[1:].upper()}: {error}") from None


def validate(config: TrainConfig) -> TrainConfig:
    """Range checks that types alone cannot express; returns the config for chaining."""
    m, o, d, r = config.model, config.optimizer, config.data, config.run
    checks = [
        ("latent_dim", m.latent_dim > 0, "must be positive"),
        ("generator_hidden", all(w > 0 for w in m.generator_hidden), "widths must be positive"),
        ("discriminator_hidden", all(w > 0 for w in m.discriminator_hidden), "widths must be positive"),
        ("image_dim", m.image_dim == IMAGE_DIM, f"must be {IMAGE_DIM} (28x28 MNIST)"),
        ("leaky_relu_alpha", 0.0 <= m.leaky_relu_alpha < 1.0, "must be in [0, 1)"),
        ("latent_distribution", m.latent_distribution in LATENT_DISTRIBUTIONS,
         f"must be one of {tuple(LATENT_DISTRIBUTIONS)}"),
        ("init", m.init in INITS, f"must be one of {INITS}"),
        ("classes", 0 <= m.classes <= MAX_CLASSES, f"must be in [0, {MAX_CLASSES}] (0: the data's)"),
        ("generator_lr", o.generator_lr > 0, "must be positive"),
        ("discriminator_lr", o.discriminator_lr > 0, "must be positive"),
        ("beta1", 0.0 <= o.beta1 < 1.0, "must be in [0, 1)"),
        ("beta2", 0.0 <= o.beta2 < 1.0, "must be in [0, 1)"),
        ("label_smoothing", 0.0 <= o.label_smoothing < 1.0, "must be in [0, 1)"),
        ("ema_decay", 0.0 <= o.ema_decay < 1.0, "must be in [0, 1)"),
        ("lr_decay_start", 0.0 <= o.lr_decay_start <= 1.0, "must be in [0, 1]"),
        ("augment_shift", 0 <= o.augment_shift <= 8, "must be in [0, 8] pixels"),
        ("r1_gamma", o.r1_gamma >= 0.0, "must be non-negative"),
        ("data", d.data in DATASETS or (d.data != "" and Path(d.data).expanduser().exists()),
         f"must be one of {', '.join(DATASETS)} or a file or folder that exists"),
        ("batch_size", d.batch_size > 0, "must be positive"),
        ("epochs", r.epochs > 0, "must be positive"),
        ("seed", 0 <= r.seed < 2**64, "must be in [0, 2**64)"),  # torch.manual_seed's range
        ("device", r.device in ("auto", "cpu", "mps", "cuda")
         or (r.device[:5] == "cuda:" and r.device[5:].isascii() and r.device[5:].isdigit()),
         "must be auto, cpu, mps, cuda or cuda:N"),
        ("threads", 0 <= r.threads <= MAX_THREADS, f"must be in [0, {MAX_THREADS}]"),
        ("train_step", r.train_step in TRAIN_STEPS, f"must be one of {', '.join(TRAIN_STEPS)}"),
        ("log_every", r.log_every > 0, "must be positive"),
        ("sample_every", r.sample_every > 0, "must be positive"),
        ("checkpoint_every", r.checkpoint_every > 0, "must be positive"),
        ("keep_checkpoints", r.keep_checkpoints > 0, "must be positive"),
        ("eval_every", r.eval_every >= 0, "must be non-negative"),
        ("eval_samples", 10 <= r.eval_samples <= MAX_EVAL_SAMPLES, f"must be in [10, {MAX_EVAL_SAMPLES}]"),
        ("name", "/" not in r.name and "\0" not in r.name and r.name not in (".", ".."),
         "must be a plain folder name"),
        *((key, not _file_in_the_way(folder), "must name a folder, not a file or a path under one")
          for key, folder in (("data_dir", d.data_dir), ("cache_dir", d.cache_dir),
                              ("evaluator_cache", r.evaluator_cache))),
    ]
    for key, ok, rule in checks:
        if not ok:
            section = FIELDS[key][0]
            value = getattr(getattr(config, section), key)
            raise ConfigError(f"config key '{key}' {rule}, got {value!r}")
    for keys, widths in (("latent_dim and generator_hidden", [m.latent_dim, *m.generator_hidden, m.image_dim]),
                         ("discriminator_hidden", [m.image_dim, *m.discriminator_hidden, 1])):
        parameters = sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(widths))
        if parameters > MAX_PARAMETERS:  # a typo's extra zeros, not a model: refuse before allocating it
            raise ConfigError(f"config keys {keys} give layer widths {widths}: {parameters:,} parameters, "
                              f"over the limit of {MAX_PARAMETERS:,}")
    return config


def _file_in_the_way(folder: str) -> bool:
    """True when `folder` or a folder above it is a file: it cannot be made ('a-file/sub')."""
    path = Path(folder).expanduser()  # os.path's tests: False, not an exception, on a folder we may not read
    return bool(folder) and any(os.path.exists(part) and not os.path.isdir(part) for part in (path, *path.parents))


MAX_CLASSES = 1000  # far above any labeled set of 28x28 images; every class is one input column
MAX_THREADS = 1024  # far above any machine's cores; torch fails or crashes on 10**5
MAX_EVAL_SAMPLES = 1_000_000  # about 3 GB of float32 images
MAX_PARAMETERS = 1 << 28  # per network: 1 GiB of float32 weights, several times that with gradients and Adam


# Named starting points, applied before a config file and the command line.
PRESETS = {
    # The original chapter's settings (TensorFlow 1 defaults): Adam 0.001 with betas 0.9 / 0.999,
    # Glorot-uniform weights with zero biases, latents uniform in [-1, 1], batch 100, 100 epochs.
    "book": {"generator_lr": 0.001, "discriminator_lr": 0.001, "beta1": 0.9, "beta2": 0.999,
             "init": "glorot_uniform", "latent_distribution": UNIFORM, "batch_size": 100, "epochs": 100,
             "ema_decay": 0.0, "lr_decay_start": 1.0, "augment_shift": 0, "r1_gamma": 0.0},
    # Both dense stacks twice as wide (256 hidden units), 3,000 epochs, and the rates it was measured
    # with: closer to the real-data floor, at about twice the default run's time (README, "Presets").
    "wide": {"generator_hidden": [256], "discriminator_hidden": [256], "epochs": 3000,
             "generator_lr": 4e-4, "discriminator_lr": 2e-4},
    # The built-in models' recipe (docs/quality.md, "The built-in models"): the design's network and
    # loss, 8x the default's epochs, both rates falling linearly to 0 over the second half; one
    # thread, so that the same command gives the same weights, bit for bit, on the same machine.
    "builtin": {"epochs": 16000, "lr_decay_start": 0.5, "threads": 1},
}

INITS = ("torch", "glorot_uniform", "normal_0.02")
DATASETS = ("bundled", "mnist", "fashion-mnist", "kmnist")  # names; any other value of `data` is a path


# ---------------------------------------------------------------------------------------------
# command line: --key value, --key=value, a bare --flag for booleans


@dataclass
class CommandLine:
    config: TrainConfig
    overrides: dict  # key -> value as given on the command line (checked on --resume)
    resume: str  # run folder to continue, or ""


def usage() -> str:
    """Every key with its section, type and default, for --help."""
    lines = ["usage: python -m training.run [--preset book] [--config FILE.toml|.json] [--resume RUN_DIR] "
             "[--key value ...]",
             "Keys may use - or _. Booleans may be given bare (--dry-run). See README.md for details."]
    defaults = TrainConfig()
    for section in SECTIONS:
        lines.append(f"\n[{section}]")
        for key, (owner, kind) in FIELDS.items():
            if owner == section:
                value = getattr(getattr(defaults, section), key)
                shown = ",".join(map(str, value)) if isinstance(value, tuple) else json.dumps(value)
                lines.append(f"  --{key:<22} {shown:<12} ({_type_name(kind)})")
    return "\n".join(lines)


def parse_command_line(argv: list[str]) -> CommandLine:
    """Defaults, then `--preset NAME`, then `--config FILE`, then the other `--key value` pairs."""
    pairs, config_file, resume, preset = [], "", "", ""
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument '{token}': options look like --key value")
        key, has_value, value = token[2:].partition("=")
        key = key.replace("-", "_")
        if key not in FIELDS and key not in ("config", "preset", "resume"):
            raise _unknown_key(key, "the command line")  # before asking for its value
        if not has_value:
            is_flag = FIELDS.get(key, (None, None))[1] is bool
            next_is_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
            if next_is_value:
                i, value = i + 1, argv[i + 1]
            elif is_flag:  # a bare --flag means true
                value = "true"
            else:
                raise ConfigError(f"option '--{key}' needs a value")
        if key in ("config", "preset", "resume") and not value:  # '--resume ""' must not start a new run
            raise ConfigError(f"option '--{key}' needs a value, got an empty one")
        if key == "config":
            config_file = value
        elif key == "preset":
            preset = value
        elif key == "resume":
            resume = value
        elif key in FIELDS:
            pairs.append((key, value))
        else:
            raise _unknown_key(key, "the command line")
        i += 1
    config = TrainConfig()
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset '{preset}'; choose one of {sorted(PRESETS)}")
        apply_values(config, {**PRESETS[preset], "preset": preset}, source=f"preset '{preset}'")
    if config_file:
        apply_values(config, load_file(config_file), source=config_file)
    for key, value in pairs:
        set_value(config, key, value, source="the command line")
    return CommandLine(validate(config), dict(pairs), resume)

