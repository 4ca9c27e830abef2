"""channels_last for convolutional nets: what is converted, what is left alone, and optimizer
states that always match their parameters' layout (a fused Adam depends on it)."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

from gan_lightning.callbacks.memory_format import MemoryFormat, match_state_layouts
from gan_lightning.data.base import BaseDataModule
from gan_lightning.errors import ConfigError
from gan_lightning.modules.gan import GAN
from gan_lightning.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from tests.helpers import tensor_loader, tiny_gan

CL = torch.channels_last


def tiny_dcgan() -> GAN:
    adam = functools.partial(torch.optim.Adam, lr=1e-3, fused=True)
    return GAN(
        generator=DCGANGenerator(latent_dim=4, image_shape=(3, 8, 8), base_width=4),
        discriminator=DCGANDiscriminator(image_shape=(3, 8, 8), base_width=4),
        optimizer_g=adam,
        optimizer_d=adam,
    )


def conv_weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in module.parameters() if p.dim() == 4]


def test_auto_converts_conv_nets_and_leaves_mlps_alone():
    datamodule = SimpleNamespace(channels_last=False)
    dcgan, mlp = tiny_dcgan(), tiny_gan()
    MemoryFormat().setup(SimpleNamespace(datamodule=datamodule), dcgan, "fit")
    assert all(w.is_contiguous(memory_format=CL) for w in conv_weights(dcgan))
    assert any(not w.is_contiguous() for w in conv_weights(dcgan))  # really NHWC, not both
    assert datamodule.channels_last
    before = [p.stride() for p in mlp.parameters()]
    MemoryFormat().setup(SimpleNamespace(datamodule=None), mlp, "fit")
    assert [p.stride() for p in mlp.parameters()] == before
    untouched = tiny_dcgan()
    MemoryFormat("contiguous").setup(SimpleNamespace(datamodule=None), untouched, "fit")
    assert all(w.is_contiguous() for w in conv_weights(untouched))
    with pytest.raises(ConfigError, match="memory_format"):
        MemoryFormat("nhwc")


def _fused_adam_after(param_layout, state_layout) -> torch.Tensor:
    torch.manual_seed(0)
    weight, grads = torch.randn(8, 4, 3, 3), [torch.randn(8, 4, 3, 3) for _ in range(2)]
    param = torch.nn.Parameter(weight.contiguous(memory_format=param_layout))
    optimizer = torch.optim.Adam([param], lr=0.1, fused=True)
    param.grad = grads[0].contiguous(memory_format=param_layout)
    optimizer.step()
    state = optimizer.state[param]
    for key in ("exp_avg", "exp_avg_sq"):  # as a checkpoint saved in the other layout loads
        state[key] = state[key].contiguous(memory_format=state_layout)
    match_state_layouts([optimizer])
    assert all(state[k].stride() == param.stride() for k in ("exp_avg", "exp_avg_sq"))
    param.grad = grads[1].contiguous(memory_format=param_layout)
    optimizer.step()
    return param.detach().contiguous()


def test_optimizer_states_follow_their_parameters_layout():
    reference = _fused_adam_after(torch.contiguous_format, torch.contiguous_format)
    for param_layout, state_layout in (
        (CL, torch.contiguous_format),
        (torch.contiguous_format, CL),
    ):
        torch.testing.assert_close(_fused_adam_after(param_layout, state_layout), reference)


def test_multichannel_batches_are_handed_over_in_channels_last():
    datamodule = BaseDataModule(pixel_range=(-1, 1))
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    out, _ = datamodule.on_after_batch_transfer((images, torch.zeros(2)), 0)
    assert out.is_contiguous() and not out.is_contiguous(memory_format=CL)
    datamodule.channels_last = True
    out, _ = datamodule.on_after_batch_transfer((images, torch.zeros(2)), 0)
    assert out.is_contiguous(memory_format=CL)


def test_dcgan_trains_in_channels_last_through_the_trainer():
    model = tiny_dcgan()
    trainer = pl.Trainer(
        max_steps=4,
        accelerator="cpu",
        callbacks=[MemoryFormat()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, train_dataloaders=tensor_loader(n=16, batch_size=4, shape=(3, 8, 8)))
    assert all(w.is_contiguous(memory_format=CL) for w in conv_weights(model))
    states = [s for opt in trainer.optimizers for s in opt.state.values()]
    assert states and all(torch.isfinite(v).all() for s in states for v in s.values())
