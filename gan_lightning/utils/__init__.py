"""Small helpers every layer shares: pixel ranges, pictures, latents, batches, net modes."""
