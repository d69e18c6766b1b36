"""The one error generation raises for bad input, so callers (the hub's API, the generator jobs) can turn it into a
4xx: inputs that are not one family, a condition of the wrong size, files that are not a generator."""


class GenerationError(ValueError):
    """The inputs, the condition or the generator files cannot be used; the message says which and why."""
