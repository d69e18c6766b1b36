"""Method name -> per-module merge function. Adding a method = one module in merging/methods + one line here."""
from merging.methods import cat, dare, lego, linear, svd, ties

METHODS = {
    "lego": lego.merge_module,
    "linear": linear.merge_module,
    "cat": cat.merge_module,
    "svd": svd.merge_module,
    "ties": ties.merge_module,
    "dare_linear": dare.merge_linear,
    "dare_ties": dare.merge_ties,
}
