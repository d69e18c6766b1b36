"""ICM-LoRA: a conditional VAE that generates adapter weights for a task (see shared/design/methods.md).

Not built yet: this package is the skeleton's placeholder for the generate issue.
"""
