"""A LoRA policy as the engine's fused path runs it: merged weights in buffers of its own.

PEFT computes a LoRA-wrapped linear layer as ``W0 x + scaling * B A dropout(x)``. The
engine's fused decode path reads plain weight matrices, concatenated per layer
(``gpu.model.Runner``), so it cannot run PEFT's modules. ``MergedLora`` builds, from a
PEFT model, a copy of its module tree that shares every tensor except the decoder layers'
linear weights: each of those is a plain ``nn.Linear`` of its own holding
``W0 + scaling * B @ A`` (PEFT's ``get_delta_weight`` for the active adapter) where LoRA
wraps the layer, a copy of ``W0`` where it does not (the fused q/k/v and gate/up tensors
hold a layer's projections side by side, so the engine must own all of them). The engine
is built on that copy, and its runner fuses and re-points these linears as it does a
full model's. ``remerge()`` writes the current LoRA weights into the same storage after
each optimizer step, so CUDA graphs captured on them stay valid. The trained model's tensors
are only read.

The merged weight equals PEFT's layer up to rounding ``W0 + delta`` to the model's dtype
(in bf16 a delta below half a unit of ``W0``'s last place is lost, as in PEFT's own
``merge``; PEFT's unmerged path rounds at its output instead), in eval mode, which is how
the engine samples: there dropout is the identity, whatever ``lora_dropout`` is.
Embeddings, norms and the LM head are shared (the LM head is merged too if LoRA wraps it).

Memory: one extra copy of the decoder layers' linear weights (Qwen2.5-Coder-0.5B: 358M
parameters, 0.72 GB in bf16), and one layer's worth more while the engine is built.

Supported: plain LoRA on ``nn.Linear`` layers, one active adapter, not merged into the
base weights. ``unsupported_reason`` names anything else it finds (DoRA and the other
LoRA variants, ``lora_bias``, LoRA on embeddings or quantized layers, several active
adapters, ``modules_to_save`` wrappers). For those, ``train.rollouts`` runs PEFT's own
modules on the engine's plain path instead.
"""

from __future__ import annotations

import copy


def _walk(module, prefix: str = ""):
    """``(name, module)`` over the tree, without going into LoRA layers (their parts are theirs)."""
    from peft.tuners.lora import LoraLayer

    yield prefix, module
    if isinstance(module, LoraLayer):
        return
    for name, child in module.named_children():
        yield from _walk(child, f"{prefix}.{name}" if prefix else name)


def _adapter(layer) -> str | list[str]:
    """The layer's one active adapter, or the list of them if it has more or none."""
    active = [a for a in layer.active_adapters if a in layer.lora_A]
    return active[0] if len(active) == 1 else active


def unsupported_reason(peft_model) -> str | None:
    """Why ``MergedLora`` can't compute this PEFT model, or None if it can."""
    import torch
    from peft.tuners.lora import Linear, LoraLayer

    base_model = peft_model.get_base_model()
    if not hasattr(getattr(base_model, "model", None), "layers"):
        return f"{type(base_model).__name__} keeps no decoder layers at .model.layers"
    found = False
    for name, m in _walk(base_model):
        if isinstance(m, LoraLayer):
            base = m.get_base_layer()
            if type(m) is not Linear or type(base) is not torch.nn.Linear:
                return f"LoRA on a {type(base).__name__} layer ({name})"
            adapter = _adapter(m)
            if isinstance(adapter, list):
                return f"{len(adapter)} active LoRA adapters ({name})"
            variants = getattr(m, "lora_variant", {})  # older peft: none (DoRA only, as use_dora)
            if adapter in variants or m.use_dora.get(adapter):
                variant = variants.get(adapter)
                return f"a LoRA variant ({type(variant).__name__ if variant else 'DoRA'}, {name})"
            if getattr(m, "lora_bias", {}).get(adapter):
                return f"lora_bias ({name})"
            if m.merged:
                return f"an adapter already merged into the base weights ({name})"
            found = True
        elif type(m).__module__.startswith("peft."):
            return f"PEFT's {type(m).__name__} ({name})"
    return None if found else "no LoRA layers"


def _clone(module, swap: dict):
    """``module``'s tree with the modules in ``swap`` (by id) replaced: new module objects,
    the same tensors (tied weights stay tied)."""
    if id(module) in swap:
        return swap[id(module)]
    clone = copy.copy(module)
    clone.__dict__.pop("_compiled_call_impl", None)  # ``Module.compile`` wrapped the original's call
    clone._modules = {n: None if c is None else _clone(c, swap) for n, c in module._modules.items()}
    clone._parameters = dict(module._parameters)
    clone._buffers = dict(module._buffers)
    for name, value in vars(module).items():  # hooks added later to one must not run in the other
        if "_hooks" in name and isinstance(value, dict):
            clone.__dict__[name] = type(value)(value)
    return clone


class MergedLora:
    """``model``: the base model's tree for the engine, with merged linears of its own
    (see the module docstring). ``peft_model`` must pass ``unsupported_reason``."""

    def __init__(self, peft_model) -> None:
        import torch
        from peft.tuners.lora import LoraLayer

        base = peft_model.get_base_model()
        sources = [m for _, m in _walk(base) if isinstance(m, LoraLayer)]
        sources += [m for _, m in _walk(base.model.layers) if type(m) is torch.nn.Linear]
        self._pairs = []  # (the trained layer, its base linear, the engine's linear, its adapter or None)
        swap = {}
        for src in sources:
            lora = isinstance(src, LoraLayer)
            lin = src.get_base_layer() if lora else src
            own = torch.nn.utils.skip_init(torch.nn.Linear, lin.in_features, lin.out_features,
                                           bias=lin.bias is not None, device=lin.weight.device, dtype=lin.weight.dtype)
            own.requires_grad_(False)
            swap[id(src)] = own
            self._pairs.append((src, lin, own, _adapter(src) if lora else None))
        self.model = _clone(base, swap).eval()
        with torch.no_grad():  # frozen: the linears LoRA does not wrap are copied once
            for _, lin, own, adapter in self._pairs:
                if adapter is None:
                    own.weight.copy_(lin.weight)
                    if own.bias is not None:
                        own.bias.copy_(lin.bias)
        self.remerge()

    def remerge(self) -> None:
        """Write ``W0 + scaling * B @ A`` into the engine's LoRA-wrapped linears, in place:
        the storage the engine fused and its graphs read."""
        import torch

        with torch.no_grad():
            for src, lin, own, adapter in self._pairs:
                if adapter is None:
                    continue
                own.weight.copy_(lin.weight)
                own.weight.add_(src.get_delta_weight(adapter))
                if own.bias is not None:
                    own.bias.copy_(lin.bias)
