"""Which network is updated on which real batch.

A *step* in this project is one real minibatch (one ``training_step`` call). Lightning's
``trainer.global_step`` instead counts optimizer steps, so a GAN that steps D and G on each
batch would stop after half its ``max_steps``. :meth:`UpdateSchedule.optimizer_steps` converts a
budget in batches into Lightning's unit exactly, which is what ``train.py`` hands the Trainer.

``d_steps = k`` reproduces Algorithm 1 of Goodfellow et al.: k discriminator updates, each on a
fresh minibatch, then one generator update (on the k-th batch). ``g_steps = k`` is the reverse
ratio seed 003 found better: the generator is updated on every batch and the discriminator on
the first batch of each cycle of k.
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_lightning.errors import ConfigError


@dataclass(frozen=True)
class UpdateSchedule:
    d_steps: int = 1
    g_steps: int = 1

    def __post_init__(self) -> None:
        for key in ("d_steps", "g_steps"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"model.{key} must be an integer >= 1; got {value!r}.")
        if self.d_steps > 1 and self.g_steps > 1:
            raise ConfigError(
                f"model.d_steps={self.d_steps} and model.g_steps={self.g_steps}: only one of them "
                "may exceed 1 (k D updates per G update, or k G updates per D update)."
            )

    @property
    def cycle(self) -> int:
        return max(self.d_steps, self.g_steps)

    def updates(self, batch_index: int) -> tuple[bool, bool]:
        """``(update_d, update_g)`` for the ``batch_index``-th real batch (0-based, global)."""
        position = batch_index % self.cycle
        if self.d_steps > 1:
            return True, position == self.cycle - 1
        if self.g_steps > 1:
            return position == 0, True
        return True, True

    def optimizer_steps(self, n_batches: int) -> int:
        """Number of ``optimizer.step()`` calls made over the first ``n_batches`` batches."""
        full, rest = divmod(n_batches, self.cycle)
        per_cycle = self.cycle + 1 if self.cycle > 1 else 2
        partial = sum(sum(self.updates(i)) for i in range(rest))
        return full * per_cycle + partial
