"""InstantRestore as a job and as an API: the references sweep notebook under papermill, the sweep spec, the
shipped one-step network and its reference cache, a latent (VAE) one built the SD-Turbo way, training resume,
and the errors users meet."""

import re
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, run_example
from restoration_nb.backbones import (
    build_model,
    make_scheduler,
    tiny_autoencoder_kl_config,
    tiny_unet2d_condition_config,
)
from restoration_nb.core import load_faces, make_generator
from restoration_nb.degradations import second_order_degrade
from restoration_nb.instant_restore import (
    build_instant_restorer,
    check_references,
    encode_references,
    instant_restore,
    load_instant_restore,
    one_step,
    reference_views,
    trainable_state,
    warp_points,
)
from restoration_nb.instant_restore_experiments import train_instant_restore
from restoration_nb.priors import Prior, load_training_faces
from restoration_nb.sweeps import expand_grid, load_sweep_spec, notebook_parameters

EXAMPLE = ROOT / "nbs" / "examples" / "instant_sweep.ipynb"


@pytest.fixture(scope="module")
def shipped():
    return load_instant_restore()


@pytest.fixture(scope="module")
def faces():
    return load_faces(6, "heldout", size=64)


@pytest.mark.runs_notebook("examples/instant_sweep.ipynb")
def test_sweep_point_records_metrics_and_references_change_them(tmp_path):
    one = run_example(EXAMPLE, tmp_path, "r1", n_refs=1, people=2)
    four = run_example(EXAMPLE, tmp_path, "r4", n_refs=4, adain=False, people=2)
    x8 = run_example(EXAMPLE, tmp_path, "x8", n_refs=4, adain=False, tier="x8", people=2)
    assert set(one) >= {
        "psnr",
        "id_cosine",
        "psnr_lq",
        "id_cosine_lq",
        "psnr_other",
        "id_cosine_other",
        "people",
    }, one
    assert one["psnr_lq"] == four["psnr_lq"], "the same degraded targets at every point"
    assert one["psnr"] != four["psnr"], "the number of references and AdaIN change the restoration"
    assert four["psnr"] != four["psnr_other"], "another person's references give another restoration"
    assert x8["psnr_lq"] < four["psnr_lq"], "tier x8 restores a harder input than x4"


def test_the_committed_sweep_spec_names_real_parameters():
    spec = load_sweep_spec(ROOT / "nbs" / "examples" / "instant_sweep.json")
    assert set(spec["grid"]) | set(spec["fixed"]) <= set(notebook_parameters(spec["notebook"])), spec
    assert len(expand_grid(spec["grid"])) == 24


def test_shipped_generator_is_seeded_and_its_cache_matches_the_references(shipped, faces):
    lq, _ = second_order_degrade(faces[:2], generator=make_generator(0))
    a = instant_restore(shipped, lq, faces[2:6], seed=3, progress=False)
    assert torch.equal(a, instant_restore(shipped, lq, faces[2:6], seed=3, progress=False))
    assert torch.equal(
        a, instant_restore(shipped, lq, cache=encode_references(shipped, faces[2:6]), seed=3, progress=False)
    )
    per_input = instant_restore(shipped, lq, torch.stack([faces[2:4], faces[4:6]]), seed=3, progress=False)
    assert per_input.shape == a.shape and not torch.equal(per_input, a), (
        "per-input reference sets are used per input"
    )
    assert (
        a - instant_restore(shipped, lq, faces[2:6], adain=False, seed=3, progress=False)
    ).abs().max() > 1e-4, "AdaIN changes the output"


def test_shipped_weights_keep_their_file_names_and_load_into_the_unet(shipped, faces, tmp_path):
    """The weight files name the one-step network's tensors `generator.*` (the paper's word, a file format):
    the shipped file loads into `InstantRestorer.unet`, and weights saved now are read the same way."""
    from safetensors.torch import load_file
    from restoration_nb.instant_restore import INSTANT_WEIGHTS, save_instant_restore
    from restoration_nb.training import WEIGHTS_DIR

    tensors = load_file(WEIGHTS_DIR / INSTANT_WEIGHTS / "instant.safetensors")
    assert tensors and {k.split(".")[0] for k in tensors} == {"generator"}
    unet = shipped.unet.state_dict()
    assert all(torch.equal(unet[k.removeprefix("generator.")], v.float()) for k, v in tensors.items())
    lq, _ = second_order_degrade(faces[:1], generator=make_generator(0))
    out = instant_restore(shipped, lq, faces[2:6], seed=0, progress=False)
    assert out.shape == lq.shape and out.abs().max() <= 1 and not torch.equal(out, lq)
    save_instant_restore(shipped, tmp_path / "again")
    assert set(load_file(tmp_path / "again" / "instant.safetensors")) == set(tensors)
    assert set(trainable_state(shipped)) == {"generator"}


def test_references_are_read_only_in_the_decoder(shipped, faces):
    """With an empty bank the generator is its own plain self-attention; recorded references are consumed, not
    changed."""
    lq = faces[:1]
    cache = encode_references(shipped, faces[1:3])
    before = {k: tuple(t.clone() for t in kv) for k, kv in cache.kv.items()}
    with torch.no_grad():
        one_step(shipped, lq, cache, generator=make_generator(0))
    assert all(torch.equal(a, b) for k in before for a, b in zip(before[k], cache.kv[k]))
    assert shipped.bank.kv == {} and shipped.bank.attention == {}, "the bank is emptied after each call"


def test_a_latent_generator_with_a_vae_restores_at_pixel_size():
    """The SD-Turbo recipe on tiny stock models: UNet + AutoencoderKL, LoRA on both, the VAE's first conv
    trained."""
    unet = build_model(tiny_unet2d_condition_config(sample_size=16), seed=0)
    prior = Prior("tiny latent", unet, make_scheduler("ddpm"))
    with pytest.raises(ValueError, match="no prompt embedding; pass context="):
        build_instant_restorer(prior, lora_rank=2, vae=build_model(tiny_autoencoder_kl_config(32), seed=0))
    ir = build_instant_restorer(
        prior,
        lora_rank=2,
        vae=build_model(tiny_autoencoder_kl_config(32), seed=0),
        context=torch.zeros(1, 4, 32),
    )
    assert ir.size == 32
    assert any(n.startswith("encoder.conv_in") for n, p in ir.vae.named_parameters() if p.requires_grad)
    assert any("lora_" in n for n, p in ir.vae.named_parameters() if p.requires_grad)
    x = torch.rand(2, 3, 32, 32, generator=make_generator(0)) * 2 - 1
    out = instant_restore(ir, x, x[:1].expand(3, -1, -1, -1).contiguous(), seed=0, progress=False)
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1
    with pytest.raises(ValueError, match="64x64 px but this generator restores 32x32"):
        instant_restore(ir, F.interpolate(x, size=64), x[:1], progress=False)


def test_training_stopped_and_resumed_equals_training_in_one_go(tmp_path):
    faces = load_training_faces(limit=16, progress=False)
    one, log1 = train_instant_restore(
        faces=faces, cfg="test", steps=3, out_dir=tmp_path / "one", progress=False
    )
    train_instant_restore(faces=faces, cfg="test", steps=1, out_dir=tmp_path / "two", progress=False)
    two, log2 = train_instant_restore(
        faces=faces, cfg="test", steps=3, out_dir=tmp_path / "two", progress=False
    )
    assert [r["loss"] for r in log1["losses"]] == [r["loss"] for r in log2["losses"]] and log2["step"] == 3
    for (k, a), b in zip(one.unet.state_dict().items(), two.unet.state_dict().values()):
        if "lora_" in k:
            assert torch.allclose(a, b, atol=1e-6), k
    with pytest.raises(ValueError, match="was trained with lora_rank=2, not 4"):
        train_instant_restore(
            faces=faces, cfg="test", steps=4, lora_rank=4, out_dir=tmp_path / "two", progress=False
        )


def test_views_keep_landmarks_in_register():
    faces = load_faces(2, "heldout", size=64)
    views, theta = reference_views(faces, 3, make_generator(0))
    assert views.shape == (2, 3, 3, 64, 64) and views.abs().max() <= 1
    centre = torch.full((2, 1, 2), 31.5)
    moved = warp_points(centre, theta, 64)
    assert moved.shape == (2, 3, 1, 2) and (moved - 31.5).abs().max() < 64 * 0.2, (
        "a small warp keeps the centre near the centre"
    )


@pytest.mark.parametrize(
    "refs, message",
    [
        (None, "no references"),
        (torch.zeros(0, 3, 64, 64), "no references"),
        (torch.zeros(5, 3, 64, 64), "5 references; InstantRestore takes 1 to 4"),
        (torch.zeros(2, 3, 48, 48), "references are 48x48 px but the input is 64x64"),
        (torch.zeros(3, 2, 3, 64, 64), "3 reference sets for 2 inputs"),
        (torch.zeros(2, 3, 64), "expected (R, 3, H, W) or (B, R, 3, H, W)"),
        (torch.full((2, 3, 64, 64), 2.0), "expected [-1, 1]"),
    ],
)
def test_bad_references_are_refused_with_the_reason(refs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_references(refs, 64, batch=2)


def test_bad_inputs_to_restore_are_refused_before_any_work(shipped, faces):
    with pytest.raises(ValueError, match="32x32 px but this generator restores 64x64 px face crops"):
        instant_restore(shipped, F.interpolate(faces[:1], size=32), faces[1:3], progress=False)
    with pytest.raises(ValueError, match="pass references or a cache, not both"):
        instant_restore(
            shipped, faces[:1], faces[1:3], cache=encode_references(shipped, faces[1:3]), progress=False
        )
    with pytest.raises(ValueError, match="the cache holds 2 reference sets for 3 inputs"):
        instant_restore(
            shipped,
            faces[:3],
            cache=encode_references(shipped, torch.stack([faces[3:5]] * 2)),
            progress=False,
        )
    with pytest.raises(ValueError, match="t=1000"):
        instant_restore(shipped, faces[:1], faces[1:3], t=1000, progress=False)
    with pytest.raises(ValueError, match="max_refs=0; expected 1 to 4"):
        train_instant_restore(
            faces=load_training_faces(limit=2, progress=False), cfg="test", max_refs=0, progress=False
        )
