"""What a package says about its training, without its author's folders.

A package is shared; the run's config is not. The config's folders (data_dir, cache_dir,
evaluator_cache, out_dir) mean nothing on another machine and may name a home folder, so the
manifest's training_config records them as "", and a `data` that is a path as its base name.
The data itself is described by the checkpoint's data_source (training/datasets.py: kind, name,
number of images, SHA-256 of the images, labeled, class names), which holds no path.
"""

from pathlib import PurePath

from training.config import DATASETS

FOLDER_KEYS = {"data": ("data_dir", "cache_dir"), "run": ("evaluator_cache", "out_dir")}  # section -> keys


def data_name(data: str) -> str:
    """A data set's name as it is; a path as its base name ('~/digits/train.npz' -> 'train.npz')."""
    return data if data in DATASETS else PurePath(data.rstrip("/")).name or "."


def public_training_config(config: dict) -> dict:
    """The checkpoint's config (TrainConfig.to_dict()) with its folders blanked and `data` a name."""
    public = {section: dict(values) if isinstance(values, dict) else values for section, values in config.items()}
    for section, keys in FOLDER_KEYS.items():
        for key in keys:
            if key in public.get(section, {}):
                public[section][key] = ""
    if isinstance(public.get("data", {}).get("data"), str):
        public["data"]["data"] = data_name(public["data"]["data"])
    return public


def data_provenance(state: dict, data: str) -> dict:
    """The manifest's provenance entries about the data: `dataset` (a name, as before) and, for
    checkpoints that record it, `data` (the source record)."""
    entries: dict = {"dataset": data_name(data)}
    if isinstance(state.get("data_source"), dict):
        entries["data"] = dict(state["data_source"])
    return entries
