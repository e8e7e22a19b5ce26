"""A VOS benchmark folder (:class:`VideoDataset`): resolution and split discovery, then one
:class:`~sam2rl.datasets.sequence.VideoSequence` per named video, all validated up front."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from sam2rl.datasets.sequence import Track, VideoSequence
from sam2rl.datasets.vos import DatasetError

__all__ = ["VideoDataset"]

_AUTO_RESOLUTION = "480p"


def _read_split_file(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read split file {path}: {e}") from e
    names = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


class VideoDataset:
    """A VOS benchmark folder, validated up front so bad data fails before training starts."""

    def __init__(
        self,
        root: str | Path,
        split: str | Path | Sequence[str] | None = None,
        resolution: str | None = None,
    ) -> None:
        self.root: Path = Path(root)
        if not self.root.is_dir():
            shown = self.root if self.root.is_absolute() else f"{self.root} (relative to the current folder: {self.root.resolve()})"
            raise DatasetError(f"dataset root {shown} does not exist or is not a folder")
        jpeg_root = self.root / "JPEGImages"
        ann_root = self.root / "Annotations"
        if not jpeg_root.is_dir():
            raise DatasetError(f"dataset root {self.root} has no JPEGImages folder")
        if resolution is None and (jpeg_root / _AUTO_RESOLUTION).is_dir():
            resolution = _AUTO_RESOLUTION
        if resolution is not None:
            jpeg_root = jpeg_root / resolution
            ann_root = ann_root / resolution
            if not jpeg_root.is_dir():
                raise DatasetError(f"resolution folder {jpeg_root} does not exist")
        self.resolution: str | None = resolution
        self.frame_root: Path = jpeg_root
        self.annotation_root: Path = ann_root

        available = sorted(
            e.name for e in jpeg_root.iterdir() if e.is_dir() and not e.name.startswith(".")
        )
        if split is None:
            names = available
            source = str(jpeg_root)
        else:
            names, source = self._resolve_split(split)
            known = set(available)
            for n in names:
                if n not in known:
                    raise DatasetError(
                        f"split {source} names sequence {n!r}, which is not in {jpeg_root}"
                    )
            seen: set[str] = set()
            for n in names:
                if n in seen:
                    raise DatasetError(f"split {source} lists sequence {n!r} twice")
                seen.add(n)
        if not names:
            raise DatasetError(f"no sequences found in {source}")
        self.split_source: str = source

        self.sequences: list[VideoSequence] = [
            VideoSequence(n, jpeg_root / n, ann_root / n) for n in names
        ]
        self._by_name = {s.name: s for s in self.sequences}

    def _resolve_split(self, split: str | Path | Sequence[str]) -> tuple[list[str], str]:
        """A path (absolute, cwd-relative or root-relative) to a split file, or a list of names."""
        if isinstance(split, (str, Path)):
            path = Path(split)
            if not path.is_file() and not path.is_absolute() and (self.root / path).is_file():
                path = self.root / path
            if not path.is_file():
                raise DatasetError(f"split file {split} not found (also tried under {self.root})")
            return _read_split_file(path), f"file {path}"
        names = [str(n) for n in split]
        return names, "list"

    def __repr__(self) -> str:
        return f"VideoDataset({str(self.root)!r}, sequences={len(self.sequences)})"

    def __getitem__(self, name: str) -> VideoSequence:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no sequence {name!r} in dataset {self.root}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[VideoSequence]:
        return iter(self.sequences)

    def __len__(self) -> int:
        return len(self.sequences)

    def names(self) -> list[str]:
        return [s.name for s in self.sequences]

    def tracks(self) -> list[Track]:
        """Every object of every sequence: the unit an episode or an evaluation runs on."""
        return [tr for s in self.sequences for tr in s.tracks()]
