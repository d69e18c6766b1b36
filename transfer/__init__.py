"""Trans-LoRA: move an adapter to a new base model without its training data (see shared/design/methods.md).

Not built yet: this package is the skeleton's placeholder for the transfer issue.
"""
