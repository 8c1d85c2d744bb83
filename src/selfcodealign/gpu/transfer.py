"""Host values onto the device without a wait: shared by the attention packing, the
runner and the engine (below all three, so they form a line)."""

from __future__ import annotations


def on_device(device, dtype, *lists):
    """Host lists as device tensors, one pinned copy for all (nothing waits for the device)."""
    import torch

    flat = torch.tensor([x for xs in lists for x in xs], dtype=dtype)
    if device.type == "cuda":
        flat = flat.pin_memory().to(device, non_blocking=True)
    return torch.split(flat, [len(xs) for xs in lists])
