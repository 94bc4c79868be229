"""A deployer's own collection: labelled recordings of subjects and attack instruments on one camera.

A collection is a folder: ``recordings/*.db3`` (real RealSense streams, written by the recorder),
``manifest.jsonl`` (one JSON line per recording: file, SHA-256, subject id, species, instrument id,
camera serial and firmware, framesets, time, SDK version), ``splits.json`` (which subjects and
instruments train, validate and test) and ``cache/`` (the aligned, encoded face crops of each
recording, keyed by the file's SHA-256 and the crop settings). Subjects are ids chosen by the
deployer, never names: nothing here stores a name, and ``forget_subject`` deletes one subject's
recordings, cached crops and manifest rows.

Splits share no subject and no attack instrument between train, validation and test (ISO/IEC
30107-3 asks for disjoint instruments), so a model is never tested on a face or an artefact it was
trained or calibrated on.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .digest import file_sha256
from .errors import CaptureRefused
from .frames import FrameSet
from .version import __version__

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
MANIFEST = "manifest.jsonl"
SPLITS = "splits.json"
RECORDINGS = "recordings"
CACHE = "cache"
SPECIES = ("bona_fide", "print", "replay", "mask")
"""The built-in species; a collection may name others (e.g. "silicone_mask"): every species but
bona_fide is an attack and needs an instrument id."""
SPLIT_NAMES = ("train", "val", "test")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_NAME_LIKE = re.compile(r"[A-Z][a-z]+([_.-][A-Z][a-z]+)+")
_RECORDING = re.compile(rf"{RECORDINGS}/[A-Za-z0-9][A-Za-z0-9_.-]*\.db3")
_SHA256 = re.compile(r"[0-9a-f]{64}")
COLLECTED_ORIGINS = ("camera", "synthetic")
"""What a collection records from: a live camera, or the synthetic camera (labelled as such). A
recording or an image folder replayed into ``collect`` could file someone's old capture as a new
subject's presentation."""
UNRECORDED_ORIGIN = "unrecorded"  # rows written before the manifest recorded the origin


def check_id(kind: str, value: str) -> str:
    """A subject or instrument id: 1-32 letters, digits, '_', '.', '-', not shaped like a person's name."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"{kind}: expected an id of 1-32 letters, digits, '_', '.' or '-' (e.g. S001), got {value!r}")
    if kind == "subject" and _NAME_LIKE.fullmatch(value):
        raise ValueError(f"subject: {value!r} looks like a name; use a code such as S001 and keep the key to it "
                         "outside the collection")
    return value


def check_species(species: str) -> str:
    """A species name: bona_fide, an attack of SPECIES, or one of the deployer's own (same id rules)."""
    check_id("species", species)
    return species


def check_labels(subject: str, species: str, instrument: str) -> None:
    """One presentation's labels: ids, and an instrument on attacks only.

    Raises:
        ValueError: a bad id, an instrument on bona fide or none on an attack.
    """
    check_id("subject", subject)
    check_species(species)
    if not isinstance(instrument, str) or (species == "bona_fide") != (instrument == ""):
        raise ValueError(f"instrument: bona fide captures take none and attacks need one, got {instrument!r} for "
                         f"{species!r}")
    if instrument:
        check_id("instrument", instrument)


@dataclass(frozen=True)
class Capture:
    """One recording of a collection: a manifest row."""

    file: str  # relative to the collection folder
    sha256: str
    subject: str
    species: str
    instrument: str  # "" for bona fide
    camera_serial: str
    camera_firmware: str
    frames: int
    time: str
    sdk_version: str
    origin: str = "camera"  # the source's: "camera", or "synthetic" for a staged collection

    def __post_init__(self) -> None:
        # The file is deleted by `forget_subject` and the digest names cache files: neither may
        # point outside the collection.
        if not isinstance(self.file, str) or not _RECORDING.fullmatch(self.file):
            raise ValueError(f"file: expected {RECORDINGS}/NAME.db3 inside the collection, got {self.file!r}")
        if not isinstance(self.sha256, str) or not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"sha256: expected 64 lowercase hex digits, got {self.sha256!r}")
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"frames: expected an int ≥ 1, got {self.frames!r}")
        check_labels(self.subject, self.species, self.instrument)
        if self.origin not in COLLECTED_ORIGINS + (UNRECORDED_ORIGIN,):
            raise ValueError(f"origin: expected one of {COLLECTED_ORIGINS}, got {self.origin!r}")

    @property
    def is_attack(self) -> bool:
        return self.species != "bona_fide"

    @property
    def label(self) -> str:
        return "attack" if self.is_attack else "live"


def load_manifest(folder: PathLike, verify: bool = True) -> List[Capture]:
    """The captures of a collection, in manifest order.

    Args:
        folder: the collection folder.
        verify: check every recording's SHA-256 against the manifest (a changed or corrupt file is
            refused, not trained on).

    Raises:
        FileNotFoundError: no manifest, or a recording it lists is missing.
        ValueError: a malformed manifest line (its number is named) or a recording that changed.
    """
    folder = Path(folder)
    captures = []
    for number, capture in _read_rows(folder):
        recording = folder / capture.file
        if not recording.is_file():
            raise FileNotFoundError(f"{folder / MANIFEST}:{number}: {recording} is missing")
        if verify and file_sha256(recording) != capture.sha256:
            raise ValueError(f"{recording} changed since it was recorded (its SHA-256 differs from the manifest)")
        captures.append(capture)
    if not captures:
        raise ValueError(f"{folder / MANIFEST}: no captures yet")
    return captures


def _read_rows(folder: Path) -> List[Tuple[int, Capture]]:
    """The manifest's rows with their line numbers, checked as rows (not against the files)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {MANIFEST}; record into it with `mmdg-edge collect --data {folder}`")
    names = {f.name for f in fields(Capture)}
    rows: List[Tuple[int, Capture]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if isinstance(row, dict) and set(row) == names - {"origin"}:
                row["origin"] = UNRECORDED_ORIGIN
            if not isinstance(row, dict) or set(row) != names:
                raise ValueError(f"expected keys {sorted(names)}")
            rows.append((number, Capture(**row)))
        except (json.JSONDecodeError, TypeError, ValueError, RecursionError) as exc:
            raise ValueError(f"{path}:{number}: not a capture row ({exc})") from exc
    _check_unique(path, rows)
    return rows


def _check_unique(path: Path, rows: Sequence[Tuple[int, Capture]]) -> None:
    """One row per file and per SHA-256: one recording under two ids would land in two splits, and
    forgetting one id would delete what the other still lists."""
    files: Dict[str, Tuple[int, Capture]] = {}
    digests: Dict[str, Tuple[int, Capture]] = {}
    for number, capture in rows:
        if capture.file in files:
            first, other = files[capture.file]
            raise ValueError(f"{path}:{number}: {capture.file} is already listed on line {first} (subject "
                             f"{other.subject}); a recording is one presentation of one subject")
        if capture.sha256 in digests:
            first, other = digests[capture.sha256]
            raise ValueError(f"{path}:{number}: {capture.file} has the SHA-256 of {other.file} on line {first}: the same "
                             "recording twice; a recording is one presentation of one subject")
        files[capture.file] = digests[capture.sha256] = (number, capture)


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` all at once: an interruption leaves the old file or the new one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def manifest_sha256(folder: PathLike) -> str:
    """SHA-256 of the manifest file (what a bundle records of the data it was made from)."""
    return file_sha256(Path(folder) / MANIFEST)


def _claim_next_file(folder: Path, subject: str, species: str, instrument: str) -> Path:
    """The next free take's path, created empty so that no other `collect` can claim it."""
    stem = "_".join(part for part in (subject, species, instrument) if part)
    for take in itertools.count(1):
        path = folder / RECORDINGS / f"{stem}_{take:02d}.db3"
        try:
            path.open("xb").close()
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def collect(framesets: Iterable[FrameSet], folder: PathLike, subject: str, species: str, instrument: str = "",
            frames: int = 30, progress: Optional[Callable[[Iterable[FrameSet]], Iterable[FrameSet]]] = None) -> Capture:
    """Record ``frames`` framesets of one presentation into the collection and append its manifest row.

    Args:
        framesets: an open source (a camera; any source works).
        folder: the collection folder (created if needed).
        subject: the subject's id (never a name).
        species: "bona_fide", "print", "replay", "mask" or the deployer's own attack species.
        instrument: the attack instrument's id (empty for bona fide).
        frames: framesets to record.
        progress: wraps the framesets (e.g. a tqdm bar).

    Returns:
        The manifest row written.

    Raises:
        ValueError: bad ids, an instrument on bona fide or none on an attack, a source that is not a
            live camera or the synthetic camera (a recording or an image folder, by the framesets'
            origin), a recording identical to one the collection holds, or fewer framesets than
            asked for. Whatever stops a recording (an error, Ctrl-C) deletes its partial file.
        CaptureRefused: a recording where most framesets show no face the aligner accepts (it is
            deleted: training and calibration would count it as a few framesets, not as the
            presentation it was meant to be).
    """
    from .sensors.recorder import record

    check_labels(subject, species, instrument)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames: expected an int ≥ 1, got {frames!r}")
    folder = Path(folder)
    (folder / RECORDINGS).mkdir(parents=True, exist_ok=True)
    path = _claim_next_file(folder, subject, species, instrument)
    first: Dict[str, Any] = {}

    def keep_first(items: Iterable[FrameSet]) -> Iterable[FrameSet]:
        for frameset in items:
            first.setdefault("frameset", frameset)
            if frameset.origin != first["frameset"].origin or frameset.origin not in COLLECTED_ORIGINS:
                raise ValueError(f"collect records from a live camera (or the synthetic camera, labelled), got a "
                                 f"frameset of origin {frameset.origin!r}: a replayed recording or image folder would "
                                 "file an old capture as a new presentation")
            yield frameset

    source = keep_first(itertools.islice(framesets, frames))
    try:
        written = record(progress(source) if progress is not None else source, path)
        if written < frames:
            raise ValueError(f"the source gave {written} framesets, {frames} were asked for; nothing was kept")
    except BaseException:
        path.unlink(missing_ok=True)  # a partial recording of a person is never left behind
        raise
    sample = first["frameset"]
    capture = Capture(file=str(path.relative_to(folder)), sha256=file_sha256(path), subject=subject, species=species,
                      instrument=instrument, camera_serial=sample.serial,
                      camera_firmware=str(sample.metadata.get("firmware", "")), frames=written,
                      time=datetime.now(timezone.utc).isoformat(timespec="seconds"), sdk_version=__version__,
                      origin=sample.origin)
    existing = _read_rows(folder) if (folder / MANIFEST).is_file() else []
    try:
        _check_unique(folder / MANIFEST, [*existing, (len(existing) + 1, capture)])
    except ValueError:
        path.unlink()
        raise
    faces = len(capture_crops(folder, capture).images)  # cached: training and calibration read these crops
    if 2 * faces < written:
        _delete_capture(folder, capture)
        raise CaptureRefused(f"{capture.file}: {written - faces} of {written} framesets show no face the aligner "
                             f"accepts (out of view, too far, too dark or blurred); it was deleted and nothing was "
                             f"added to the manifest: check the presentation and collect {subject} {species} again")
    with (folder / MANIFEST).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(capture)) + "\n")
    return capture


def collect_synthetic(folder: PathLike, subjects: int, frames: int = 30) -> List[Capture]:
    """A collection staged on the synthetic camera, to try the whole loop before anyone sits down.

    Subjects S001, S002, ... each present themselves and one instrument of every attack species of
    their own (print-01, replay-01 and mask-01 for S001; see ``synthetic.presentation``). A capture
    ``collect`` refuses (most framesets without a face: the face detector misses some subjects'
    prints and replays) is left out with a warning, as a deployer would leave out a failed take.

    Returns:
        The manifest rows written, in order.
    """
    from .sensors import open_source
    from .sensors.synthetic import ATTACK_KINDS, presentation

    captures = []
    for n in range(1, subjects + 1):
        subject = f"S{n:03d}"
        for species, instrument in [("bona_fide", "")] + [(kind, f"{kind}-{n:02d}") for kind in ATTACK_KINDS]:
            with open_source("synthetic", **presentation(subject, species, instrument, frames)) as camera:
                try:
                    captures.append(collect(camera, folder, subject, species, instrument, frames))
                except CaptureRefused as exc:
                    logger.warning("left out: %s", exc)
    return captures


def _delete_capture(folder: Path, capture: Capture) -> None:
    """A recording and its cached crops."""
    for cached in (folder / CACHE).glob(f"{capture.sha256}-*.npz"):
        cached.unlink()
    (folder / capture.file).unlink(missing_ok=True)


def forget_subject(folder: PathLike, subject: str) -> int:
    """Delete one subject's recordings, their cached crops and their manifest rows; returns how many recordings.

    Recordings in ``recordings/`` that no manifest row lists and whose name starts with the
    subject's id (left by a crash mid-recording) go too. The splits are deleted as well (they name
    the subject); the next run draws them again. An interrupted run can simply be run again.

    Raises:
        ValueError: the collection holds nothing of this subject (a mistyped id must not pass for
            a deletion).
    """
    folder = Path(folder)
    check_id("subject", subject)
    captures = [capture for _, capture in _read_rows(folder)]
    gone = [c for c in captures if c.subject == subject]
    kept = [c for c in captures if c.subject != subject]
    listed = {c.file for c in captures}
    orphans = [p for p in (folder / RECORDINGS).glob(f"{subject}_*.db3") if f"{RECORDINGS}/{p.name}" not in listed]
    if not gone and not orphans:
        known = sorted({c.subject for c in captures})
        raise ValueError(f"subject {subject!r}: no recordings of it in {folder} (its subjects: "
                         f"{', '.join(known) or 'none'}); nothing was deleted")
    for capture in gone:
        for cached in (folder / CACHE).glob(f"{capture.sha256}-*.npz"):
            cached.unlink()
    (folder / SPLITS).unlink(missing_ok=True)
    _replace_text(folder / MANIFEST, "".join(json.dumps(asdict(c)) + "\n" for c in kept))
    for capture in gone:
        (folder / capture.file).unlink(missing_ok=True)
    for orphan in orphans:
        orphan.unlink()
    return len(gone)


@dataclass(frozen=True)
class Splits:
    """Which subjects and attack instruments (with the captures they allow) train, validate and test."""

    seed: int
    subjects: Dict[str, List[str]]
    instruments: Dict[str, List[str]]  # instrument ids
    captures: Dict[str, List[str]]  # split → capture files

    def of(self, captures: Sequence[Capture], split: str) -> List[Capture]:
        """The captures of one split, in manifest order."""
        files = set(self.captures[split])
        return [c for c in captures if c.file in files]

    def format_table(self) -> str:
        lines = [f"splits (seed {self.seed}): subject- and instrument-disjoint"]
        for split in SPLIT_NAMES:
            lines.append(f"  {split:<5} {len(self.captures[split]):>3} recordings; subjects "
                         f"{', '.join(self.subjects[split]) or '-'}; instruments {', '.join(self.instruments[split]) or '-'}")
        return "\n".join(lines)


def tied_groups(captures: Sequence[Capture]) -> List[Tuple[List[str], Dict[str, List[str]]]]:
    """The connected components of the subject–instrument graph: subjects joined by an attack
    instrument (one id, one physical artefact) shown by both, directly or through others.

    Returns:
        Per group, in order of its first subject: its subjects, and each instrument that ties two or
        more of them with the subjects that showed it.
    """
    parent = {c.subject: c.subject for c in captures}

    def root(subject: str) -> str:
        while parent[subject] != subject:
            parent[subject] = parent[parent[subject]]
            subject = parent[subject]
        return subject

    shown: Dict[str, List[str]] = {}
    for c in captures:
        if c.is_attack:
            shown.setdefault(c.instrument, [])
            if c.subject not in shown[c.instrument]:
                shown[c.instrument].append(c.subject)
    for subjects in shown.values():
        for other in subjects[1:]:
            parent[root(other)] = root(subjects[0])
    groups: Dict[str, List[str]] = {}
    for subject in sorted(parent):
        groups.setdefault(root(subject), []).append(subject)
    return [(members, {key: sorted(by) for key, by in sorted(shown.items()) if len(by) > 1 and by[0] in members})
            for members in groups.values()]


def split_collection(captures: Sequence[Capture], seed: int = 0,
                     fractions: Tuple[float, float, float] = (0.6, 0.2, 0.2)) -> Splits:
    """Subject- and instrument-disjoint train/val/test splits, seeded.

    Subjects who showed one instrument (a site has a few phones and masks, not one per subject)
    must share a split, so the splits are dealt whole groups: the connected components of the
    subject–instrument graph (``tied_groups``), shuffled by the seed, to validation and test until
    each holds its fraction of the subjects (at least one group each), the rest to training. Every
    recording then has its subject and instrument in one split; none is left out.

    Raises:
        ValueError: fewer than three groups (the message names which instruments tie which
            subjects), or a split without bona fide or attack captures.
    """
    groups = tied_groups(captures)
    if len({c.subject for c in captures}) < 3:
        raise ValueError(f"splits: {len({c.subject for c in captures})} subjects; at least 3 are needed (train, "
                         "validation, test)")
    if len(groups) < 3:
        ties = "; ".join(f"{key} ties {', '.join(by)}" for _, tying in groups for key, by in tying.items())
        raise ValueError(f"splits: subjects who showed one instrument must share a split, which leaves "
                         f"{len(groups)} group(s) of subjects for three splits ({ties}): record each of these "
                         "subjects with instruments of their own, or collect more subjects")
    rng = np.random.default_rng(seed)
    order = [groups[i] for i in rng.permutation(len(groups))]
    total = sum(len(members) for members, _ in groups)
    subject_split: Dict[str, str] = {}
    for split, fraction in (("val", fractions[1]), ("test", fractions[2])):
        wanted, taken = max(1, int(round(fraction * total))), 0
        while taken < wanted and len(order) > (1 if split == "test" else 2):  # a group left for each later split
            members, _ = order.pop(0)
            subject_split.update((subject, split) for subject in members)
            taken += len(members)
    subject_split.update((subject, "train") for members, _ in order for subject in members)
    by_split: Dict[str, List[str]] = {s: [] for s in SPLIT_NAMES}
    for c in captures:
        by_split[subject_split[c.subject]].append(c.file)
    instruments = {c.instrument: subject_split[c.subject] for c in captures if c.is_attack}
    splits = Splits(seed, {s: sorted(k for k, v in subject_split.items() if v == s) for s in SPLIT_NAMES},
                    {s: sorted(k for k, v in instruments.items() if v == s) for s in SPLIT_NAMES}, by_split)
    for split in SPLIT_NAMES:
        kinds = {c.label for c in splits.of(captures, split)}
        if kinds != {"live", "attack"}:
            raise ValueError(f"splits: the {split} split has {sorted(kinds) or 'no'} captures; it needs bona fide and "
                             "attack recordings: collect more subjects, or attacks by more subjects")
    return splits


def write_splits(folder: PathLike, splits: Splits) -> Path:
    """``splits.json`` next to the manifest."""
    path = Path(folder) / SPLITS
    path.write_text(json.dumps(asdict(splits), indent=2) + "\n", encoding="utf-8")
    return path


def load_or_split(folder: PathLike, captures: Sequence[Capture], seed: int = 0) -> Splits:
    """The collection's splits: ``splits.json`` when it was drawn with this seed from these captures, else drawn anew."""
    path = Path(folder) / SPLITS
    files = {c.file for c in captures}
    if path.is_file():
        try:
            stored = Splits(**json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError, RecursionError) as exc:
            raise ValueError(f"{path}: not a splits file ({exc}); delete it to draw the splits again") from exc
        listed = {f for split in stored.captures.values() for f in split}
        if stored.seed == seed and listed == files:
            return stored
    splits = split_collection(captures, seed)
    write_splits(folder, splits)
    return splits


def splits_for_model(folder: PathLike, captures: Sequence[Capture], provenance: Dict[str, Any],
                     split_seed: Optional[int] = None) -> Splits:
    """The splits to calibrate and test a model on, refused where they would reuse its training data.

    A model fine-tuned on a collection records the subjects and instruments it trained and
    validated on (``provenance``); by default its own split seed is used again. Any other seed, or
    a collection grown since, may deal those subjects into validation or test: that is refused,
    not reported as held-out.

    Raises:
        ValueError: the splits put a subject or instrument the model trained on into validation or
            test, or one it was validated on into test.
    """
    seen = provenance.get("subjects_seen")
    if split_seed is None:
        split_seed = int(provenance.get("split_seed", 0)) if seen else 0
    splits = load_or_split(folder, captures, split_seed)
    if not seen:
        return splits
    later = {"train": ("val", "test"), "val": ("test",)}
    for split, held_out in later.items():
        used = set(seen[split]) | set(provenance["instruments_seen"][split])
        reused = sorted(used & {i for h in held_out for i in splits.subjects[h] + splits.instruments[h]})
        if reused:
            raise ValueError(f"split seed {split_seed} puts {', '.join(reused)}, which the model saw in its {split} split, "
                             f"into {' or '.join(held_out)}: use the seed it was fine-tuned with "
                             f"({provenance.get('split_seed')}) on the same collection, or fine-tune again")
    return splits


@dataclass(frozen=True)
class CaptureCrops:
    """The encoded face crops of one recording (``preprocess.encode_images``), one row per frameset
    with a face; ``framesets`` counts them all (the others got no crop: non-responses)."""

    images: np.ndarray
    mask: np.ndarray
    framesets: int


def crop_cache_key(align_config: Any, preprocess: Any) -> str:
    """What the crops depend on besides the file: the aligner's settings and the crop encoding."""
    settings = json.dumps({"align": asdict(align_config), "preprocess": preprocess.to_dict()}, sort_keys=True,
                          default=str)
    return hashlib.sha256(settings.encode()).hexdigest()[:16]


def capture_crops(folder: PathLike, capture: Capture, align_config: Any = None, preprocess: Any = None) -> CaptureCrops:
    """The recording's face crops: from ``cache/`` when this file was cropped with these settings, else
    through the aligner and the encoder (and then cached). Logs which."""
    from .align import AlignConfig, FaceAligner
    from .preprocess import PreprocessConfig, encode_images
    from .sensors import open_source

    align_config = align_config if align_config is not None else AlignConfig()
    preprocess = preprocess if preprocess is not None else PreprocessConfig()
    folder = Path(folder)
    cached = folder / CACHE / f"{capture.sha256}-{crop_cache_key(align_config, preprocess)}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as data:
                crops = CaptureCrops(data["images"], data["mask"], int(data["framesets"]))
            logger.info("crop cache hit: %s", capture.file)
            return crops
        except Exception as exc:  # a damaged cache file is rebuilt, never trusted
            logger.warning("crop cache file %s unreadable (%s): aligning %s again", cached, exc, capture.file)
    logger.info("crop cache miss: aligning %s", capture.file)
    aligner = FaceAligner(align_config)
    images, masks, framesets = [], [], 0
    with open_source(str(folder / capture.file)) as frames:
        for frameset in frames:
            framesets += 1
            result = aligner.align(frameset)
            if result.status == "ok" and result.crops.quality.passed:
                encoded, mask = encode_images([result.crops], preprocess)
                images.append(encoded[0])
                masks.append(mask[0])
    crops = CaptureCrops(np.stack(images) if images else np.zeros((0, 3, 224, 224, 3), np.uint8),
                         np.stack(masks) if masks else np.zeros((0, 3), bool), framesets)
    cached.parent.mkdir(exist_ok=True)
    partial = cached.with_name(cached.stem + ".partial.npz")
    np.savez(partial, images=crops.images, mask=crops.mask, framesets=crops.framesets)
    os.replace(partial, cached)  # an interrupted save leaves no half-written cache file
    return crops
