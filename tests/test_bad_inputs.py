"""Bad input gets a clear, specific message that names the value and what was expected.
Each case calls `restoration_nb.cli.main`, the function the console script runs, in this process (an import of
torch per case would cost more than the case) and asserts exit status 2, the message on stderr and no
traceback; a few cases, and the tests after them, run the real console script to show the process exits the
same way."""

import hashlib, json, os, shutil, struct, zlib
import pytest
import torch
from PIL import Image
from conftest import ROOT, run_cli
from restoration_nb.cli import main
from restoration_nb.training import WEIGHTS_DIR


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    "A folder of awkward inputs."
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.png").write_text("this is not a picture")
    Image.new("RGB", (80, 64), (120, 90, 60)).save(d / "wide.png")
    Image.new("RGB", (8, 8), (120, 90, 60)).save(d / "tiny.png")
    Image.new("RGB", (64, 64), (120, 90, 60)).save(d / "ok.png")
    Image.new("RGB", (128, 128), (120, 90, 60)).save(d / "big.png")
    good = (d / "ok.png").read_bytes()
    (d / "truncated.png").write_bytes(good[: len(good) // 2])
    (d / "empty").mkdir()
    (d / "a").mkdir()
    (d / "b").mkdir()
    Image.new("RGB", (64, 64)).save(d / "a" / "x.png")
    Image.new("RGB", (64, 64)).save(d / "b" / "x.png")
    (d / "bad.ini").write_text("[restoration_nb]\nK = lots\n")
    (d / "headless.ini").write_text("K = 300\n")
    (d / "twice.ini").write_text("[restoration_nb]\nK = 300\nK = 400\n")
    (d / "a_file").write_text("not a folder")
    (d / "loop1").symlink_to(d / "loop2")
    (d / "loop2").symlink_to(d / "loop1")
    (d / "dangling.png").symlink_to(d / "gone.png")
    for sub, text in (("unet/config.json", "{not json"), ("scheduler/scheduler_config.json", "{}")):
        (d / "bad_config_prior" / sub).parent.mkdir(parents=True, exist_ok=True)
        (d / "bad_config_prior" / sub).write_text(text)
    shutil.copytree(WEIGHTS_DIR / "micro-sd-faces64", d / "mislabelled_prior")
    config = d / "mislabelled_prior" / "scheduler" / "scheduler_config.json"
    config.write_text(config.read_text().replace('"v_prediction"', '"sample"'))
    (d / "pickle_prior" / "unet").mkdir(parents=True)
    (d / "pickle_prior" / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    torch.save({}, d / "pickle_prior" / "unet" / "diffusion_pytorch_model.bin")
    for side in (9000, 14000):  # only the header: a reader that trusts it allocates the whole image
        (d / f"huge{side}.png").write_bytes(png_header(side, side))
    (d / "spec_missing_nb.json").write_text(
        json.dumps({"notebook": str(d / "nope.ipynb"), "grid": {"sigma": [1]}})
    )
    example = ROOT / "nbs" / "examples" / "degradation_sweep.ipynb"
    (d / "spec_bad_key.json").write_text(json.dumps({"notebook": str(example), "grid": {"sigmaa": [1]}}))
    (d / "spec_list.json").write_text("[1, 2]")
    crafted = dict(log=RunsCode(d / "code ran"))
    for run, state in (
        ("crafted", crafted),
        ("craftedrun/personal", crafted),
        ("foreign", dict(weights=torch.zeros(2))),
    ):
        (d / run).mkdir(parents=True)
        torch.save(state, d / run / "checkpoint.pt")
    (d / "emptyck").mkdir()
    (d / "emptyck" / "checkpoint.pt").write_bytes(b"")
    return d


def png_header(width: int, height: int) -> bytes:
    """The first bytes of an 8-bit grayscale PNG of `width` x `height` px: enough for a reader to learn its
    size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


class RunsCode:
    "An object whose pickle runs a shell command (makes `marker`) when it is loaded the unsafe way."

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


CASES = [
    # (id, argv (paths relative to the `bad` folder are marked with {d}), env, expected message)
    ("missing-input", ["degrade", "{d}/missing.png", "-o", "{d}/out1"], None, "input not found: '"),
    (
        "not-an-image",
        ["degrade", "{d}/notes.png", "-o", "{d}/out2"],
        None,
        "is not an image that can be read",
    ),
    (
        "truncated-image",
        ["degrade", "{d}/truncated.png", "-o", "{d}/out3"],
        None,
        "is not an image that can be read",
    ),
    (
        "non-square",
        ["degrade", "{d}/wide.png", "-o", "{d}/out4"],
        None,
        "is 80x64 px, not square; pass square='center_crop', 'pad' or 'resize' (--square",
    ),
    ("too-small", ["degrade", "{d}/tiny.png", "-o", "{d}/out5"], None, "is 8x8 px; at least 16 px"),
    ("empty-folder", ["degrade", "{d}/empty", "-o", "{d}/out6"], None, "holds no image files"),
    (
        "same-output-twice",
        ["degrade", "{d}/a/x.png", "{d}/b/x.png", "-o", "{d}/out7"],
        None,
        "would both write",
    ),
    (
        "output-is-input",
        ["degrade", "{d}/ok.png", "-o", "{d}", "--overwrite"],
        None,
        "never writes over an input",
    ),
    (
        "pair-count",
        ["evaluate", "--restored", "{d}/ok.png", "{d}/a/x.png", "--reference", "{d}/ok.png"],
        None,
        "2 restored image(s) but 1 reference(s)",
    ),
    (
        "reference-of-another-size",
        ["evaluate", "--restored", "{d}/ok.png", "--reference", "{d}/big.png"],
        None,
        "the restored images are 64x64 px but the references 128x128 px; pass --size N to resize both",
    ),
    (
        "table-suffix",
        ["evaluate", "--restored", "{d}/ok.png", "--reference", "{d}/ok.png", "-o", "{d}/t.txt"],
        None,
        "must end in .csv or .json",
    ),
    pytest.param(
        "no-cuda",
        ["demo", "-o", "{d}/demo1", "--device", "cuda"],
        None,
        "no CUDA GPU is available",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU"),
    ),
    (
        "bad-device",
        ["degrade", "{d}/ok.png", "-o", "{d}/out8", "--device", "gpu"],
        None,
        "device 'gpu' is not a torch device",
    ),
    (
        "bad-settings-value",
        ["degrade", "{d}/ok.png", "-o", "{d}/out9"],
        {"RESTORATION_NB_SETTINGS": "{d}/bad.ini"},
        "K = 'lots' is not a valid int",
    ),
    (
        "settings-without-section",
        ["degrade", "{d}/ok.png", "-o", "{d}/out16"],
        {"RESTORATION_NB_SETTINGS": "{d}/headless.ini"},
        "headless.ini' cannot be read as a settings file: File contains no section headers; expected a "
        "[restoration_nb] section",
    ),
    (
        "settings-duplicate-key",
        ["degrade", "{d}/ok.png", "-o", "{d}/out17"],
        {"RESTORATION_NB_SETTINGS": "{d}/twice.ini"},
        "twice.ini' cannot be read as a settings file: While reading from",
    ),
    (
        "image-over-the-pixel-cap",
        ["degrade", "{d}/huge9000.png", "-o", "{d}/out18"],
        None,
        (
            "huge9000.png' is 9000x9000 px; at most 40,000,000 pixels are read "
            "(max_image_pixels in settings.ini)"
        ),
    ),
    (
        "decompression-bomb",
        ["degrade", "{d}/huge14000.png", "-o", "{d}/out19"],
        None,
        "huge14000.png' is larger than PIL will open; at most 40,000,000 pixels are read",
    ),
    (
        "output-is-a-file",
        ["degrade", "{d}/ok.png", "-o", "{d}/a_file"],
        None,
        "output '{d}/a_file' is a file; expected a folder to write into",
    ),
    (
        "restore-output-is-a-file",
        ["restore", "{d}/ok.png", "-o", "{d}/a_file", "--has-aligned", "--recipe", "none"],
        None,
        "output '{d}/a_file' is a file; expected a folder",
    ),
    (
        "symlink-loop",
        ["degrade", "{d}/loop1", "-o", "{d}/out20"],
        None,
        "input '{d}/loop1' is a symbolic link loop",
    ),
    (
        "dangling-symlink",
        ["degrade", "{d}/dangling.png", "-o", "{d}/out21"],
        None,
        "input '{d}/dangling.png' is a symbolic link to '{d}/gone.png', which does not exist",
    ),
    (
        "malformed-prior-config",
        ["sample", "-o", "{d}/s9", "--prior", "{d}/bad_config_prior"],
        None,
        "'{d}/bad_config_prior/unet/config.json' is not valid JSON (Expecting property name",
    ),
    (
        "mislabelled-prediction-type",
        ["sample", "-o", "{d}/s12", "--prior", "{d}/mislabelled_prior"],
        None,
        "scheduler_config.json' says prediction_type='sample', but '{d}/mislabelled_prior/training.json' "
        "says the UNet "
        "was trained to predict 'v_prediction'; expected the two to agree",
    ),
    (
        "pickled-prior-weights",
        ["sample", "-o", "{d}/s10", "--prior", "{d}/pickle_prior"],
        None,
        "/pickle_prior/unet' holds no .safetensors weights; restoration-nb loads weights only from "
        "safetensors",
    ),
    (
        "missing-settings-file",
        ["degrade", "{d}/ok.png", "-o", "{d}/out10"],
        {"RESTORATION_NB_SETTINGS": "{d}/none.ini"},
        "is not a file; point it at a settings.ini",
    ),
    (
        "too-many-faces",
        ["demo", "-o", "{d}/demo2", "--n", "5000"],
        None,
        "--n 5000; expected 1 to 64, the quality protocol's faces",
    ),
    ("sweep-spec-missing", ["sweep", "{d}/no_spec.json"], None, "sweep spec not found: '"),
    (
        "sweep-notebook-missing",
        ["sweep", "{d}/spec_missing_nb.json", "-o", "{d}/sw1"],
        None,
        "notebook not found: '",
    ),
    (
        "sweep-unknown-parameter",
        ["sweep", "{d}/spec_bad_key.json", "-o", "{d}/sw2"],
        None,
        "['sigmaa'] are not parameters of",
    ),
    (
        "sweep-spec-not-a-mapping",
        ["sweep", "{d}/spec_list.json", "-o", "{d}/sw3"],
        None,
        "must be a mapping with keys",
    ),
    (
        "jpeg-quality",
        ["degrade", "{d}/ok.png", "-o", "{d}/out11", "--quality", "150"],
        None,
        "quality must be in 1..100 (JPEG quality, IJG scale), got 150",
    ),
    (
        "negative-sigma",
        ["degrade", "{d}/ok.png", "-o", "{d}/out12", "--sigma", "-1"],
        None,
        "sigma must be > 0",
    ),
    (
        "negative-noise",
        ["degrade", "{d}/ok.png", "-o", "{d}/out13", "--noise", "-5"],
        None,
        "noise must be >= 0",
    ),
    (
        "unknown-metric",
        ["evaluate", "--restored", "{d}/ok.png", "--reference", "{d}/ok.png", "--metrics", "psnr,fid"],
        None,
        "unknown metric 'fid'; known metrics: psnr, ssim",
    ),
    (
        "lpips-without-weights",
        ["evaluate", "--restored", "{d}/ok.png", "--reference", "{d}/ok.png", "--metrics", "lpips"],
        {"RESTORATION_NB_LPIPS": ""},
        "LPIPS needs local weights",
    ),
    (
        "unknown-prior",
        ["sample", "-o", "{d}/s1", "--prior", "{d}/no-prior"],
        None,
        "it is not a local folder",
    ),
    (
        "misspelt-micro-prior",
        ["sample", "-o", "{d}/s5", "--prior", "micro-ddpm-face64"],
        None,
        "unknown micro prior 'micro-ddpm-face64'",
    ),
    (
        "unknown-prompt-word",
        ["sample", "-o", "{d}/s2", "--prior", "micro-sd-faces64", "--prompt", "face cat", "--n", "1"],
        None,
        "has unknown words ['cat']; the vocabulary is",
    ),
    (
        "prompt-for-unconditional",
        ["sample", "-o", "{d}/s3", "--prompt", "face old"],
        None,
        "is unconditional; use a conditional prior",
    ),
    ("zero-samples", ["sample", "-o", "{d}/s4", "--n", "0"], None, "--n 0: expected at least 1 sample"),
    (
        "unknown-micro-prior",
        ["train-prior", "micro-gan", "-o", "{d}/r1"],
        None,
        "unknown micro prior 'micro-gan'; expected one of",
    ),
    (
        "unknown-preset",
        ["train-prior", "micro-ddpm-faces64", "-o", "{d}/r2", "--preset", "fast"],
        None,
        "unknown training preset 'fast'",
    ),
    (
        "bad-channels",
        ["train-prior", "micro-ddpm-faces64", "-o", "{d}/r3", "--channels", "16,32,64"],
        None,
        "expected four multiples of 8",
    ),
    (
        "init-not-a-prior",
        ["train-prior", "micro-ddpm-faces64", "-o", "{d}/r4", "--init", "{d}/empty", "--faces", "8"],
        None,
        "/empty' is not a prior folder; expected unet/config.json and training.json",
    ),
    ("save-without-run", ["save-prior", "{d}/empty", "--to", "{d}/p1"], None, "no training checkpoint"),
    (
        "train-zero-faces",
        ["train-prior", "micro-ddpm-faces64", "-o", "{d}/r5", "--faces", "0"],
        None,
        "--faces 0; expected a number of training faces >= 1",
    ),
    (
        "train-negative-faces",
        ["train-prior", "micro-ddpm-faces64", "-o", "{d}/r6", "--faces", "-5"],
        None,
        "--faces -5; expected a number of training faces >= 1",
    ),
    # non-finite knobs never run: a black image and a bare NaN in samples.json before
    (
        "sample-guidance-inf",
        ["sample", "-o", "{d}/s6", "--prior", "micro-sd-faces64", "--guidance", "inf"],
        None,
        "argument --guidance: 'inf' is not a finite number",
    ),
    (
        "sample-guidance-nan",
        ["sample", "-o", "{d}/s7", "--prior", "micro-sd-faces64", "--guidance", "nan"],
        None,
        "argument --guidance: 'nan' is not a finite number",
    ),
    (
        "restore-phi-nan",
        ["restore", "{d}/ok.png", "-o", "{d}/g8", "--method", "flipnet", "--phi", "nan"],
        None,
        "argument --phi: 'nan' is not a finite number",
    ),
    (
        "restore-w-inf",
        ["restore", "{d}/ok.png", "-o", "{d}/g9", "--method", "adapter", "--w=-inf"],
        None,
        "argument --w: '-inf' is not a finite number",
    ),
    (
        "degrade-sigma-inf",
        ["degrade", "{d}/ok.png", "-o", "{d}/out14", "--sigma", "inf"],
        None,
        "argument --sigma: 'inf' is not a finite number",
    ),
    (
        "seed-past-64-bits",
        ["degrade", "{d}/ok.png", "-o", "{d}/out15", "--seed", str(2**64)],
        None,
        "argument --seed: '18446744073709551616' is not a seed; expected an integer from 0 to 2**64-1",
    ),
    (
        "seed-negative",
        ["sample", "-o", "{d}/s8", "--seed", "-3"],
        None,
        "argument --seed: '-3' is not a seed",
    ),
    (
        "demo-prior-typo",
        ["demo", "-o", "{d}/demo3", "--method", "gen2res", "--prior", "micro-ddpm-face64"],
        None,
        "prior 'micro-ddpm-face64' could not be loaded (unknown micro prior 'micro-ddpm-face64'",
    ),
    # a checkpoint crafted to run a command is refused, not run (the snapshot check sees no marker file)
    (
        "save-crafted-checkpoint",
        ["save-prior", "{d}/crafted", "--to", "{d}/p2"],
        None,
        "/crafted/checkpoint.pt' is not a training checkpoint that can be read safely: it would call "
        "posix.system when loaded",
    ),
    (
        "resume-crafted-checkpoint",
        ["train-prior", "micro-ddpm-faces64", "-o", "{d}/crafted", "--faces", "8"],
        None,
        "/crafted/checkpoint.pt' is not a training checkpoint that can be read safely: it would call "
        "posix.system when loaded",
    ),
    (
        "restore-crafted-run-dir",
        [
            "restore",
            "{d}/ok.png",
            "-o",
            "{d}/g7",
            "--refs",
            "{d}/a",
            "--run-dir",
            "{d}/craftedrun",
            "--has-aligned",
        ],
        None,
        "/craftedrun/personal/checkpoint.pt' is not a training checkpoint that can be read safely: it would "
        "call posix.system when loaded",
    ),
    (
        "save-empty-checkpoint",
        ["save-prior", "{d}/emptyck", "--to", "{d}/p3"],
        None,
        "/emptyck/checkpoint.pt' is not a training checkpoint that can be read safely",
    ),
    (
        "save-foreign-checkpoint",
        ["save-prior", "{d}/foreign", "--to", "{d}/p4"],
        None,
        "/foreign/checkpoint.pt' is not a restoration-nb training checkpoint (it holds no training log)",
    ),
    (
        "restore-K-too-large",
        ["restore", "{d}/ok.png", "-o", "{d}/g1", "--recipe", "none", "--K", "1000"],
        None,
        "K=1000 is out of range; expected 1 <= K <= 999",
    ),
    (
        "restore-K-zero",
        ["restore", "{d}/ok.png", "-o", "{d}/g2", "--K", "0"],
        None,
        "K=0 is out of range; expected 1 <= K <= 999",
    ),
    (
        "restore-conditional-prior",
        ["restore", "{d}/ok.png", "-o", "{d}/g3", "--prior", "micro-sd-faces64"],
        None,
        "the prior's model is a UNet2DConditionModel; restoration by generation needs an unconditional "
        "UNet2DModel-style denoiser",
    ),
    (
        "restore-empty-refs",
        ["restore", "{d}/ok.png", "-o", "{d}/g4", "--refs", "{d}/empty"],
        None,
        "holds no image files",
    ),
    (
        "restore-unknown-method",
        ["restore", "{d}/ok.png", "-o", "{d}/g5", "--method", "codeformer"],
        None,
        "invalid choice: 'codeformer'",
    ),
    (
        "restore-knob-of-another-method",
        ["restore", "{d}/ok.png", "-o", "{d}/g5", "--method", "adapter", "--phi", "1"],
        None,
        "--phi is a knob of flipnet; --method adapter takes --a, --w, --num-steps",
    ),
    (
        "restore-refs-without-a-face",
        ["restore", "{d}/ok.png", "-o", "{d}/g5", "--method", "instant", "--refs", "{d}/a"],
        None,
        "reference '",
    ),
    (
        "restore-output-is-refs",
        ["restore", "{d}/b/x.png", "-o", "{d}/a", "--refs", "{d}/a", "--overwrite"],
        None,
        "never writes over an input",
    ),
    (
        "restore-zero-finetune-steps",
        ["restore", "{d}/ok.png", "-o", "{d}/g6", "--refs", "{d}/a", "--finetune-steps", "0"],
        None,
        "--finetune-steps 0; expected an integer >= 1",
    ),
    (
        "ms-ssim-too-small",
        [
            "evaluate",
            "--restored",
            "{d}/ok.png",
            "--reference",
            "{d}/ok.png",
            "--metrics",
            "ms_ssim",
            "--size",
            "24",
        ],
        None,
        "too small for MS-SSIM",
    ),
]


def _case(c):
    "A CASES entry as pytest parameters (argv, env, message) with its id and marks."
    if hasattr(c, "marks"):
        return pytest.param(*c.values[1:], id=c.values[0], marks=c.marks)
    return pytest.param(*c[1:], id=c[0])


def _snapshot(folder):
    "Every file under `folder` with the hash of its bytes."
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_main(argv, env, monkeypatch, capfd):
    "Exit status and stderr of `restoration-nb argv` run in this process with `env` set."
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        status = main(argv)
    except SystemExit as e:  # argparse refuses a malformed option by exiting
        status = e.code
    return status, capfd.readouterr().err


@pytest.mark.parametrize("argv,env,message", [_case(c) for c in CASES])
def test_bad_input_is_refused_with_a_clear_message(bad, argv, env, message, monkeypatch, capfd):
    fill = lambda s: s.replace("{d}", str(bad))
    before = _snapshot(bad)
    status, err = run_main(
        [*map(fill, argv), "--quiet"], {k: fill(v) for k, v in (env or {}).items()}, monkeypatch, capfd
    )
    assert status == 2, (status, err)
    assert fill(message) in err.strip().splitlines()[-1], err  # one line (argparse prints its usage above it)
    assert _snapshot(bad) == before, "a refused command changed or added files"


PROCESS_CASES = ["missing-input", "bad-settings-value", "seed-past-64-bits", "save-crafted-checkpoint"]


@pytest.mark.parametrize("argv,env,message", [p for p in map(_case, CASES) if p.id in PROCESS_CASES])
def test_the_console_script_exits_2_with_the_same_one_line(bad, argv, env, message):
    fill = lambda s: s.replace("{d}", str(bad))
    before = _snapshot(bad)
    r = run_cli(*map(fill, argv), "--quiet", env={k: fill(v) for k, v in (env or {}).items()})
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert fill(message) in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _snapshot(bad) == before, "a refused command changed or added files"


def test_an_animated_gif_is_read_by_its_first_frame_and_the_cli_says_so(tmp_path):
    frames = [Image.new("RGB", (64, 64), c) for c in ((200, 40, 40), (40, 200, 40))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    r = run_cli("degrade", tmp_path / "anim.gif", "-o", tmp_path / "out", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "anim.gif' has 2 frames (an animation); only its first frame is read" in r.stderr, r.stderr


def test_a_batch_with_one_bad_input_writes_nothing_and_a_fixed_rerun_succeeds(tmp_path):
    "All inputs are read before any output is written, so the re-run after fixing the bad one is not refused."
    for name in ("a", "c"):
        Image.new("RGB", (64, 64), (90, 120, 60)).save(tmp_path / f"{name}.png")
    (tmp_path / "b.png").write_text("not a picture")
    r = run_cli(
        "degrade",
        tmp_path / "a.png",
        tmp_path / "b.png",
        tmp_path / "c.png",
        "-o",
        tmp_path / "out",
        "--quiet",
    )
    assert r.returncode == 2 and "b.png' is not an image that can be read" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    Image.new("RGB", (64, 64), (60, 60, 160)).save(tmp_path / "b.png")
    r = run_cli(
        "degrade",
        tmp_path / "a.png",
        tmp_path / "b.png",
        tmp_path / "c.png",
        "-o",
        tmp_path / "out",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.png",
        "b.png",
        "c.png",
        "degradations.json",
    ]
