"""`restoration-nb restore` on the photos people have: a known transform recovered, several faces, faces too
small, EXIF rotation, CMYK, 16-bit, grayscale, a 6000 px photo, and the reports that say what happened."""

import json
import numpy as np
import pytest
import torch
from PIL import Image
from conftest import run_cli

pytest.importorskip("dlib")
from restoration_nb.core import ALBUMS_DIR, face_data_dir, load_faces, read_image  # noqa: E402

# noqa: E402
from restoration_nb.faces import align_face, detect_faces, five_points, transform_points, warp_image

torch.set_num_threads(1)
FAST = ("--method", "flipnet", "--num-steps", "1", "--quiet")  # the pipeline is under test, not the restorer
EYES = [0, 1, 2, 3]  # the eye corners among the five alignment points


def album_photo(person: str = "obama", name: str = "i1") -> Image.Image:
    "One 256 px album photo."
    return Image.open(face_data_dir() / ALBUMS_DIR / person / "lq" / f"{name}.png").convert("RGB")


def canvas_transform(scale: float, degrees: float, offset) -> np.ndarray:
    "The 2x3 similarity taking chip pixels to canvas pixels: scale and rotate about the origin, then shift."
    c, s = np.cos(np.radians(degrees)) * scale, np.sin(np.radians(degrees)) * scale
    return np.array([[c, -s, offset[0]], [s, c, offset[1]]])


@pytest.mark.parametrize(
    "scale,degrees,offset", [(3.0, 0.0, (100, 60)), (2.5, 20.0, (260, 40)), (4.0, -25.0, (60, 200))]
)
def test_a_known_transform_is_recovered_at_the_eyes(scale, degrees, offset):
    """A held-out chip placed on a grey canvas by a known similarity: aligned from the canvas, its eyes land
    where aligning the chip itself puts them, within 1.5 px of the 64 px crop."""
    misses = []
    for chip in load_faces(4, split="heldout", start=40):
        chip = chip[None]
        faces = detect_faces(chip)
        if not faces:
            continue
        placed = canvas_transform(scale, degrees, offset)
        canvas = warp_image(chip, placed, (480, 560), padding="zeros").clamp(
            -1, 1
        )  # grey (0) around the chip
        found = detect_faces(canvas)
        assert len(found) == 1, f"{len(found)} faces on the canvas"
        _, from_chip = align_face(chip, faces[0])
        _, from_canvas = align_face(canvas, found[0])
        eyes = five_points(faces[0].landmarks)[EYES]
        expected = transform_points(from_chip, eyes)
        recovered = transform_points(from_canvas, transform_points(placed, eyes))
        misses.append(float(np.abs(recovered - expected).max()))
    assert len(misses) >= 3, "dlib found too few of the chips"
    assert max(misses) <= 1.5, misses


def test_many_faces_all_restored_or_only_the_centre(tmp_path):
    "Two people side by side: both restored, or with --only-center-face the one nearer the centre."
    canvas = Image.new("RGB", (640, 300), (40, 40, 40))
    canvas.paste(album_photo("obama", "i1"), (20, 20))
    canvas.paste(album_photo("obama", "i2"), (300, 30))
    canvas.save(tmp_path / "two.png")
    assert run_cli("restore", tmp_path / "two.png", "-o", tmp_path / "all", *FAST).returncode == 0
    report = json.loads((tmp_path / "all" / "two.json").read_text())
    assert (len(report["faces"]), report["skipped"]) == (2, [])
    r = run_cli("restore", tmp_path / "two.png", "-o", tmp_path / "centre", "--only-center-face", *FAST)
    report = json.loads((tmp_path / "centre" / "two.json").read_text())
    assert r.returncode == 0 and (len(report["faces"]), len(report["skipped"])) == (1, 1)
    assert report["faces"][0]["box"][0] > 300 and "centre" in report["skipped"][0]["reason"], report


def test_a_face_too_small_is_skipped_and_said_so(tmp_path):
    "A face narrower than --min-face: nothing written but its report, exit status 1, the reason on stderr."
    album_photo().save(tmp_path / "face.png")
    r = run_cli("restore", tmp_path / "face.png", "-o", tmp_path / "out", "--min-face", "400", *FAST)
    assert r.returncode == 1, r.stderr
    report = json.loads((tmp_path / "out" / "face.json").read_text())
    assert (
        report["output"] is None
        and report["faces"] == []
        and "smaller than min_face=400" in report["skipped"][0]["reason"]
    )
    assert "no face restored in 1 photo(s)" in r.stderr and "face.png: all 1 faces were skipped" in r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["face.json", "restore.json"]


def _exif_rotated(path):
    "The album photo stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to view)."
    img = album_photo().crop((0, 0, 256, 200)).transpose(Image.Transpose.ROTATE_90)  # 200 wide, 256 high
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, exif=exif.tobytes(), quality=95)


def _sixteen_bit(path):
    "A 16-bit grayscale PNG."
    grey = np.asarray(album_photo().convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(path)


PHOTOS = {
    "exif.jpg": _exif_rotated,
    "cmyk.jpg": lambda p: album_photo().convert("CMYK").save(p, quality=95),
    "grey16.png": _sixteen_bit,
    "grey.png": lambda p: album_photo().convert("L").save(p),
    "big.jpg": lambda p: album_photo().resize((6000, 4500), Image.BICUBIC).save(p, quality=90),
}


@pytest.mark.parametrize("name", list(PHOTOS))
def test_photos_as_people_have_them(tmp_path, name):
    """EXIF-rotated, CMYK, 16-bit, grayscale and 6000 px photos: one face each, the photo written upright,
    full size."""
    PHOTOS[name](tmp_path / name)
    r = run_cli("restore", tmp_path / name, "-o", tmp_path / "out", *FAST)
    assert r.returncode == 0, r.stderr
    stem = name.split(".")[0]
    report = json.loads((tmp_path / "out" / f"{stem}.json").read_text())
    assert len(report["faces"]) == 1, report
    upright = read_image(tmp_path / name, square="keep")
    assert (report["width"], report["height"]) == (upright.shape[-1], upright.shape[-2])
    with Image.open(tmp_path / "out" / f"{stem}.png") as out:
        assert out.size == (upright.shape[-1], upright.shape[-2])
    if name == "exif.jpg":
        assert (report["width"], report["height"]) == (256, 200)  # turned upright
    left, top, right, bottom = report["faces"][0]["box"]
    assert right - left > 0.3 * report["width"], report["faces"][0]["box"]  # the face, not a speck


def test_references_of_another_size_are_aligned_like_the_inputs(tmp_path):
    "InstantRestore's references at 256 px and the input at 200 px: both aligned to the same 64 px framing."
    (tmp_path / "refs").mkdir()
    for name in ("o1", "o2"):
        Image.open(face_data_dir() / ALBUMS_DIR / "obama" / "refs" / f"{name}.png").save(
            tmp_path / "refs" / f"{name}.png"
        )
    album_photo().resize((200, 200), Image.LANCZOS).save(tmp_path / "small.png")
    r = run_cli(
        "restore",
        tmp_path / "small.png",
        "-o",
        tmp_path / "out",
        "--method",
        "instant",
        "--refs",
        tmp_path / "refs",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "out" / "restore.json").read_text())["knobs"]["references"] == 2
