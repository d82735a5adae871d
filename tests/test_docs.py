"""Every ```python block of README.md and docs/*.md runs as written, in a fresh process, from a
folder that holds a copy of the built-in package as model/ (what the README's snippets open)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ganpack

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(document, index, code) for document in DOCUMENTS
          for index, code in enumerate(re.findall(r"```python\n(.*?)```", document.read_text(), re.S))]


@pytest.mark.parametrize("document, index, code", BLOCKS,
                         ids=[f"{document.name}-{index}" for document, index, _ in BLOCKS])
def test_python_block_runs(tmp_path, document, index, code):
    shutil.copytree(Path(ganpack.load(backend="numpy").folder), tmp_path / "model")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{document.name} block {index}:\n{done.stderr[-3000:]}"


def test_there_are_blocks_to_run():
    assert len(BLOCKS) >= 3  # README: the runtime API and plain onnxruntime; docs/latents.md: the latents
