"""Bad input gets a clear, specific message that names the value and what was expected.
Each case runs the real console script and asserts exit status 2 and the message on stderr."""
import hashlib, json
import pytest
import torch
from PIL import Image
from conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    "A folder of awkward inputs."
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.png").write_text("this is not a picture")
    Image.new("RGB", (80, 64), (120, 90, 60)).save(d / "wide.png")
    Image.new("RGB", (8, 8), (120, 90, 60)).save(d / "tiny.png")
    Image.new("RGB", (64, 64), (120, 90, 60)).save(d / "ok.png")
    good = (d / "ok.png").read_bytes(); (d / "truncated.png").write_bytes(good[: len(good) // 2])
    (d / "empty").mkdir()
    (d / "a").mkdir(); (d / "b").mkdir()
    Image.new("RGB", (64, 64)).save(d / "a" / "x.png"); Image.new("RGB", (64, 64)).save(d / "b" / "x.png")
    (d / "bad.ini").write_text("[restoration_nb]\nK = lots\n")
    (d / "spec_missing_nb.json").write_text(json.dumps({"notebook": str(d / "nope.ipynb"), "grid": {"sigma": [1]}}))
    example = ROOT / "nbs" / "examples" / "degradation_sweep.ipynb"
    (d / "spec_bad_key.json").write_text(json.dumps({"notebook": str(example), "grid": {"sigmaa": [1]}}))
    (d / "spec_list.json").write_text("[1, 2]")
    return d


CASES = [
    # (id, argv (paths relative to the `bad` folder are marked with {d}), env, expected message)
    ("missing-input", ["degrade", "{d}/missing.png", "-o", "{d}/out1"], None, "input not found: '"),
    ("not-an-image", ["degrade", "{d}/notes.png", "-o", "{d}/out2"], None, "is not an image that can be read"),
    ("truncated-image", ["degrade", "{d}/truncated.png", "-o", "{d}/out3"], None, "is not an image that can be read"),
    ("non-square", ["degrade", "{d}/wide.png", "-o", "{d}/out4"], None, "is 80x64 px, not square; pass square='center_crop', 'pad' or 'resize' (--square"),
    ("too-small", ["degrade", "{d}/tiny.png", "-o", "{d}/out5"], None, "is 8x8 px; at least 16 px"),
    ("empty-folder", ["degrade", "{d}/empty", "-o", "{d}/out6"], None, "holds no image files"),
    ("same-output-twice", ["degrade", "{d}/a/x.png", "{d}/b/x.png", "-o", "{d}/out7"], None, "would both write"),
    ("output-is-input", ["degrade", "{d}/ok.png", "-o", "{d}", "--overwrite"], None, "never writes over an input"),
    ("pair-count", ["evaluate", "--restored", "{d}/ok.png", "{d}/a/x.png", "--reference", "{d}/ok.png"], None,
     "2 restored image(s) but 1 reference(s)"),
    ("table-suffix", ["evaluate", "--restored", "{d}/ok.png", "--reference", "{d}/ok.png", "-o", "{d}/t.txt"], None,
     "must end in .csv or .json"),
    pytest.param("no-cuda", ["demo", "-o", "{d}/demo1", "--device", "cuda"], None, "no CUDA GPU is available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")),
    ("bad-device", ["degrade", "{d}/ok.png", "-o", "{d}/out8", "--device", "gpu"], None, "device 'gpu' is not a torch device"),
    ("bad-settings-value", ["degrade", "{d}/ok.png", "-o", "{d}/out9"], {"RESTORATION_NB_SETTINGS": "{d}/bad.ini"},
     "K = 'lots' is not a valid int"),
    ("missing-settings-file", ["degrade", "{d}/ok.png", "-o", "{d}/out10"], {"RESTORATION_NB_SETTINGS": "{d}/none.ini"},
     "is not a file; point it at a settings.ini"),
    ("too-many-faces", ["demo", "-o", "{d}/demo2", "--n", "5000"], None, "which has 975"),
    ("sweep-spec-missing", ["sweep", "{d}/no_spec.json"], None, "sweep spec not found: '"),
    ("sweep-notebook-missing", ["sweep", "{d}/spec_missing_nb.json", "-o", "{d}/sw1"], None, "notebook not found: '"),
    ("sweep-unknown-parameter", ["sweep", "{d}/spec_bad_key.json", "-o", "{d}/sw2"], None,
     "['sigmaa'] are not parameters of"),
    ("sweep-spec-not-a-mapping", ["sweep", "{d}/spec_list.json", "-o", "{d}/sw3"], None, "must be a mapping with keys"),
    ("jpeg-quality", ["degrade", "{d}/ok.png", "-o", "{d}/out11", "--quality", "150"], None,
     "quality must be in 1..100 (JPEG quality, IJG scale), got 150"),
    ("negative-sigma", ["degrade", "{d}/ok.png", "-o", "{d}/out12", "--sigma", "-1"], None, "sigma must be > 0"),
    ("negative-noise", ["degrade", "{d}/ok.png", "-o", "{d}/out13", "--noise", "-5"], None, "noise must be >= 0"),
    ("unknown-metric", ["evaluate", "--restored", "{d}/ok.png", "--reference", "{d}/ok.png", "--metrics", "psnr,fid"], None,
     "unknown metric 'fid'; known metrics: psnr, ssim"),
    ("lpips-without-weights", ["evaluate", "--restored", "{d}/ok.png", "--reference", "{d}/ok.png", "--metrics", "lpips"],
     {"RESTORATION_NB_LPIPS": ""}, "LPIPS needs local weights"),
    ("unknown-prior", ["sample", "-o", "{d}/s1", "--prior", "{d}/no-prior"], None, "it is not a local folder"),
    ("misspelt-micro-prior", ["sample", "-o", "{d}/s5", "--prior", "micro-ddpm-face64"], None, "unknown micro prior 'micro-ddpm-face64'"),
    ("unknown-prompt-word", ["sample", "-o", "{d}/s2", "--prior", "micro-sd-faces64", "--prompt", "face cat", "--n", "1"], None,
     "has unknown words ['cat']; the vocabulary is"),
    ("prompt-for-unconditional", ["sample", "-o", "{d}/s3", "--prompt", "face old"], None, "is unconditional; use a conditional prior"),
    ("zero-samples", ["sample", "-o", "{d}/s4", "--n", "0"], None, "--n 0: expected at least 1 sample"),
    ("unknown-micro-prior", ["train-prior", "micro-gan", "-o", "{d}/r1"], None, "unknown micro prior 'micro-gan'; expected one of"),
    ("unknown-preset", ["train-prior", "micro-ddpm-faces64", "-o", "{d}/r2", "--preset", "fast"], None, "unknown training preset 'fast'"),
    ("bad-channels", ["train-prior", "micro-ddpm-faces64", "-o", "{d}/r3", "--channels", "16,32,64"], None,
     "expected four multiples of 8"),
    ("init-not-a-prior", ["train-prior", "micro-ddpm-faces64", "-o", "{d}/r4", "--init", "{d}/empty", "--faces", "8"], None,
     "/empty' is not a prior folder; expected unet/config.json and training.json"),
    ("save-without-run", ["save-prior", "{d}/empty", "--to", "{d}/p1"], None, "no training checkpoint"),
    ("restore-K-too-large", ["restore", "{d}/ok.png", "-o", "{d}/g1", "--recipe", "none", "--K", "1000"], None,
     "K=1000 is out of range; expected 1 <= K <= 999"),
    ("restore-K-zero", ["restore", "{d}/ok.png", "-o", "{d}/g2", "--K", "0"], None, "K=0 is out of range; expected 1 <= K <= 999"),
    ("restore-conditional-prior", ["restore", "{d}/ok.png", "-o", "{d}/g3", "--prior", "micro-sd-faces64"], None,
     "the prior's model is a UNet2DConditionModel; restoration by generation needs an unconditional UNet2DModel-style denoiser"),
    ("restore-empty-refs", ["restore", "{d}/ok.png", "-o", "{d}/g4", "--refs", "{d}/empty"], None, "holds no image files"),
    ("restore-unknown-method", ["restore", "{d}/ok.png", "-o", "{d}/g5", "--method", "codeformer"], None,
     "invalid choice: 'codeformer'"),
    ("restore-knob-of-another-method", ["restore", "{d}/ok.png", "-o", "{d}/g5", "--method", "adapter", "--phi", "1"], None,
     "--phi is a knob of flipnet; --method adapter takes --a, --w, --num-steps"),
    ("restore-refs-without-a-face", ["restore", "{d}/ok.png", "-o", "{d}/g5", "--method", "instant", "--refs", "{d}/a"], None,
     "reference '"),
    ("restore-output-is-refs", ["restore", "{d}/b/x.png", "-o", "{d}/a", "--refs", "{d}/a", "--overwrite"], None,
     "never writes over an input"),
    ("restore-zero-finetune-steps", ["restore", "{d}/ok.png", "-o", "{d}/g6", "--refs", "{d}/a", "--finetune-steps", "0"], None,
     "--finetune-steps 0; expected an integer >= 1"),
    ("ms-ssim-too-small", ["evaluate", "--restored", "{d}/ok.png", "--reference", "{d}/ok.png", "--metrics", "ms_ssim",
                           "--size", "24"], None, "too small for MS-SSIM"),
]


def _case(c):
    "A CASES entry as pytest parameters (argv, env, message) with its id and marks."
    if hasattr(c, "marks"): return pytest.param(*c.values[1:], id=c.values[0], marks=c.marks)
    return pytest.param(*c[1:], id=c[0])


def _snapshot(folder):
    "Every file under `folder` with the hash of its bytes."
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("argv,env,message", [_case(c) for c in CASES])
def test_bad_input_is_refused_with_a_clear_message(bad, argv, env, message):
    fill = lambda s: s.replace("{d}", str(bad))
    before = _snapshot(bad)
    r = run_cli(*map(fill, argv), "--quiet", env={k: fill(v) for k, v in (env or {}).items()})
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert _snapshot(bad) == before, "a refused command changed or added files"
