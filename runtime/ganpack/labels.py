"""The class labels a conditional model is asked for: checked once, here, for every entry point.

A conditional package's networks read a class index per row (ganpack.manifest.Classes): `label=7`
for every row, or `labels=` n indices. Both are checked before any backend runs, with an
InputError naming the offending value: a bool, a float (7.5, and 7.0 too), a string ("7": class
names are not accepted, the index is the one spelling), an index outside [0, count), or labels of
the wrong length or shape. An unconditional model refuses both.
"""

import numpy as np
import numpy.typing as npt

from ganpack.errors import InputError

Labels = npt.NDArray[np.int32]  # (n,) C-contiguous: what every backend takes


def checked_labels(n: int, label: object, labels: object, names: tuple[str, ...] | None,
                   takes_label: bool = True) -> Labels | None:
    """(n,) int32 class indices from `label` (one class for every row) or `labels` (one per row);
    None for an unconditional model (names None), which must get neither. takes_label: whether the
    caller has a `label` option (sample does; generate and score take labels only)."""
    if names is None:
        if label is not None or labels is not None:
            given, value = ("label", label) if label is not None else ("labels", labels)
            raise InputError(f"this model is unconditional; it takes no class label (got {given}={_short(value)})")
        return None
    if label is not None and labels is not None:
        raise InputError("give label= (one class for every row) or labels= (one per row), not both")
    if label is None and labels is None:
        how = "label= (one class for every row) or labels= (one per row)" if takes_label else \
            "labels= (one class index per row)"
        raise InputError(f"this model is class-conditional ({len(names)} classes: {_classes(names)}); pass {how}")
    if label is not None:
        return np.full(n, class_index(label, names), np.int32)
    return _label_array(labels, n, names)


def class_index(value: object, names: tuple[str, ...], what: str = "label") -> int:
    """One class index, checked: an integer (Python or numpy, not bool) in [0, len(names))."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        hint = ""
        if isinstance(value, str):
            hint = f" (class names are not accepted; model.classes.index({value!r}) gives a name's index)"
        raise InputError(f"{what} must be an integer class index from 0 to {len(names) - 1}, got {value!r}{hint}")
    if not 0 <= value < len(names):
        raise InputError(f"{what} {value} is out of range: this model has {len(names)} classes, "
                         f"0 to {len(names) - 1}")
    return int(value)


def _label_array(values: object, n: int, names: tuple[str, ...]) -> Labels:
    try:
        array = np.asarray(values)
    except (OverflowError, ValueError) as error:  # ragged nesting
        raise InputError(f"labels must be {n} integer class indices: {error}") from None
    if array.ndim == 0:  # a lone value, not a sequence of them
        raise InputError(f"labels must be a sequence of {n} class indices (one per row), got {_short(values)}; "
                         "for one class for every row of sample(), use label=")
    if array.ndim != 1:
        raise InputError(f"labels must be one class index per row, shape ({n},), got shape {array.shape}")
    if len(array) != n:
        raise InputError(f"labels must hold {n} class indices (one per row), got {len(array)}")
    if n == 0:
        return np.empty(0, np.int32)  # [] reads as float64: nothing to check
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        if array.dtype == object:  # Python ints beyond int64, or mixed objects: name the first bad one
            for value in array:
                class_index(value, names, "labels entry")
        raise InputError(f"labels must be integer class indices, got {array.dtype} values such as "
                         f"{_short(array[0])}")
    outside = np.flatnonzero((array < 0) | (array >= len(names)))
    if outside.size:
        first = int(outside[0])
        raise InputError(f"labels[{first}] = {array[first]} is out of range: this model has {len(names)} classes, "
                         f"0 to {len(names) - 1}")
    return np.ascontiguousarray(array, dtype=np.int32)


def _classes(names: tuple[str, ...]) -> str:
    """The classes for a message: '0 to 9' when the names are the indices, else the first names."""
    if names == tuple(str(i) for i in range(len(names))):
        return f"0 to {len(names) - 1}"
    shown = ", ".join(f"{i}={name!r}" for i, name in enumerate(names[:10]))
    return shown + (", ..." if len(names) > 10 else "")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
