"""The latent stream "ganpack-philox/1": the z that `sample(n, seed)` feeds the generator.

Defined here op for op in numpy (the reference); the C kernel (csrc/latents*.c) computes the
same float32 values bit for bit, and either may draw them. Row i of the stream for `seed`
depends on (seed, i) only: never on n, on chunking, or on threads.

- Bits: Philox4x32-10 (Salmon et al., SC11, "Parallel random numbers: as easy as 1, 2, 3"),
  key (seed & 0xffffffff, seed >> 32), counter (block, row & 0xffffffff, row >> 32, 0). A row
  of `dim` values uses blocks = ceil(dim / 4) blocks of 4 words; value j of the row is word
  j // blocks of block j % blocks.
- normal: words (0, 1) and (2, 3) of a block are Box-Muller pairs: radius
  sqrt(-2 log(((w0 >> 8) + 1) * 2^-24)) and angle 2 pi (w1 >> 8) * 2^-24, giving r cos and r sin.
  log, sin and cos are the float32 polynomials below (no library calls, no fused multiply-add),
  so every platform gets the same bits. Radii reach at most sqrt(2 * 24 * log 2) = 5.77.
- uniform: each word becomes (w >> 8) * 2^-24 in [0, 1).
- Then value * scale + offset in float32 (normal: std, mean; uniform: high - low, low).
"""

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ganpack.contract import NORMAL
from ganpack.errors import InputError

GENERATOR = "ganpack-philox/1"  # the stream a format_version 2 package names in latent.generator
LEGACY_GENERATOR = "numpy-pcg64"  # format_version 1 packages: numpy.random.default_rng(seed)
MAX_SEED = (1 << 64) - 1
CHUNK_ROWS = 4096  # rows drawn at once by the numpy reference: bounds its temporaries

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)  # Philox4x32 multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85  # Weyl key increments
_MASK32 = np.uint64(0xFFFFFFFF)
_F = np.float32
# float32 constants, as exact hex (the C files use the same literals)
_TWO_M24 = _F(float.fromhex("0x1p-24"))
_SQRT2 = _F(float.fromhex("0x1.6a09e6p+0"))
_LN2 = _F(float.fromhex("0x1.62e430p-1"))
_ATANH = [_F(float.fromhex(h))
          for h in ("0x1.c71c72p-4", "0x1.24924ap-3", "0x1.99999ap-3", "0x1.555556p-2")]  # 1/9 .. 1/3
_SIN = [_F(float.fromhex(h)) for h in ("0x1.507834p-13", "-0x1.32d2ccp-8", "0x1.466bc6p-4", "-0x1.4abbcep-1",
                                       "0x1.921fb6p+0")]  # (pi/2)^k / k!, k = 9, 7, 5, 3, 1, alternating sign
_COS = [_F(float.fromhex(h)) for h in ("-0x1.a6d1f2p-16", "0x1.e1f506p-11", "-0x1.55d3c8p-6", "0x1.03c1f0p-2",
                                       "-0x1.3bd3ccp+0")]  # (pi/2)^k / k!, k = 10, 8, 6, 4, 2, alternating sign

Words = npt.NDArray[np.uint32]
Floats = npt.NDArray[np.float32]


def philox4x32_10(counter: Iterable[npt.ArrayLike], key: tuple[int, int]) -> tuple[Words, ...]:
    """Philox4x32-10 of 4 uint32 counter arrays (broadcastable) and a (k0, k1) key -> 4 uint32 arrays."""
    x0, x1, x2, x3 = (np.asarray(c, np.uint64) for c in counter)
    k0, k1 = int(key[0]), int(key[1])
    for round_ in range(10):
        if round_:
            k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
        product0, product1 = x0 * _M0, x2 * _M1  # exact: both factors < 2^32
        x0, x1, x2, x3 = ((product1 >> np.uint64(32)) ^ x1 ^ np.uint64(k0), product1 & _MASK32,
                          (product0 >> np.uint64(32)) ^ x3 ^ np.uint64(k1), product0 & _MASK32)
    return tuple(x.astype(np.uint32) for x in (x0, x1, x2, x3))


def _unit(words: Words) -> Floats:
    """uint32 -> float32 (w >> 8) * 2^-24 in [0, 1), exact."""
    unit: Floats = (words >> np.uint32(8)).astype(np.float32) * _TWO_M24  # numpy's stubs say Any
    return unit


def _log(u: Floats) -> Floats:
    """log of float32 u in (0, 1]: u = m 2^e with m in [sqrt(2)/2, sqrt(2)), log m = 2 atanh(s),
    s = (m - 1) / (m + 1), by its series to s^9 (|s| < 0.172: truncation below 1e-9)."""
    bits = u.view(np.uint32)
    exponent = (bits >> np.uint32(23)).astype(np.int32) - 127
    m = ((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)).view(np.float32)
    big = m > _SQRT2
    m = np.where(big, m * _F(0.5), m)
    exponent = exponent + big
    f = m - _F(1)
    s = f / (f + _F(2))
    s2 = s * s
    p = _ATANH[0]
    for c in _ATANH[1:]:
        p = p * s2 + c
    p = p * s2 + _F(1)
    log_u: Floats = exponent.astype(np.float32) * _LN2 + (s + s) * p
    return log_u


def _cos_sin_turn(v: Floats) -> tuple[Floats, Floats]:
    """cos and sin of 2 pi v for float32 v in [0, 1): t = 4v = q + f with q = round-half-even(t),
    f in [-1/2, 1/2] (exact), then Taylor polynomials of sin(pi f / 2) and cos(pi f / 2)
    (truncation below 2e-9) and a rotation by q quarter turns (a swap and signs: exact)."""
    t = v * _F(4)
    q = np.rint(t)
    f = t - q
    f2 = f * f
    sin_p = _SIN[0]
    for c in _SIN[1:]:
        sin_p = sin_p * f2 + c
    sin_a = f * sin_p
    cos_p = _COS[0]
    for c in _COS[1:]:
        cos_p = cos_p * f2 + c
    cos_a = cos_p * f2 + _F(1)
    quarter = q.astype(np.int32)
    odd = (quarter & 1) == 1
    cos_t, sin_t = np.where(odd, sin_a, cos_a), np.where(odd, cos_a, sin_a)
    cos_t = np.where((quarter + 1) & 2, -cos_t, cos_t)  # quarters 1 and 2
    sin_t = np.where(quarter & 2, -sin_t, sin_t)  # quarters 2 and 3
    return cos_t, sin_t


def _words(seed: int, first_row: int, rows: int, blocks: int) -> tuple[Words, ...]:
    row = np.arange(first_row, first_row + rows, dtype=np.uint64)[:, None]  # (rows, 1)
    block = np.arange(blocks, dtype=np.uint64)[None, :]  # (1, blocks)
    return philox4x32_10((block, row & _MASK32, row >> np.uint64(32), np.uint64(0)),
                         (seed & 0xFFFFFFFF, seed >> 32))  # 4 x (rows, blocks)


def _base(seed: int, first_row: int, rows: int, dim: int, distribution: str) -> Floats:
    """(rows, dim) float32 standard draws (N(0, 1) or U[0, 1)) before scale and offset."""
    blocks = -(-dim // 4)
    w0, w1, w2, w3 = _words(seed, first_row, rows, blocks)
    if distribution == NORMAL:
        values: list[Floats] = []
        for radius_words, angle_words in ((w0, w1), (w2, w3)):
            u = ((radius_words >> np.uint32(8)) + np.uint32(1)).astype(np.float32) * _TWO_M24  # (0, 1]
            radius = np.sqrt(_log(u) * _F(-2))
            cos_t, sin_t = _cos_sin_turn(_unit(angle_words))
            values += [radius * cos_t, radius * sin_t]
    else:
        values = [_unit(w) for w in (w0, w1, w2, w3)]
    return np.concatenate(values, axis=1)[:, :dim]  # word-major: value j = word j // blocks of block j % blocks


def draw_numpy(seed: int, first_row: int, rows: int, dim: int, distribution: str, scale: float,
               offset: float) -> Floats:
    """Rows [first_row, first_row + rows) of the stream, (rows, dim) float32, in plain numpy."""
    out = np.empty((rows, dim), np.float32)
    scale, offset = np.float32(scale), np.float32(offset)
    for start in range(0, rows, CHUNK_ROWS):
        count = min(CHUNK_ROWS, rows - start)
        out[start:start + count] = _base(seed, first_row + start, count, dim, distribution) * scale + offset
    return out


def scale_offset(distribution: str, parameters: dict[str, float]) -> tuple[np.float32, np.float32]:
    """The float32 (scale, offset) of a latent distribution (ganpack.contract.LATENT_DISTRIBUTIONS):
    a standard draw becomes draw * scale + offset (normal: std, mean; uniform: high - low, low)."""
    if distribution == NORMAL:
        return np.float32(parameters["std"]), np.float32(parameters["mean"])
    return np.float32(parameters["high"] - parameters["low"]), np.float32(parameters["low"])


# ---------------------------------------------------------------------------------------------
# a package's stream: what sample(n, seed) draws

DrawRows = Callable[[int, int, int, int, str, float, float], Floats]  # draw_numpy's signature


@dataclass(frozen=True)
class Stream:
    """The latent stream a package names (manifest latent.generator), with its distribution.

    GENERATOR ("ganpack-philox/1", format_version 2 and later) is counter-based: any row range is
    drawn on its own, by `draw_rows` (the C kernel's gp_latents when it is built, else draw_numpy:
    the same bits). LEGACY_GENERATOR ("numpy-pcg64", format_version 1) is numpy's
    default_rng(seed), drawn in order: mean + std * standard_normal(float32), or low + (high - low)
    * random(float32), as ganpack 0.1.0 drew them."""

    generator: str  # GENERATOR or LEGACY_GENERATOR
    dim: int
    distribution: str  # "normal" or "uniform"
    scale: float  # float32 values (scale_offset): std or high - low
    offset: float  # mean or low
    draw_rows: DrawRows = draw_numpy

    def seed(self, seed: object) -> int | None:
        """`seed` checked; None becomes a fresh random seed (the legacy stream takes None itself)."""
        if seed is None:
            return secrets.randbits(64) if self.generator == GENERATOR else None
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"seed must be a non-negative integer or None, got {seed!r}")
        if self.generator == GENERATOR and seed > MAX_SEED:
            raise InputError(f"seed must be below 2**64 for the {GENERATOR} latent stream, got {seed}")
        return int(seed)

    def draw(self, seed: int | None, first_row: int, rows: int) -> Floats:
        """Rows [first_row, first_row + rows) of the stream for `seed` (checked), (rows, dim) float32.
        The legacy stream draws (and drops) the rows before first_row: a cost in first_row."""
        if self.generator == GENERATOR:
            assert seed is not None  # Stream.seed gives this stream an int
            return self.draw_rows(seed, first_row, rows, self.dim, self.distribution, self.scale, self.offset)
        rng = np.random.default_rng(seed)
        for start in range(0, first_row, CHUNK_ROWS):
            self._draw_legacy(rng, min(CHUNK_ROWS, first_row - start))  # dropped
        return self._draw_legacy(rng, rows)

    def pieces(self, seed: int | None, n: int, rows: int) -> Iterator[Floats]:
        """Rows 0..n-1 of the stream for `seed` (checked), `rows` at a time (one piece when n is 0)."""
        if self.generator == GENERATOR:
            for first in range(0, max(n, 1), rows):
                yield self.draw(seed, first, min(rows, n - first))
            return
        rng = np.random.default_rng(seed)  # drawn in order: each piece continues the last
        for first in range(0, max(n, 1), rows):
            yield self._draw_legacy(rng, min(rows, n - first))

    def _draw_legacy(self, rng: np.random.Generator, rows: int) -> Floats:
        """The next `rows` rows of the legacy stream, (rows, dim) float32, CHUNK_ROWS at a time."""
        out = np.empty((rows, self.dim), np.float32)
        for start in range(0, rows, CHUNK_ROWS):
            part = out[start:start + CHUNK_ROWS]
            if self.distribution == NORMAL:
                rng.standard_normal(part.shape, dtype=np.float32, out=part)
            else:
                rng.random(part.shape, dtype=np.float32, out=part)
            part *= np.float32(self.scale)  # (std, mean) or (high - low, low)
            part += np.float32(self.offset)
        return out
