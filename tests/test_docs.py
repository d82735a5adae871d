"""Every code block of README.md and docs/*.md runs, each in a fresh workspace: a temporary folder
laid out like the repository root (training/ and export/ linked, a copy of benchmarks/), with
the built-in model package copied to model/, a run folder at runs/digits/ and an empty out/ (the
README's Quickstart makes it first). A README block may leave only files that git ignores.

Fences: ```python runs as written; ```sh runs line by line through bash, as written, except the
lines of STAND_INS, whose real command takes minutes or a network; ```c is compiled against
csrc/'s sources and run; ```text is output or layout, never run. Any other fence language, an
indented (unfenced) code block or an unclosed fence fails, so no code slips past this file.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BUILT_IN_MODEL = ROOT / "runtime" / "ganpack" / "models" / "default"
RUNNABLE = ("python", "sh", "c")
NOT_CODE = ("text",)
FENCE_LINE = re.compile(r"^```(.*)$")
TIMEOUT = 300  # seconds per command; the longest real one (a dry run) takes about 15 on 2 cores


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.document.name}:{self.line}:{self.language}"


def fenced_blocks(document: Path) -> list[Block]:
    """Every fenced block, in order. Fails on an unclosed fence or an indented code block."""
    blocks, opened, body, after_blank = [], None, [], True
    for number, text in enumerate(document.read_text().splitlines(), start=1):
        fence = FENCE_LINE.match(text)
        if opened is not None:
            if fence and fence.group(1).strip() == "":
                blocks.append(Block(document, opened[0], opened[1], "".join(body)))
                opened, body = None, []
            else:
                body.append(text + "\n")
            continue
        if fence:
            opened = (number, fence.group(1).strip())
        elif after_blank and re.match(r"( {4}|\t)\S", text):
            raise AssertionError(f"{document.name}:{number}: an indented code block; fence it "
                                 f"(```sh, ```python, ```c or ```text) so that this test sees it")
        after_blank = text.strip() == ""
    assert opened is None, f"{document.name}:{opened[0]}: a fence that is never closed"
    return blocks


BLOCKS = [block for document in DOCUMENTS for block in fenced_blocks(document)]
RUN_BLOCKS = [block for block in BLOCKS if block.language in RUNNABLE]


def shell_commands(code: str) -> list[str]:
    """The commands of a ```sh block: one a line, blank lines and whole-line comments skipped."""
    return [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# ---------------------------------------------------------------------------------------------
# Stand-ins. Key: a line of a ```sh block, exactly as written (its comment included), so that a
# changed line no longer matches and runs as written, where LONG below refuses it until it is
# given a stand-in again. Value: (what runs instead, why). DOC_LINE holds the line itself;
# CHECK_TRAINING_ARGS parses training arguments exactly as `python -m training.run` does
# (training.config.parse_command_line: unknown keys, types, ranges, config files) and stops
# there; the workspace's runs/digits is a real run folder, a dry run made once per session by
# `python -m training.run --dry-run --name digits`.

CHECK_ARGS = 'python "$CHECK_TRAINING_ARGS"'
TRAINS_FOR_MINUTES = "trains for minutes: only its arguments are checked (runs/digits is a dry run of the same code)"
STAND_INS = {
    # README.md: the two commands for a fresh machine
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[train]' && python -m training.run":
        (CHECK_ARGS, "makes a virtual environment from the network, then " + TRAINS_FOR_MINUTES),
    "python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[train,test]' && python -m pytest -q -m \"not slow\"":
        ('grep -qxF -- "$DOC_LINE" "$GANPACK_ROOT/.ci/run"',
         "runs the quick tier (minutes): instead check that .ci/run runs exactly this line"),
    "python -m pytest -q -m slow":
        ('grep -qxF -- "$DOC_LINE" "$GANPACK_ROOT/.ci/run"',
         "runs the long suites (a quarter of an hour): instead check that .ci/run runs exactly this line"),
    # README.md: quickstart
    "python -m training.run --name digits              # 38,000 steps: minutes (see above); writes runs/digits/":
        (CHECK_ARGS + " --name digits", TRAINS_FOR_MINUTES),
    "pip install build && python -m build              # dist/ganpack-0.2.0-cp310-abi3-linux_x86_64.whl and an sdist":
        ("python -m build --version",
         "compiles the C kernel in an isolated environment from the network (about a minute); "
         "tests/test_wheel.py builds the wheel and installs it in a fresh venv. Here: the build front end is installed"),
    'pip install "$(echo dist/ganpack-*.whl)[onnxruntime]"   # in your application\'s environment; drop [onnxruntime] for c and numpy only':
        ('mkdir -p dist && : > dist/ganpack-0.2.0-cp310-abi3-linux_x86_64.whl && '
         'pip() { python "$CHECK_PIP_ARGS" "$@"; } && eval "$DOC_LINE"',
         "needs the built wheel and the network: the line runs as written against an empty stand-in wheel, "
         "with pip replaced by a check that pip would be given an existing .whl file plus the extra"),
    "python -m training.run --conditional --name conditional   # train one: the default settings plus the labels":
        (CHECK_ARGS + " --conditional --name conditional", TRAINS_FOR_MINUTES),
    "python -m training.run --data fashion-mnist --name fashion   # other data: kmnist, or your own (--data my.npz)":
        (CHECK_ARGS + " --data fashion-mnist --name fashion", "downloads Fashion-MNIST from the network, then "
         + TRAINS_FOR_MINUTES),
    # docs/training.md
    "python -m training.run --dry-run                          # seconds-long smoke run (1,024 images, 2 epochs)":
        ("test -f runs/digits/model/manifest.json",
         "the session's dry run ran this line (with --name digits, quietly, on one thread) and is runs/digits "
         "here: not twice"),
    "python -m training.run --name digits                      # the defaults: bundled digits, 10x10 sample grids, in runs/digits/":
        (CHECK_ARGS + " --name digits", TRAINS_FOR_MINUTES),
    "python -m training.run --epochs 50 --batch_size 128       # --key value, or --key=value":
        (CHECK_ARGS + " --epochs 50 --batch_size 128", TRAINS_FOR_MINUTES),
    "python -m training.run --config my.toml --seed 3          # a TOML or JSON file, then the command line":
        ("printf 'epochs = 50\\n[optimizer]\\ngenerator_lr = 4e-4\\n' > my.toml && " + CHECK_ARGS
         + " --config my.toml --seed 3", "my.toml stands for the reader's file; " + TRAINS_FOR_MINUTES),
    "python -m training.run --data mnist                       # full MNIST: downloads once to ~/.cache/ganpack/mnist":
        (CHECK_ARGS + " --data mnist", "downloads MNIST from the network, then " + TRAINS_FOR_MINUTES),
    "python -m training.run --data mnist --data-dir ~/data/MNIST/raw   # or read the IDX files you have":
        (CHECK_ARGS + " --data mnist --data-dir ~/data/MNIST/raw", "needs the reader's MNIST files, then " + TRAINS_FOR_MINUTES),
    "python -m training.run --resume runs/digits               # continue a stopped run exactly":
        (CHECK_ARGS + " --resume runs/digits && test -d runs/digits/checkpoints",
         "resuming the finished dry run re-exports it (10 to 20 s): the arguments and the run folder are checked; "
         "tests/test_training.py resumes runs and checks the weights bit for bit"),
    "python -m training.run --preset book                      # the original chapter's settings, to compare":
        (CHECK_ARGS + " --preset book", TRAINS_FOR_MINUTES),
    "torchrun --nproc_per_node=2 -m training.run":
        ("command -v torchrun && " + CHECK_ARGS,
         "two processes training for minutes (tests/test_distributed.py trains 2 gloo processes): "
         "torchrun is installed and the arguments are checked"),
    # docs/quality.md
    "python -m training.evaluate runs/digits          # a run folder, a package folder or a .zip":
        ("python -m training.evaluate --help && test -f runs/digits/model/manifest.json",
         "each evaluation costs 10 to 20 s even on 100 samples (the features of 4,500 real digits): "
         "the next line runs one end to end; here the command and the run folder's package exist"),
    "python -m training.evaluate model/ --samples 10000 --json rows.json":
        ('python -m training.evaluate model/ --samples 100 --json rows.json --cache-dir "$EVALUATOR_CACHE" '
         '&& test -s rows.json',
         "trains the evaluator's classifier (30 s) and scores 10,000 samples: here an untrained "
         "classifier from a seeded cache, and 100 samples"),
    "python -m training.evaluate model/ --classifier-seed 1   # a second opinion: a classifier trained with another seed":
        ("python -m training.evaluate --help | grep -q -- --classifier-seed && test -f model/manifest.json",
         "trains a second classifier on 4,500 digits (30 s or more): tests/test_evaluate.py trains one with "
         "another seed on small data; here the option exists and the package too"),
    "python -m training.run --preset builtin --name default                  # the default model, 65 to 75 minutes":
        (CHECK_ARGS + " --preset builtin --name default", "trains for 65 to 75 minutes: only its arguments are checked"),
    "python -m training.run --preset builtin --conditional --epochs 8000 --name conditional":
        (CHECK_ARGS + " --preset builtin --conditional --epochs 8000 --name conditional",
         "trains for about 45 minutes: only its arguments are checked"),
    "python -m training.run --preset wide      # 256-unit hidden layers, 3,000 epochs, lr 4e-4 / 2e-4":
        (CHECK_ARGS + " --preset wide", "trains for 20 to 40 minutes: only its arguments are checked"),
    "python -m training.run --preset book      # the original chapter's settings, to compare":
        (CHECK_ARGS + " --preset book", TRAINS_FOR_MINUTES),
    # docs/runtime.md
    "python -m training.run --preset builtin --name default":
        (CHECK_ARGS + " --preset builtin --name default && cp -r runs/digits runs/default",
         "trains for 65 to 75 minutes: only its arguments are checked; the next line exports the dry run as "
         "runs/default (tests/test_config.py checks that the preset is the built-in models' recorded recipe)"),
    # docs/embedding.md: the library built in the workspace's copy of csrc/, installed into its HOME
    "make -C csrc                                  # csrc/build/: libganpack.a, libganpack.so.0, ganpack-sample":
        ('eval "$DOC_LINE"', "5 to 10 s on 2 cores: runs as written, in a slow test"),
    "make -C csrc install PREFIX=$HOME/.local      # lib/, include/ganpack/, bin/ganpack-sample, lib/pkgconfig/ganpack.pc":
        ('eval "$DOC_LINE"', "runs as written, in a slow test: HOME is the workspace's"),
    # docs/benchmarks.md
    "python benchmarks/bench.py --quick         # under a minute: checks that it runs (the tests use this)":
        ("python benchmarks/bench.py --quick --backends c --networks '' --paths sample",
         "the whole quick mode takes 40 s here and tests/test_bench.py runs it: one backend and one path"),
    "python benchmarks/bench.py                 # every backend, path and precision, batch 1 to 4096 (about 5 min)":
        ("python benchmarks/bench.py --help", "about 5 minutes; the line above runs the same script"),
    # docs/precision.md
    "python -m training.evaluate model/ --precision bf16    # quality at bf16, 10,000 samples":
        ('python -m training.evaluate model/ --precision bf16 --samples 100 --cache-dir "$EVALUATOR_CACHE"',
         "trains the evaluator's classifier and scores 10,000 samples: here a seeded cache and 100 samples"),
    "python benchmarks/bench.py --precision fp32,bf16,int8 --networks generator --paths sample":
        ("python benchmarks/bench.py --precision fp32,bf16 --backends c --networks generator --paths sample --quick",
         "a second or more per setting: quick mode, and the C backend alone"),
    "python benchmarks/train_bench.py --devices cpu --preset default,wide   # about 2 minutes on 2 cores":
        ("python benchmarks/train_bench.py --devices cpu --preset default --quick --threads 1 --profile-steps 0",
         "about 2 minutes; these arguments in quick mode, one config (tests/test_train_bench.py runs both)"),
    "python benchmarks/bench.py --model runs/digits/model --backends c,onnxruntime --batch-sizes 1,64":
        ("python benchmarks/bench.py --model runs/digits/model --backends c,onnxruntime --batch-sizes 1,64 "
         "--quick --networks '' --paths sample", "a second or more per setting: these arguments in quick mode, one path"),
}

# Commands that take minutes or a network: run as written, they would make this file crawl.
LONG = re.compile(r"\bpip install\b|-m venv\b|-m build\b|\btorchrun\b|-m pytest\b|-m training\.evaluate\b"
                  r"|-m training\.run\b(?!.*--help)|bench\.py\b(?!.*--help)|\bmake\b")

CHECK_TRAINING_ARGS = """\
import os, sys
sys.path.insert(0, os.getcwd())  # the workspace, laid out like the repository root
from training.config import parse_command_line
parse_command_line(sys.argv[1:])
print("python -m training.run: arguments accepted:", *sys.argv[1:])
"""

CHECK_PIP_ARGS = """\
import re, sys
from pathlib import Path
command, *arguments = sys.argv[1:]
assert command == "install", f"pip {command}: only install is expected"
for argument in arguments:
    if argument.startswith("-") or not re.search(r"[/.]", argument):
        continue  # an option, or a package name
    path = re.sub(r"\\[[\\w,-]+\\]$", "", argument)
    assert path.endswith(".whl") and Path(path).is_file(), f"pip would be given {argument!r}: not a wheel file"
print("pip install would get:", *arguments)
"""

SEED_EVALUATOR_CACHE = """\
import os, sys
from pathlib import Path
sys.path.insert(0, os.environ["GANPACK_ROOT"])
import torch
from training import mnist
from training.classifier import DigitClassifier, cache_path
torch.manual_seed(0)
images_uint8, labels = mnist.load_bundled()
torch.save({"model": DigitClassifier().state_dict(), "held_out_accuracy": 0.0},
           cache_path(images_uint8, labels, 10, Path(sys.argv[1])))
"""


def run(command: list[str], cwd: Path, env: dict, what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{what}\nexit status {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def base_env(helpers: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(GANPACK_ROOT=str(ROOT), MPLBACKEND="Agg",
               CHECK_TRAINING_ARGS=str(helpers / "check_training_args.py"),
               CHECK_PIP_ARGS=str(helpers / "check_pip_args.py"))
    return env


def lay_out_like_the_root(folder: Path) -> None:
    """training/ and export/ as links (python -m finds them in the working folder), benchmarks/
    as a copy (bench.py writes its report beside itself)."""
    folder.mkdir(parents=True, exist_ok=True)
    for package in ("training", "export"):
        (folder / package).symlink_to(ROOT / package, target_is_directory=True)
    (folder / "benchmarks").mkdir()
    for script in (ROOT / "benchmarks").glob("*.py"):
        shutil.copy(script, folder / "benchmarks")


@pytest.fixture(scope="session")
def helpers(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("doc-helpers")
    (folder / "check_training_args.py").write_text(CHECK_TRAINING_ARGS)
    (folder / "check_pip_args.py").write_text(CHECK_PIP_ARGS)
    return folder


@pytest.fixture(scope="session")
def dry_run(tmp_path_factory, helpers) -> Path:
    """runs/digits made by `python -m training.run --dry-run --name digits` (15 s on 2 busy cores)."""
    folder = tmp_path_factory.mktemp("doc-dry-run")
    lay_out_like_the_root(folder)
    done = run([sys.executable, "-m", "training.run", "--dry-run", "--name", "digits", "--progress", "false",
                "--threads", "1"], folder, base_env(helpers), "the session's dry run")
    (folder / "said.txt").write_text(done.stdout)  # beside runs/, not in the run folder the blocks copy
    return folder / "runs" / "digits"


@pytest.fixture(scope="session")
def evaluator_cache(tmp_path_factory, helpers) -> Path:
    """The evaluator's classifier cache, seeded with an untrained classifier: the commands run
    end to end in seconds (tests/test_metrics.py checks what a trained one measures)."""
    folder = tmp_path_factory.mktemp("doc-evaluator-cache")
    script = folder / "seed.py"
    script.write_text(SEED_EVALUATOR_CACHE)
    run([sys.executable, str(script), str(folder)], folder, base_env(helpers), "seeding the evaluator cache")
    return folder


def needs_a_real_run(block: Block) -> bool:
    """Blocks that export, resume, evaluate or benchmark runs/digits need a real run folder."""
    return block.language == "sh" and bool(re.search(r"-m (training|export)\b|torchrun|bench\.py", block.code))


def is_slow(block: Block) -> bool:
    return block.language == "c" or needs_a_real_run(block) or "make -C csrc" in block.code


def continue_embedding_md(folder: Path, env: dict) -> None:
    """docs/embedding.md's blocks continue one another: its first writes digits.gpkc, its C program
    is saved as sample16.c, and the build block compiles csrc/ and installs into $HOME/.local. So
    each of its blocks gets those files, a copy of csrc/ (without build outputs) and a HOME of its own."""
    from ganpack.export_c import export_c

    export_c(folder / "model", folder / "digits.gpkc")
    program = next(block for block in BLOCKS if block.document.name == "embedding.md" and block.language == "c")
    (folder / "sample16.c").write_text(program.code)
    shutil.copytree(ROOT / "csrc", folder / "csrc", ignore=shutil.ignore_patterns("build", "build-*"))
    (folder / "home").mkdir()
    env["HOME"] = str(folder / "home")


@pytest.fixture
def workspace(request, tmp_path, helpers) -> tuple[Path, dict]:
    block = request.node.callspec.params["block"]
    folder = tmp_path / "workspace"
    lay_out_like_the_root(folder)
    (folder / "out").mkdir()
    shutil.copytree(BUILT_IN_MODEL, folder / "model")
    env = base_env(helpers)
    if needs_a_real_run(block):
        shutil.copytree(request.getfixturevalue("dry_run"), folder / "runs" / "digits")
        env["EVALUATOR_CACHE"] = str(request.getfixturevalue("evaluator_cache")) \
            if "training.evaluate" in block.code else ""
    else:
        shutil.copytree(BUILT_IN_MODEL, folder / "runs" / "digits" / "model")
    if block.document.name == "embedding.md":
        continue_embedding_md(folder, env)
    return folder, env


# ---------------------------------------------------------------------------------------------
# the blocks


def run_python(block: Block, folder: Path, env: dict) -> None:
    script = folder / "block.py"
    script.write_text(block.code)
    run([sys.executable, str(script)], folder, env, f"{block.name}: the Python block failed")


def run_shell(block: Block, folder: Path, env: dict) -> None:
    run(["bash", "-n", "-c", block.code], folder, env, f"{block.name}: not valid shell")
    for line in shell_commands(block.code):
        if line in STAND_INS:
            command, _why = STAND_INS[line]
        else:
            assert not LONG.search(line), (
                f"{block.name}: {line!r} takes minutes or a network when run as written; "
                f"give it a stand-in in STAND_INS (tests/test_docs.py), saying why")
            command = line
        run(["bash", "-c", "set -eo pipefail\n" + command], folder, {**env, "DOC_LINE": line},
            f"{block.name}: {line}\n(ran: {command})")


def run_c(block: Block, folder: Path, env: dict) -> None:
    """Compiled with the kernel's sources (the library is every .c file of csrc/ but example.c)
    at -O0, which is quick and keeps the numpy-equal latents (-ffp-contract=off)."""
    source = folder / "block.c"
    source.write_text(block.code)
    library = sorted(str(path) for path in (ROOT / "csrc").glob("*.c") if path.name != "example.c")
    compiler = os.environ.get("CC", "cc")
    run([compiler, "-std=c11", "-O0", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'csrc'}",
         str(source), *library, "-lm", "-pthread", "-o", str(folder / "block")], folder, env,
        f"{block.name}: the C block does not compile")
    run([str(folder / "block")], folder, env, f"{block.name}: the C program failed")


RUNNERS = {"python": run_python, "sh": run_shell, "c": run_c}
RUNNERS_FILES = {"block.py", "block.c", "block"}  # what the runners above write into the workspace


def not_ignored_by_git(names: list[str]) -> list[str]:
    """The names (top-level files or folders/) that the repository's .gitignore does not ignore."""
    done = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT, input="\n".join(names),
                          capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr  # 1: none ignored
    return sorted(set(names) - set(done.stdout.splitlines()))


@pytest.mark.parametrize("block", [pytest.param(block, marks=[pytest.mark.slow] if is_slow(block) else [],
                                                id=block.name) for block in RUN_BLOCKS])
def test_block_runs(block, workspace):
    folder, env = workspace
    before = set(os.listdir(folder)) | RUNNERS_FILES
    RUNNERS[block.language](block, folder, env)
    if block.document.name == "README.md":  # a reader's clone must not fill up with untracked files
        made = [name + "/" if (folder / name).is_dir() else name for name in set(os.listdir(folder)) - before]
        left = not_ignored_by_git(made)
        assert not left, f"{block.name} writes {left} into the repository root, where git shows them; use out/"


# ---------------------------------------------------------------------------------------------
# the rules around the blocks


def test_every_fence_language_is_known():
    unknown = [block.name for block in BLOCKS if block.language not in RUNNABLE + NOT_CODE]
    assert not unknown, f"fences this test does not know how to run (use {RUNNABLE + NOT_CODE}): {unknown}"


def test_every_stand_in_matches_a_line_of_the_docs():
    lines = {line for block in BLOCKS if block.language == "sh" for line in shell_commands(block.code)}
    stale = [line for line in STAND_INS if line not in lines]
    assert not stale, f"stand-ins for lines no document has any more (update or remove them): {stale}"


def test_there_are_blocks_of_each_kind():
    count = {language: sum(block.language == language for block in BLOCKS) for language in RUNNABLE}
    assert count["python"] >= 4 and count["sh"] >= 10 and count["c"] >= 1, count


def test_the_readme_is_the_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme) <= 15_000, f"README.md has {len(readme)} characters; move details to docs/"
    fresh_machine = [block.code.strip() for block in fenced_blocks(ROOT / "README.md")][:2]
    assert fresh_machine[1] in (ROOT / ".ci" / "run").read_text().splitlines(), \
        "README's test command and .ci/run must be the same line"


def test_the_quickstart_writes_into_a_folder_git_ignores():
    readme = (ROOT / "README.md").read_text()
    quickstart_line = readme[:readme.index("\n## Quickstart\n")].count("\n") + 2
    first = next(block for block in fenced_blocks(ROOT / "README.md") if block.line > quickstart_line)
    assert shell_commands(first.code)[0].split("#")[0].strip() == "mkdir -p out", first.code
    assert not_ignored_by_git(["out/"]) == []


# Figures that change with the machine: times and rates. They live in docs/benchmarks.md and
# docs/training.md; the README keeps one quality table and one speed table (issue 25, item 7).
MACHINE_FIGURE = re.compile(r"\b\d[\d,.]*\s*(?:s|ms|min|seconds|minutes|steps/s|steps per second|GFLOP/s)\b")


def test_the_readme_keeps_machine_dependent_figures_in_the_docs():
    text = re.sub(r"^```.*?^```", "", (ROOT / "README.md").read_text(), flags=re.M | re.S)
    figures = MACHINE_FIGURE.findall(text)
    assert not figures, f"README.md holds figures that change with the machine, {figures}: move them to docs/"
    headers = [line for line in text.splitlines() if line.startswith("| ") and "\n" + line + "\n|---" in text]
    assert sum("Frechet distance" in header for header in headers) == 1, headers  # the quality table
    assert sum("samples/s" in header for header in headers) == 1, headers  # the speed table


@pytest.mark.slow
def test_a_run_ends_saying_how_to_load_its_package(dry_run, monkeypatch):
    """The last line of `python -m training.run` loads the run's own package, from where it ran."""
    import ganpack

    said = (dry_run.parent.parent / "said.txt").read_text().splitlines()[-1]
    path = ast.literal_eval(re.search(r"ganpack\.load\((.+?)\)", said).group(1))
    monkeypatch.chdir(dry_run.parent.parent)
    assert ganpack.load(path).folder.resolve() == (dry_run / "model").resolve(), said


def heading_anchor(heading: str) -> str:
    """The #anchor common Markdown renderers give a heading: lower case, punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", document.read_text(), flags=re.M | re.S)
    return {heading_anchor(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}


def test_relative_links_and_images_resolve():
    broken = []
    for document in [*DOCUMENTS, ROOT / "csrc" / "README.md"]:
        text = re.sub(r"^```.*?^```", "", document.read_text(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # an absolute address
            path, _, anchor = target.partition("#")
            resolved = (document.parent / path).resolve() if path else document
            if not resolved.exists():
                broken.append(f"{document.name}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{document.name}: {target} (no such heading)")
    assert not broken, broken
