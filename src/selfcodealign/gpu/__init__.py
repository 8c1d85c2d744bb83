"""Fast batched generation with transformers models on one GPU (runs on CPU too).

``Engine`` (engine.py) schedules requests over a static per-slot KV cache and replays
each decode step as a CUDA graph; ``Runner`` (model.py) runs the model's own modules over
that cache; sampling.py samples inside the graph with per-request seeds; stops.py decides
where a sequence ends; merged_lora.py gives it a LoRA policy's weights merged into
tensors of its own (GRPO's rollouts). ``selfcodealign.backends.hf`` puts it behind the
Backend interface (``backend.engine: continuous``). Importing this package needs torch.
"""

from selfcodealign.gpu.engine import Engine, Request, Result

__all__ = ["Engine", "Request", "Result"]
