"""FLIPNET as a job and as an API: the phi sweep notebook under papermill, the sweep spec, and the errors
users meet."""

import pytest
import torch
from conftest import ROOT, run_example
from restoration_nb.backbones import build_model, tiny_unet2d_condition_config
from restoration_nb.flipnet import (
    add_boost_hub,
    build_flipnet,
    dual_stream,
    flip,
    flipnet_restore,
    load_flipnet,
    set_phi,
)
from restoration_nb.sweeps import expand_grid, load_sweep_spec, notebook_parameters

EXAMPLE = ROOT / "nbs" / "examples" / "flipnet_sweep.ipynb"


def _run(tmp_path, name, **params):
    return run_example(EXAMPLE, tmp_path, name, n_faces=1, num_steps=3, **params)


@pytest.mark.runs_notebook("examples/flipnet_sweep.ipynb")
def test_sweep_point_writes_metrics_and_phi_changes_them(tmp_path):
    m0, m2 = _run(tmp_path, "phi0", phi=0.0), _run(tmp_path, "phi2", phi=2.0)
    assert set(m0) >= {"psnr", "ssim", "id_cosine", "psnr_lq", "ssim_lq", "n_faces"}, m0
    assert m0["psnr_lq"] == m2["psnr_lq"], "the same LQ faces at every phi"
    assert m0["psnr"] != m2["psnr"], "phi moves the restoration"


def test_the_committed_sweep_spec_names_real_parameters():
    spec = load_sweep_spec(ROOT / "nbs" / "examples" / "flipnet_sweep.json")
    assert set(spec["grid"]) | set(spec["fixed"]) <= set(notebook_parameters(spec["notebook"])), spec
    assert [p["phi"] for p in expand_grid(spec["grid"])] == [0, 0.5, 1, 2]


def test_a_fresh_boost_hub_on_a_tiny_unet_changes_nothing_and_phi_zero_switches_it_off():
    model = build_model(tiny_unet2d_condition_config())
    x, t = torch.randn(4, 4, 16, 16), torch.tensor([10, 500, 20, 900])
    ctx = torch.randn(4, 5, 32)
    with torch.no_grad():
        bare = model(x[:2], t[:2], encoder_hidden_states=ctx[:2]).sample
        hubs = add_boost_hub(model, phi=2.0)
        with dual_stream(model):
            fresh = model(x, t, encoder_hidden_states=ctx).sample
        torch.testing.assert_close(fresh[:2], bare, atol=1e-5, rtol=0)
        for hub in hubs.values():
            torch.nn.init.normal_(hub.to_out.weight, std=0.1)
        with dual_stream(model):
            trained = model(x, t, encoder_hidden_states=ctx).sample
        assert (trained[:2] - bare).abs().max() > 1e-4
        set_phi(model, 0)
        with dual_stream(model):
            off = model(x, t, encoder_hidden_states=ctx).sample
        torch.testing.assert_close(off[:2], bare, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: set_phi(add_hubbed(), -1.0), "phi=-1.0; expected a number >= 0"),
        (lambda: set_phi(add_hubbed(), "1"), "phi='1'; expected a number >= 0"),
        (
            lambda: flip(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 32, 32)),
            "hq has shape (1, 3, 64, 64) but lq has shape (1, 3, 32, 32)",
        ),
        (lambda: flip(torch.zeros(2, 3, 64, 64), torch.zeros(1, 3, 64, 64)), "expected the same shape"),
        (
            lambda: add_boost_hub(
                build_model(
                    dict(
                        _class_name="UNet2DModel",
                        sample_size=16,
                        block_out_channels=(8, 16),
                        norm_num_groups=8,
                        add_attention=False,
                        down_block_types=("DownBlock2D",) * 2,
                        up_block_types=("UpBlock2D",) * 2,
                    )
                )
            ),
            "UNet2DModel has no self-attention layers",
        ),
        (lambda: build_flipnet("micro-ddpm-faces64"), "needs a conditional prior"),
        (lambda: flipnet_restore(load_flipnet(), torch.zeros(1, 3, 48, 48)), "works at 64 px"),
        (lambda: load_flipnet(ROOT / "nbs"), "expected flipnet.safetensors and flipnet.json"),
    ],
)
def test_bad_input_gets_a_clear_message(call, message):
    with pytest.raises((ValueError, TypeError, FileNotFoundError)) as e:
        call()
    assert message in str(e.value), str(e.value)


def add_hubbed():
    model = build_model(tiny_unet2d_condition_config())
    add_boost_hub(model)
    return model
