"""Pure ``nn.Module`` networks: they map tensors and know nothing about training."""
