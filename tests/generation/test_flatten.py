"""Adapters <-> vectors: the layout is a fixed natural order, padding is exact, and the round trip is lossless."""
from __future__ import annotations

import torch

from generation.flatten import fit_layout, flatten, natural_key, unflatten
from lora import Adapter


def _adapter(layers: int, seed: int = 0, scale: float = 1.0) -> Adapter:
    gen = torch.Generator().manual_seed(seed)
    modules = {f"model.layers.{i}.self_attn.{p}": (torch.randn(4, 16, generator=gen) * scale,
                                                   torch.randn(16 if p == "q_proj" else 8, 4, generator=gen))
               for i in range(layers) for p in ("q_proj", "v_proj")}
    return Adapter.from_modules("tiny-base", modules, r=4, lora_alpha=8)


def test_flatten_then_unflatten_returns_every_tensor_bit_for_bit(trajectory):
    checkpoints = [a for _, a in trajectory.checkpoints]
    layout = fit_layout(checkpoints, multiple=32)
    for adapter in checkpoints:
        restored = unflatten(flatten(adapter, layout), layout)
        assert list(restored) == layout.keys() and set(restored) == set(adapter.tensors)
        for key, tensor in adapter.tensors.items():
            assert restored[key].dtype == tensor.dtype and restored[key].shape == tensor.shape
            assert torch.equal(restored[key], tensor), key  # exact, not allclose (see generation/flatten.py)


def test_round_trip_is_exact_for_zeros_tiny_values_and_offset_means():
    """The hard cases for a z-score round trip: exact zeros (B at init), values far below the tensor's spread, and
    a tensor whose mean is far from zero."""
    a = _adapter(2, seed=1)
    tensors = dict(a.tensors)
    key_b = next(k for k in tensors if k.endswith("lora_B.weight"))
    key_a = next(k for k in tensors if k.endswith("lora_A.weight"))
    tensors[key_b] = torch.zeros_like(tensors[key_b])
    tensors[key_a] = tensors[key_a] * 1e-3 + 5.0
    tensors[key_a][0, :3] = torch.tensor([1e-6, -3e-7, 0.0])  # ~1e-7 of the tensor's mean, still above 2**-29
    odd = Adapter(config=a.config, tensors=tensors)
    layout = fit_layout([odd, a], multiple=8)
    for adapter in (odd, a):
        restored = unflatten(flatten(adapter, layout), layout)
        assert all(torch.equal(restored[k], v) for k, v in adapter.tensors.items())


def test_values_below_2_pow_minus_29_of_the_mean_come_back_within_2_pow_minus_53_of_the_mean():
    """The one documented inexact case: x - mean is not exact in float64 when |x| < 2**-29 |mean|."""
    a = _adapter(1, seed=2)
    key = next(k for k in a.tensors if k.endswith("lora_A.weight"))
    shifted = a.tensors[key] + 4.0
    shifted[0, :2] = torch.tensor([1e-30, -3e-12])
    odd = Adapter(config=a.config, tensors={**a.tensors, key: shifted})
    layout = fit_layout([odd], multiple=1)
    mean = next(t.mean for t in layout.tensors if t.key == key)
    restored = unflatten(flatten(odd, layout), layout)[key]
    assert torch.equal(restored[:, 2:], shifted[:, 2:]) and torch.equal(restored[1:], shifted[1:])
    assert (restored[0, :2].double() - shifted[0, :2].double()).abs().max() <= 2.0 ** -53 * abs(mean)


def test_normalised_values_have_roughly_unit_scale_per_tensor():
    adapters = [_adapter(2, seed=s, scale=100.0) for s in range(3)]
    layout = fit_layout(adapters, multiple=1)
    vectors = torch.stack([flatten(a, layout) for a in adapters])
    for t in layout.tensors:
        part = vectors[:, t.offset:t.offset + t.numel]
        assert 0.5 < part.std().item() < 2.0, t.key  # std rounded to a power of two: within a factor sqrt(2)
        assert abs(part.mean().item()) < 1e-6


def test_layout_orders_layers_numerically_not_as_strings():
    adapter = _adapter(12)
    layout = fit_layout([adapter], multiple=1)
    layers = [int(k.split("layers.")[1].split(".")[0]) for k in layout.keys()]
    assert layers == sorted(layers) and layers[-1] == 11
    def first(keys, layer):
        return next(i for i, k in enumerate(keys) if f".layers.{layer}." in k)

    # a string sort puts layers.10 before layers.2; the layout does not
    assert first(sorted(adapter.tensors), 10) < first(sorted(adapter.tensors), 2)
    assert first(layout.keys(), 10) > first(layout.keys(), 9) > first(layout.keys(), 2)
    assert natural_key("layers.9.q") < natural_key("layers.10.q")
    offsets = [t.offset for t in layout.tensors]
    assert offsets == sorted(offsets) and offsets[0] == 0


def test_vector_is_padded_with_zeros_to_a_multiple_of_the_stride_product():
    adapter = _adapter(3)
    layout = fit_layout([adapter], multiple=64)
    vector = flatten(adapter, layout)
    assert layout.length == adapter.num_parameters()
    assert layout.padded % 64 == 0 and layout.padded - layout.length < 64 and layout.padded > layout.length
    assert vector.shape == (layout.padded,) and torch.count_nonzero(vector[layout.length:]) == 0


def test_layout_survives_json():
    adapter = _adapter(2)
    layout = fit_layout([adapter, _adapter(2, seed=3)], multiple=16)
    import json

    again = type(layout).from_json(json.loads(json.dumps(layout.to_json())))
    assert again == layout
