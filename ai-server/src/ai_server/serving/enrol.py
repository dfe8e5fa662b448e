"""Enrolment: photos -> faces the gallery stores, for the API and for bulk work from the command line
(enrol a folder of people, re-embed with a new model).

The command-line tools write to the same gallery the server reads (SQLite or PostgreSQL), so they can
run while it serves: running workers pick the changes up before their next search.
"""

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .errors import ServiceError
from .gallery import Gallery, NewFace
from .pipeline.engine import Engine, Photo

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
SOURCE_KEY = "enrolled_from"  # metadata key that makes a folder enrolment resumable


def new_faces(engine: Engine, photos: list[Photo]) -> list[NewFace]:
    """Photos with a face -> what the gallery stores of each: crop, thumbnail, a vector per space."""
    vectors = engine.vectors_many([p.aligned for p in photos]) if photos else []
    faces = []
    for photo, vector in zip(photos, vectors, strict=True):
        described = photo.describe()
        faces.append(
            NewFace(photo.aligned, photo.thumbnail(), vector.by_space, described["box"], described["score"])
        )
    return faces


def _people(folder: Path, only: set[str] | None) -> Iterator[tuple[str, list[Path]]]:
    for person in sorted(p for p in folder.iterdir() if p.is_dir() and (only is None or p.name in only)):
        images = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            yield person.name, images


def _enrolled_sources(gallery: Gallery) -> set[str]:
    """The subfolders persons were enrolled from already (every page of the gallery)."""
    done, offset = set(), 0
    while True:
        page, total = gallery.list_persons(offset, 500)
        done.update(p["metadata"].get(SOURCE_KEY) for p in page)
        offset += len(page)
        if offset >= total or not page:
            return done


def enrol_folder(
    engine: Engine,
    gallery: Gallery,
    folder: Path,
    aligned: bool = False,
    max_bytes: int = 10 * 1024 * 1024,
    max_pixels: int = 40_000_000,
    limit_per_person: int | None = None,
    only: set[str] | None = None,
) -> dict:
    """Enrol `<folder>/<person>/<images>`: one person per subfolder (or those in `only`), every image
    with a face.

    A person already enrolled from the same subfolder is skipped, so an interrupted run can simply be
    started again. Returns counts and the images skipped (no face, unreadable).
    """
    folder = folder.resolve()
    done = _enrolled_sources(gallery)
    report = {"persons": 0, "faces": 0, "already_enrolled": 0, "skipped": []}
    for name, images in tqdm(list(_people(folder, only)), desc="enrolling", unit="person"):
        source = str(folder / name)
        if source in done:
            report["already_enrolled"] += 1
            continue
        photos = []
        for path in images[:limit_per_person]:
            try:
                photos.append(engine.photo(path.read_bytes(), max_bytes, max_pixels, aligned))
            except ServiceError as err:
                report["skipped"].append({"image": str(path), **err.as_dict()})
        if photos:
            faces = new_faces(engine, photos)
            gallery.add_person(name, {SOURCE_KEY: source}, faces)
            report["persons"] += 1
            report["faces"] += len(faces)
    return report


def reembed(engine: Engine, gallery: Gallery, batch_size: int = 32) -> dict[str, int]:
    """Compute the served model's vectors for every face that lacks them, from the stored aligned crops
    (the photos themselves are not kept, and need not be: alignment does not depend on the model)."""
    missing = {space: gallery.faces_missing(space) for space in engine.spaces}
    crops = {fid: token for tokens in missing.values() for fid, token in tokens.items()}
    todo = sorted(crops)
    for start in tqdm(range(0, len(todo), batch_size), desc="re-embedding", unit="batch"):
        chunk = todo[start : start + batch_size]  # crops are read per batch: all would not fit in memory
        images = [Image.open(io.BytesIO(gallery.crop(crops[f]))).convert("RGB") for f in chunk]
        vectors = engine.vectors_many([np.asarray(image) for image in images])
        for space, paths in missing.items():
            found = {f: v.by_space[space] for f, v in zip(chunk, vectors, strict=True) if f in paths}
            if found:
                gallery.set_vectors(space, found)
    return {space: len(paths) for space, paths in missing.items()}
