"""Many threads on one model give exactly the serial results, and memory stays flat over many calls."""

import os
import threading

import numpy as np
import pytest

import ganpack
from packages import make_package

BACKENDS = [pytest.param(name, marks=[] if name == "c" else pytest.mark.slow)  # numpy and onnxruntime: 5-10 s each
            for name in ganpack.available_backends()]
THREADS, CALLS = 16, 1000
SIZES = (1, 2, 3, 7, 16, 17, 64, 100)  # mixed batch sizes, each with its own latents


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    path, _, _ = make_package(tmp_path_factory.mktemp("pkg") / "model")
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_sixteen_threads_of_a_thousand_mixed_calls_match_the_serial_results(package, backend):
    model = ganpack.load(package, backend=backend, threads=2)
    latents = [model.latents(size, seed=size) for size in SIZES]
    serial_images = [model.generate(z, output="float") for z in latents]
    serial_scores = [model.score(images) for images in serial_images]
    errors, calls = [], [0] * THREADS

    def work(worker: int):
        rng = np.random.default_rng(worker)
        try:
            for _ in range(CALLS):
                pick = int(rng.integers(len(SIZES)))
                if rng.random() < 0.75:
                    assert np.array_equal(model.generate(latents[pick], output="float"), serial_images[pick])
                else:
                    assert np.array_equal(model.score(serial_images[pick]), serial_scores[pick])
                calls[worker] += 1
        except BaseException as error:  # surfaced below: an assertion in a thread would otherwise vanish
            errors.append(error)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert not errors, errors[:3]
    assert sum(calls) == THREADS * CALLS


def resident_bytes() -> int:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads resident memory from /proc")
@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_stays_flat_over_a_hundred_thousand_calls(package, backend):
    model = ganpack.load(package, backend=backend)
    z = model.latents(1, seed=0)
    out = np.empty((1, 28, 28), np.float32)
    image = model.generate(z, output="float")

    def calls(count: int):
        for index in range(count):
            if index % 10:
                model.generate(z, output="float", out=out)
            else:
                model.score(image)

    calls(10_000)  # warm-up: allocator pools and caches reach their steady size
    before = resident_bytes()
    calls(100_000)
    grown = resident_bytes() - before
    # a leak of even 16 bytes a call would add 1.6 MB; allow 1 MB of allocator noise
    assert grown < 1_000_000, f"resident memory grew by {grown / 1e6:.2f} MB over 100,000 calls"
