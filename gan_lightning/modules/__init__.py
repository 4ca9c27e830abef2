"""LightningModules: they own training (losses, schedules, optimizers), not layer sizes."""
