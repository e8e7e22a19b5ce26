"""A VOS benchmark folder (:class:`VideoDataset`): resolution and split discovery, then one
:class:`~sam2rl.datasets.sequence.VideoSequence` per named video, all validated up front."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib import resources
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


PACKAGE_PREFIX = "sam2rl:"
"""A root written `sam2rl:NAME` is the folder NAME inside the installed package (`sam2rl:sample`, the
bundled sample the shipped recipes train on), so a recipe works from any folder and from a wheel."""


def resolve_root(path: str | Path) -> Path:
    """`path` as a folder: `sam2rl:NAME` inside the package, anything else as given."""
    text = str(path)
    if text.startswith(PACKAGE_PREFIX):
        return Path(str(resources.files("sam2rl") / text.removeprefix(PACKAGE_PREFIX)))
    return Path(path)


def _folder(path: str | Path, what: str) -> Path:
    path = resolve_root(path)
    if not path.is_dir():
        shown = path if path.is_absolute() else f"{path} (relative to the current folder: {path.resolve()})"
        raise DatasetError(f"{what} {shown} does not exist or is not a folder")
    return path


def _videos_folder(base: Path, kind: str, resolution: str | None, *, own: bool) -> Path:
    """Where `base` keeps one folder per video: ``base/kind[/resolution]``; a separate root
    (`own` false) without a `kind` folder is taken to be that folder itself."""
    if not own and not (base / kind).is_dir():
        return base
    return base / kind / resolution if resolution else base / kind


class VideoDataset:
    """A VOS benchmark folder, validated up front so bad data fails before training starts.

    `frames_root` / `annotations_root` read frames or annotations from elsewhere (e.g.
    YouTube-VOS ``valid_all_frames``, whose every frame the sparse ``valid`` masks index):
    a folder with ``JPEGImages/`` (``Annotations/``) like `root`, or the folder of video
    folders itself. Videos are the `split`, else the folders of root's ``JPEGImages``
    (of the frames root's when root has none); each must be in both roots.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | Path | Sequence[str] | None = None,
        resolution: str | None = None,
        *,
        frames_root: str | Path | None = None,
        annotations_root: str | Path | None = None,
    ) -> None:
        self.root: Path = _folder(root, "dataset root")
        frames = None if frames_root is None else _folder(frames_root, "frames root")
        annotations = None if annotations_root is None else _folder(annotations_root, "annotations root")
        own_frames = (self.root / "JPEGImages").is_dir()
        if not own_frames and frames is None:
            raise DatasetError(f"dataset root {self.root} has no JPEGImages folder")
        if resolution is None:
            probe = self.root if own_frames or frames is None else frames
            resolution = _AUTO_RESOLUTION if (probe / "JPEGImages" / _AUTO_RESOLUTION).is_dir() else None
        self.resolution: str | None = resolution
        self.frame_root: Path = _videos_folder(frames or self.root, "JPEGImages", resolution, own=frames is None)
        self.annotation_root: Path = _videos_folder(
            annotations or self.root, "Annotations", resolution, own=annotations is None
        )
        listing = _videos_folder(self.root, "JPEGImages", resolution, own=True) if own_frames else self.frame_root
        for folder in (listing, self.frame_root):
            if not folder.is_dir():
                raise DatasetError(f"resolution folder {folder} does not exist")

        available = sorted(
            e.name for e in listing.iterdir() if e.is_dir() and not e.name.startswith(".")
        )
        if split is None:
            names = available
            source = str(listing)
        else:
            names, source = self._resolve_split(split)
            known = set(available)
            for n in names:
                if n not in known:
                    raise DatasetError(
                        f"split {source} names sequence {n!r}, which is not in {listing}"
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
            VideoSequence(n, self.frame_root / n, self.annotation_root / n) for n in names
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
