"""The face pipeline on real album photos: align + paste round trips, and what faces.py may import."""

import ast
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT

pytest.importorskip("dlib")
from restoration_nb.core import ALBUMS_DIR, album_people, face_data_dir, read_image
from restoration_nb.faces import align_face, detect_faces, paste_face, restore_photo
from restoration_nb.metrics import psnr

torch.set_num_threads(1)
PAPER_MODULES = {
    "gen2res",
    "gen2res_experiments",
    "flipnet",
    "flipnet_experiments",
    "instant_restore",
    "instant_restore_experiments",
    "restoration_adapter",
    "restoration_adapter_experiments",
    "priors",
}


def album_photos(n_people: int = 3) -> list[Path]:
    "The first low-quality photo of each of the first `n_people` albums."
    root = face_data_dir() / ALBUMS_DIR
    return [sorted((root / person / "lq").glob("*.png"))[0] for person in album_people()[:n_people]]


@pytest.mark.parametrize("path", album_photos(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_align_paste_round_trip(path):
    "Pasting the aligned crop back unchanged: close inside the face, bit-identical away from it."
    photo = read_image(path)
    faces = detect_faces(photo)
    assert faces, f"no face found in {path}"
    crop, matrix = align_face(photo, faces[0])
    back = paste_face(photo, crop, matrix)
    left, top, right, bottom = (round(v) for v in faces[0].box)
    w, h = right - left, bottom - top
    inner = (..., slice(top + h // 4, bottom - h // 4), slice(left + w // 4, right - w // 4))
    assert float(psnr(back[inner], photo[inner])) > 24
    changed = (back != photo).any(1)[0]
    ys, xs = changed.nonzero().T
    margin = max(w, h)  # the crop's square reaches about half a face beyond the box
    assert xs.min() >= left - margin and xs.max() <= right + margin
    assert ys.min() >= top - margin and ys.max() <= bottom + margin
    torch.testing.assert_close(paste_face(photo, crop, matrix, detail=1.0), photo, atol=1e-4, rtol=0)


def test_upscale_keeps_the_bicubic_background():
    "With upscale=2 the pixels far from the face are the plain bicubic enlargement of the photo."
    photo = read_image(album_photos(1)[0])
    result = restore_photo(photo, lambda x: x, upscale=2)
    enlarged = F.interpolate(photo, scale_factor=2, mode="bicubic", align_corners=False).clamp(-1, 1)
    same = (result.image == enlarged).all(1)[0]
    assert result.image.shape == (1, 3, 512, 512) and len(result.faces) == 1
    assert same[:8].all() and same[:, :8].all()  # the top rows and the left columns hold no face
    assert not same.all()  # the face was pasted


def test_faces_imports_only_the_floor():
    "faces.py may use core and metrics, never a paper module or the priors."
    tree = ast.parse((ROOT / "restoration_nb" / "faces.py").read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names = {part for module in imported for part in module.split(".")}
    assert not names & PAPER_MODULES, sorted(names & PAPER_MODULES)
