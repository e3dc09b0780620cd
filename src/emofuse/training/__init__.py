"""Training: one loop, checkpoints, run directories, augmentation."""
