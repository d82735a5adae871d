"""Model's one call path: every public method reaches the backend through the same operation on
every backend (sample: sample_into once; generate and score: run_into once), and the legacy
stream's rows can start anywhere."""

import json
import shutil

import numpy as np
import pytest

import ganpack
from ganpack.errors import InputError
from ganpack.model import DEFAULT_MODEL

BACKENDS = ganpack.available_backends()


def spied(model, monkeypatch):
    """Record every call Model makes of its two backends (not the calls a backend makes of itself)."""
    calls, depth = [], [0]
    for role in ("_generator", "_discriminator"):
        backend = getattr(model, role)
        for operation in ("run_into", "sample_into"):
            real = getattr(backend, operation)

            def spy(*args, _real=real, _name=f"{role[1:]}.{operation}"):
                if not depth[0]:
                    calls.append((_name, args))
                depth[0] += 1
                try:
                    return _real(*args)
                finally:
                    depth[0] -= 1

            monkeypatch.setattr(backend, operation, spy)
    return calls


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [None, "conditional"])
def test_each_public_method_is_one_backend_call(backend, name, monkeypatch):
    model = ganpack.load(name, backend=backend)
    labels = {"labels": np.arange(5) % 10} if name else {}
    label = {"label": 3} if name else {}
    expected = model.sample(5, seed=2, **label)
    calls = spied(model, monkeypatch)

    assert np.array_equal(model.sample(5, seed=2, **label), expected)
    (call,) = calls
    assert call[0] == "generator.sample_into" and call[1][:2] == (2, 0)  # seed 2 from row 0
    assert (call[1][2] is None) == (name is None)  # labels only for the conditional model

    calls.clear()
    model.generate(model.latents(5, seed=2), **labels)
    model.score(expected, **labels)
    model.score(expected.astype(np.float32) / 127.5 - 1, **labels)
    assert [c[0] for c in calls] == ["generator.run_into"] + ["discriminator.run_into"] * 2
    assert [c[1][3] for c in calls] == ["finite", None, "image"]  # what the float inputs must be


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_values_are_named_on_every_backend(backend):
    """The backend refuses (in C, or in chunked.py); Model names the value, the same on each."""
    model = ganpack.load(backend=backend)
    z = model.latents(3, seed=1)
    z[2, 7] = np.nan
    with pytest.raises(InputError, match="row 2, column 7"):
        model.generate(z)
    images = np.zeros((2, 784), np.float32)
    images[1, 5] = 1.5
    with pytest.raises(InputError, match=r"\[-1, 1\]"):
        model.score(images)
    images[1, 5] = np.inf
    with pytest.raises(InputError, match="row 1, column 5"):
        model.score(images)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_legacy_stream_from_any_row(backend, tmp_path):
    """A format_version 1 package's stream is numpy's, drawn in order: rows from first_row on equal
    those rows of the whole draw."""
    package = shutil.copytree(DEFAULT_MODEL, tmp_path / "v1")
    manifest = json.loads((package / "manifest.json").read_text())
    del manifest["latent"]["generator"]
    (package / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    model = ganpack.load(package, backend=backend)
    whole = model.latents(5000, seed=4)
    for first in (0, 1, 4095, 4096, 4100):
        assert np.array_equal(model.stream.draw(4, first, 5000 - first), whole[first:])
    out = np.empty((10, 28, 28), np.uint8)
    model._generator.sample_into(4, 4100, None, out)
    assert np.array_equal(out, model.generate(whole[4100:4110]))
