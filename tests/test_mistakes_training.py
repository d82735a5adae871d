"""A user's mistakes, through the commands as a user runs them (subprocesses): `python -m
training.run`, `python -m export` and `python -m training.evaluate`. Each must end with status 2
and one line on stderr, "error: ...", that names the bad value, never a traceback.

(tests/test_mistakes.py does the same for `ganpack` and `benchmarks/bench.py`.) A mistake caught
while parsing the arguments costs a fraction of a second; one caught later imports torch, a few
seconds each: the quick loop runs one or two of those, the full suite all of them.
"""

import os
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from ganpack.model import DEFAULT_MODEL
from mistakes import cases, check_one_line, run_selected, slow
from mistakes import run as run_command

ROOT = Path(__file__).resolve().parent.parent
RUN = [sys.executable, "-m", "training.run"]
EXPORT = [sys.executable, "-m", "export"]
EVALUATE = [sys.executable, "-m", "training.evaluate"]
# If a mistake were accepted, this would make the run a seconds-long one writing under the work folder.
DRY = ["--dry-run", "--progress", "false", "--threads", "1", "--out_dir", "runs", "--name", "run",
       "--eval_every", "0", "--export", "false"]
MODEL = str(DEFAULT_MODEL)  # a good package, for the mistakes in evaluate's other arguments



def environment(cwd):
    """The repository's modules on the path, and caches under the work folder, not the home folder."""
    return {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "XDG_CACHE_HOME": str(cwd / "cache")}


def run_in(command, cwd):
    return run_command(command, cwd, **environment(cwd))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder of wrong things: bad config files, bad checkpoints, files where folders should be."""
    import torch

    from training import checkpoint
    from training.config import TrainConfig
    from training.model import build_models

    work = tmp_path_factory.mktemp("mistakes")
    (work / "a-file").write_text("not a folder\n")
    (work / "not-a-run").mkdir()
    (work / "not-a-run" / "notes.txt").write_text("mine\n")
    (work / "folder.zip").mkdir()
    (work / "empty-run").mkdir()
    (work / "syntax.toml").write_text("latent_dim = \n")
    (work / "types.toml").write_text('[model]\nlatent_dim = "big"\n')
    (work / "unknown.toml").write_text("[optimizer]\nlr = 0.1\n")
    (work / "binary.toml").write_bytes(b"\xff\xfe\x00\x01")
    (work / "nan.json").write_text('{"generator_lr": NaN}')
    (work / "config.yaml").write_text("latent_dim: 64\n")
    # a checkpoint export accepts: the default networks' untrained weights
    config = TrainConfig()
    generator, discriminator = build_models(config.model)
    state = {"config": config.to_dict(), "generator": generator.state_dict(),
             "discriminator": discriminator.state_dict(), "epoch": 1, "step": 4}
    checkpoint.save_checkpoint(state, work / "good.pt")
    (work / "cut.pt").write_bytes((work / "good.pt").read_bytes()[:5000])  # a copy that stopped halfway
    corrupt = checkpoint.checkpoint_path(work / "corrupt-run", 4)
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes((work / "good.pt").read_bytes()[:5000])
    torch.save({"weights": [1.0, 2.0]}, work / "foreign.pt")  # a torch file, not a ganpack checkpoint
    # checkpoints lacking a key their reader needs: the networks for an export, everything for a resume
    checkpoint.save_checkpoint({key: value for key, value in state.items() if key != "generator"},
                               work / "no-generator.pt")
    checkpoint.save_checkpoint(state, checkpoint.checkpoint_path(work / "export-only-run", 4))
    # data of your own, wrong in one way each
    np.save(work / "float.npy", np.zeros((300, 28, 28), np.float32))
    np.save(work / "flat.npy", np.zeros((300, 784), np.uint8))
    np.savez(work / "pixels.npz", pixels=np.zeros((300, 28, 28), np.uint8))
    np.savez(work / "count.npz", images=np.zeros((300, 28, 28), np.uint8), labels=np.zeros(299, np.int64))
    (work / "no-images").mkdir()
    (work / "no-images" / "notes.txt").write_text("mine\n")
    (work / "mixed" / "sevens").mkdir(parents=True)
    (work / "mixed" / "seven.png").write_bytes(png_of_zeros())
    (work / "mixed" / "sevens" / "seven.png").write_bytes(png_of_zeros())
    (work / "broken").mkdir()
    (work / "broken" / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    return work


def png_of_zeros() -> bytes:
    """A black 28x28 PNG, written by the runtime's own encoder."""
    from ganpack.grid import encode_png

    return encode_png(np.zeros((28, 28), np.uint8))


# (arguments, a piece of the one line that names the bad value)
RUN_MISTAKES = [
    # keys and values on the command line: found before torch loads
    (["--max_steps=abc"], "unknown config key 'max_steps'"),
    (["--lr=-1"], "unknown config key 'lr' (from the command line); did you mean 'generator_lr' or "
                  "'discriminator_lr'"),
    slow(["--lr", "abc"], "did you mean 'generator_lr' or 'discriminator_lr'"),
    slow(["--bogus"], "unknown config key 'bogus'"),
    (["--batch_size=0"], "config key 'batch_size' must be positive, got 0"),
    (["--epochs=abc"], "config key 'epochs' expects an integer, got 'abc'"),
    slow(["--epochs=1e3"], "config key 'epochs' expects an integer, got '1e3'"),
    (["--generator_lr=nan"], "config key 'generator_lr' expects a finite number, got 'nan'"),
    slow(["--discriminator_lr=inf"], "config key 'discriminator_lr' expects a finite number, got 'inf'"),
    slow(["--beta1=1e400"], "config key 'beta1' expects a finite number, got '1e400'"),
    (["--overwrite=maybe"], "config key 'overwrite' expects true or false, got 'maybe'"),
    (["--latent_dim=1000000000"], "layer widths [1000000000, 128, 784]"),
    slow(["--generator_hidden=100000,100000"], "layer widths [100, 100000, 100000, 784]"),
    slow(["--generator_hidden=128,,64"], "config key 'generator_hidden' expects an integer, got ''"),
    (["--seed=" + str(2 ** 64)], f"config key 'seed' must be in [0, 2**64), got {2 ** 64}"),
    (["--threads=100000"], "config key 'threads' must be in [0, 1024], got 100000"),
    slow(["--eval_samples=10000000000000"], "config key 'eval_samples' must be in [10, 1000000], got 10000000000000"),
    (["--device=tpu"], "config key 'device' must be auto, cpu, mps, cuda or cuda:N, got 'tpu'"),
    slow(["--device=cuda:abc"], "got 'cuda:abc'"),
    slow(["--name=a/b"], "config key 'name' must be a plain folder name, got 'a/b'"),
    (["--evaluator_cache=a-file"], "config key 'evaluator_cache' must name a folder, not a file or a path under one, "
                                   "got 'a-file'"),
    slow(["--data=mnist", "--cache_dir=a-file"], "config key 'cache_dir' must name a folder, not a file or a path "
                                                 "under one, got 'a-file'"),
    (["--data=mnist", "--cache_dir=a-file/sub"], "config key 'cache_dir' must name a folder, not a file or a path "
                                                 "under one, got 'a-file/sub'"),
    slow(["--evaluator_cache=a-file/sub"], "config key 'evaluator_cache' must name a folder, not a file or a path "
                                           "under one, got 'a-file/sub'"),
    slow(["--data=mnist", "--data_dir=a-file/sub"], "config key 'data_dir' must name a folder, not a file or a path "
                                                    "under one, got 'a-file/sub'"),
    (["--preset=nope"], "unknown preset 'nope'"),
    (["--data=no-such.npz"], "config key 'data' must be one of bundled, mnist, fashion-mnist, kmnist or a file or "
                             "folder that exists, got 'no-such.npz'"),
    slow(["--data=mnits"], "got 'mnits'"),
    slow(["positional"], "unexpected argument 'positional'"),
    slow(["--epochs"], "option '--epochs' needs a value"),
    (["--resume="], "option '--resume' needs a value, got an empty one"),
    # config files
    (["--config", "syntax.toml"], "config file 'syntax.toml' is not valid TOML"),
    (["--config", "types.toml"], "config key 'latent_dim' expects an integer, got 'big' (from types.toml)"),
    (["--config", "unknown.toml"], "unknown config key 'optimizer.lr' (from unknown.toml); did you mean "
                                   "'generator_lr' or 'discriminator_lr'"),
    (["--config", "binary.toml"], "config file 'binary.toml' is not valid TOML"),
    slow(["--config", "nan.json"], "config key 'generator_lr' expects a finite number, got nan (from nan.json)"),
    slow(["--config", "missing.toml"], "config file 'missing.toml' does not exist"),
    slow(["--config", "empty-run"], "config file 'empty-run' is a folder"),
    slow(["--config", "config.yaml"], "config file 'config.yaml' must end in .toml or .json"),
    # the run folder: found after torch loads
    slow(["--out_dir", "a-file"], "cannot write to run folder 'a-file/run-"),  # its own --name per case
    slow(["--out_dir", ".", "--name", "a-file"], "run folder 'a-file' is a file"),
    slow(["--out_dir", ".", "--name", "not-a-run", "--overwrite"], "'not-a-run' is not a run folder"),
    slow(["--batch_size", str(10 ** 30)], f"batch_size {10 ** 30}"),
    # data of your own: found when it is read, after torch loads
    (["--data", "float.npy"], "float.npy: the array has dtype float32, want uint8"),
    slow(["--data", "flat.npy"], "flat.npy: the array has shape (300, 784), want (N, 28, 28)"),
    slow(["--data", "pixels.npz"], "pixels.npz: no images array: want 'images' or 'x_train'"),
    slow(["--data", "count.npz"], "count.npz: array 'labels' has shape (299,), want (300,): one label per image"),
    slow(["--data", "no-images"], "no-images: no PNG or JPEG images in the folder or its subfolders"),
    slow(["--data", "mixed"], "mixed: 1 images lie in the folder itself (such as 'seven.png') and 1 in subfolders"),
    slow(["--data", "broken"], "broken/digit.png: cannot read it as an image"),
    slow(["--data", "a-file"], "a-file: not an IDX file"),
    slow(["--data", "float.npy", "--data_dir", "not-a-run"], "data_dir 'not-a-run' is only for the data sets mnist"),
]

RESUME_MISTAKES = [  # no other options: a resumed run may change few of them
    slow(["--resume", "no-such-run"], "run folder 'no-such-run' does not exist"),
    slow(["--resume", "a-file"], "run folder 'a-file' is a file"),
    slow(["--resume", "empty-run"], "no checkpoint found in 'empty-run/checkpoints'"),
    slow(["--resume", "corrupt-run"], "no readable checkpoint in 'corrupt-run/checkpoints'"),
    slow(["--resume", "export-only-run"], "no readable checkpoint in 'export-only-run/checkpoints' (the newest: "
                                          "checkpoint 'export-only-run/checkpoints/step_000000004.pt' lacks the keys "
                                          "'optimizer_g', 'optimizer_d', 'torch_rng', 'step_in_epoch', 'elapsed', "
                                          "'world_size'"),
]

EXPORT_MISTAKES = [
    ([], "the following arguments are required: source, --out"),
    slow(["good.pt"], "the following arguments are required: --out"),
    (["good.pt", "--out", "pkg", "--bogus"], "unrecognized arguments: --bogus"),
    (["good.pt", "--out", ""], "--out needs a folder name, got an empty one"),
    (["cut.pt", "--out", "pkg"], "checkpoint 'cut.pt' cannot be read (truncated or corrupt)"),
    slow(["no-such-run", "--out", "pkg"], "'no-such-run' is neither a run folder nor a checkpoint file"),
    slow(["empty-run", "--out", "pkg"], "no checkpoint found in 'empty-run/checkpoints'"),
    slow(["corrupt-run", "--out", "pkg"], "no readable checkpoint in 'corrupt-run/checkpoints'"),
    slow(["a-file", "--out", "pkg"], "checkpoint 'a-file' cannot be read"),
    slow(["foreign.pt", "--out", "pkg"], "'foreign.pt' is not a ganpack checkpoint"),
    (["no-generator.pt", "--out", "pkg"], "checkpoint 'no-generator.pt' lacks the key 'generator'"),
    slow(["good.pt", "--out", "a-file"], "'a-file' already exists; pass --overwrite to replace it"),
    slow(["good.pt", "--out", "a-file/pkg"], "cannot write 'a-file/pkg': a file is in the way of its folder 'a-file'"),
    slow(["good.pt", "--out", "a-file", "--overwrite"], "'a-file' is a file, not a model package; not replacing it"),
    slow(["good.pt", "--out", "not-a-run", "--overwrite"], "'not-a-run' is not a model package (no manifest.json)"),
    slow(["good.pt", "--out", "folder.zip", "--overwrite"], "'folder.zip' is a folder, not a package archive"),
]

EVALUATE_MISTAKES = [  # training.evaluate imports torch before it reads its arguments
    (["no-such-model"], "'no-such-model'"),
    slow([], "the following arguments are required: source"),
    slow(["empty-run"], "'empty-run'"),
    slow(["a-file"], "'a-file'"),
    slow([MODEL, "--samples", "abc"], "argument --samples: invalid int value: 'abc'"),
    slow([MODEL, "--samples", "5"], "--samples must be in [10, 1000000], got 5"),
    slow([MODEL, "--samples", "10000000000000"], "--samples must be in [10, 1000000], got 10000000000000"),
    slow([MODEL, "--seed", "-1"], "-1"),
    slow([MODEL, "--bogus"], "unrecognized arguments: --bogus"),
    slow([MODEL, "--samples", "10", "--json", "a-file/rows.json"],
         "--json 'a-file/rows.json': 'a-file' is not a folder"),
    slow([MODEL, "--samples", "10", "--cache-dir", "a-file"], "--cache-dir 'a-file' is a file"),
    slow([MODEL, "--samples", "10", "--cache-dir", "a-file/sub"], "--cache-dir 'a-file/sub' cannot be created"),
    slow([MODEL, "--samples", "10", "--data", "no-such.npz"], "--data 'no-such.npz' is neither a data set"),
    slow([MODEL, "--samples", "10", "--data", "float.npy"], "float.npy: the array has dtype float32, want uint8"),
    slow([MODEL, "--samples", "10", "--data", "pixels.npz"], "pixels.npz: no images array"),
]


def training(arguments):
    """A run of its own per case (--name), since the cases run side by side."""
    return RUN + DRY + ["--name", f"run-{zlib.crc32(repr(arguments).encode()):08x}"] + arguments


COMMANDS = {"test_training_mistakes": training, "test_resume_mistakes": lambda arguments: RUN + arguments,
            "test_export_mistakes": lambda arguments: EXPORT + arguments,
            "test_evaluate_mistakes": lambda arguments: EVALUATE + arguments}


@pytest.fixture(scope="module")
def outcomes(request, work):
    return run_selected(request, COMMANDS, work, **environment(work))


@pytest.mark.parametrize("arguments, names", cases(RUN_MISTAKES))
def test_training_mistakes(outcomes, arguments, names):
    check_one_line(outcomes[tuple(training(arguments))], names, prefix="error: ", quiet=False)


@pytest.mark.parametrize("arguments, names", cases(RESUME_MISTAKES))
def test_resume_mistakes(outcomes, arguments, names):
    check_one_line(outcomes[tuple(RUN + arguments)], names, prefix="error: ", quiet=False)


@pytest.mark.parametrize("arguments, names", cases(EXPORT_MISTAKES))
def test_export_mistakes(outcomes, arguments, names):
    check_one_line(outcomes[tuple(EXPORT + arguments)], names, prefix="error: ", quiet=False)


@pytest.mark.parametrize("arguments, names", cases(EVALUATE_MISTAKES))
def test_evaluate_mistakes(outcomes, arguments, names):
    check_one_line(outcomes[tuple(EVALUATE + arguments)], names, prefix="error: ", quiet=False)


@pytest.mark.slow
def test_a_device_this_machine_lacks(work):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    check_one_line(run_in(RUN + DRY + ["--device", "cuda"], work), "device 'cuda' requested but CUDA is not available")


def test_a_cuda_index_this_machine_lacks(monkeypatch):
    """In process, with CUDA faked: one GPU, and the user asks for the fourth."""
    import torch

    from training.distributed import World
    from training.errors import ConfigError
    from training.trainer import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"device 'cuda:3' requested but this machine has 1 CUDA device\(s\)"):
        resolve_device("cuda:3", World())
    assert resolve_device("cuda:0", World()) == torch.device("cuda:0")
    assert resolve_device("cuda", World()) == torch.device("cuda")


@pytest.mark.slow
def test_an_unwritable_folder(work):
    if os.geteuid() != 0:
        folder = work / "read-only"
        folder.mkdir(exist_ok=True)
        folder.chmod(0o500)
        try:
            check_one_line(run_in(RUN + DRY + ["--out_dir", "read-only"], work), "'read-only/run': Permission denied")
            check_one_line(run_in(EXPORT + ["good.pt", "--out", "read-only/pkg"], work), "'read-only/pkg'")
        finally:
            folder.chmod(0o700)
    elif Path("/proc/self").is_dir():  # root may write into any folder, but not into /proc
        check_one_line(run_in(RUN + DRY + ["--out_dir", "/proc"], work), "cannot write to run folder '/proc/run'")
        check_one_line(run_in(EXPORT + ["good.pt", "--out", "/proc/pkg"], work), "cannot write '/proc/pkg'")
    else:
        pytest.skip("root may write into any folder, and there is no /proc")


def test_nothing_was_written(work):
    """No mistake above left a run folder (a retry would find its name taken), a package or a
    staging folder behind; the files in the way are as they were."""
    assert not list(work.glob("runs/run*")) and not (work / "pkg").exists()
    assert not (work / "cache" / "ganpack").exists()  # no data or evaluator cache either
    assert not list(work.glob(".*.partial"))
    assert (work / "a-file").read_text() == "not a folder\n"
    assert [path.name for path in (work / "not-a-run").iterdir()] == ["notes.txt"]


def test_the_mistakes_cover_every_command():
    assert len(RUN_MISTAKES) + len(RESUME_MISTAKES) + len(EXPORT_MISTAKES) + len(EVALUATE_MISTAKES) >= 30
    quick = [case for case in cases(RUN_MISTAKES + EXPORT_MISTAKES + EVALUATE_MISTAKES) if not case.marks]
    assert len(quick) >= 12
