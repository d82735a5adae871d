"""A folder of PNG or JPEG images as uint8 (N, 28, 28), with labels from subfolder names.

Two layouts: every image directly in the folder (unlabeled data), or every image inside a
first-level subfolder whose name is its class (as torchvision's ImageFolder; images deeper down
count for their first-level subfolder). A mix of the two is refused rather than guessed at: one
stray file would otherwise drop the labels of thousands.

Each image is converted to 8-bit grayscale (Pillow's "L": luminance, alpha ignored) and, when it
is not 28x28, resized to 28x28 with Pillow's Lanczos filter; a non-square image is stretched.
Nothing is inverted: MNIST-style data is light strokes on a dark background. Files are read in
sorted path order, so one folder always gives the same array, and the same SHA-256. Hidden files
and folders (".name") and files with other extensions are skipped. Pillow is imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ganpack.contract import IMAGE_SIDE
from training.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # compared in lower case


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, as paths relative to it, sorted; symbolic links to folders are
    not followed (a link loop must not hang the loader)."""
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]  # pruned in place
        relative = Path(root).relative_to(folder)
        found += [relative / name for name in files
                  if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found, key=lambda path: path.parts)


def read_image_folder(folder: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """(images uint8 (N, 28, 28), labels int64 (N,) or None, class names or None).

    Class names are the subfolder names, sorted; label i is class_names[i]. Raises DataError
    naming the folder or the file: no images, a mixed layout, an unreadable or corrupt image.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError(f"{folder}: reading a folder of images needs Pillow (the [train] extra installs it)") from None
    files = image_files(folder)
    if not files:
        raise DataError(f"{folder}: no PNG or JPEG images in the folder or its subfolders "
                        f"(looked for {', '.join(IMAGE_SUFFIXES)})")
    loose = [path for path in files if len(path.parts) == 1]
    sorted_in = [path for path in files if len(path.parts) > 1]
    if loose and sorted_in:
        raise DataError(f"{folder}: {len(loose)} images lie in the folder itself (such as '{loose[0]}') and "
                        f"{len(sorted_in)} in subfolders (such as '{sorted_in[0]}'); put every image in a class "
                        "subfolder for labeled data, or none in subfolders for unlabeled data")

    images = np.empty((len(files), IMAGE_SIDE, IMAGE_SIDE), np.uint8)  # (N, 28, 28)
    for index, relative in enumerate(files):
        path = folder / relative
        try:
            with Image.open(path) as image:
                gray = image.convert("L")  # decodes the whole file: a truncated one fails here
            if gray.size != (IMAGE_SIDE, IMAGE_SIDE):
                gray = gray.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.LANCZOS)
            images[index] = np.asarray(gray, dtype=np.uint8)
        except UnidentifiedImageError:
            raise DataError(f"{path}: cannot read it as an image (not a PNG or JPEG that Pillow can open)") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:  # truncated, damaged, huge
            raise DataError(f"{path}: cannot read it as an image ({' '.join(str(error).split())})") from None

    if loose:
        return images, None, None
    class_names = sorted({path.parts[0] for path in files})
    index_of = {name: index for index, name in enumerate(class_names)}
    labels = np.array([index_of[path.parts[0]] for path in files], np.int64)
    return images, labels, class_names
