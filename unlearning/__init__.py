"""O3: continual unlearning with an orthogonal LoRA and an OOD-gated soft load (see shared/design/methods.md).

Not built yet: this package is the skeleton's placeholder for the unlearn issue.
"""
