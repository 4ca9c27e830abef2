"""An example of a user's own package for gan-lightning (examples/my_gan/README.md).

Nothing here edits or subclasses gan-lightning's nets: the generator and the discriminator are
plain ``nn.Module`` classes that meet the contract of docs/contract.md, and the DataModule
reuses the project's :class:`~gan_lightning.data.base.BaseDataModule` for batching and splits.
"""

from my_gan.data import ShapesDataModule, render_shapes
from my_gan.nets import PlainDiscriminator, ResGenerator

__all__ = ["PlainDiscriminator", "ResGenerator", "ShapesDataModule", "render_shapes"]
