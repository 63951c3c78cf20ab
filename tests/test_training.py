"""The one training loop (`restoration_nb.training.fit`) under every trainer of the course: a checkpoint keeps
the layout that checkpoints written before the loop was shared hold, so those runs still resume."""

import pytest
import torch
from restoration_nb.priors import load_prior, load_training_faces, train_prior
from restoration_nb.training import CHECKPOINT, load_checkpoint

# the top-level entries of each trainer's checkpoint.pt, as the trainers wrote them before they shared `fit`
LAYOUTS = dict(
    prior={"model", "ema", "opt", "generator", "log", "prompts", "ema_prompts"},
    constrain={"trainable", "opt", "generator", "log"},
    flipnet={"trainable", "disc", "opts", "generator", "log"},
    instant={"trainable", "disc", "opt", "d_opt", "generator", "log"},
    adapter={"trainable", "opt", "generator", "log"},
)


def train_briefly(which: str, folder, faces):
    "Two steps of `which` in `folder`, on its test preset."
    if which == "prior":
        return train_prior(
            "micro-sd-faces64", folder, "test", faces=faces, steps=2, channels=(8, 8, 16, 16), progress=False
        )
    if which == "constrain":
        from restoration_nb.gen2res_experiments import constrain_prior

        album = faces[0][:4].float().div(127.5).sub(1)
        return constrain_prior(
            load_prior("micro-ddpm-faces64"),
            album,
            "fast",
            out_dir=folder,
            steps=2,
            batch_size=2,
            progress=False,
        )[1]
    if which == "flipnet":
        from restoration_nb.flipnet_experiments import train_flipnet

        return train_flipnet(
            faces=faces, cfg="test", out_dir=folder, steps=1, ae_steps=1, assoc_steps=0, progress=False
        )[1]
    if which == "instant":
        from restoration_nb.instant_restore_experiments import train_instant_restore

        return train_instant_restore(faces=faces, cfg="test", out_dir=folder, steps=2, progress=False)[1]
    from restoration_nb.restoration_adapter_experiments import train_restoration_adapter

    return train_restoration_adapter(faces=faces, cfg="test", out_dir=folder, steps=2, progress=False)[1]


@pytest.mark.parametrize("which", list(LAYOUTS))
def test_every_trainer_keeps_its_checkpoint_layout_and_counts_its_steps(which, tmp_path):
    faces = load_training_faces(limit=8, progress=False)
    log = train_briefly(which, tmp_path, faces)
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert set(state) == LAYOUTS[which]
    assert state["log"]["step"] == log["step"] == 2 and log["finished"]
    assert log["minutes"] > 0 and torch.is_tensor(state["generator"])
