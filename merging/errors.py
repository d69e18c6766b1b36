"""The one error merging raises for bad input, so callers (the hub's API, the merge job) can turn it into a 4xx."""


class MergeError(ValueError):
    """The inputs or the config cannot be merged; the message says which input or field is wrong."""
