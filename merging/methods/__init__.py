"""One module per merge method. Each exposes `merge_module(module, parts, config) -> (A, B, info)`: the merged
LoRA for one target module with scaling 1 (the output adapter gets alpha = rank there), and a small dict that goes
into the merge report."""
