"""Varlen attention for packed rows on GPU without the flash-attn package.

PyTorch (>= 2.10) ships FlashAttention's varlen kernel as
``torch.nn.attention.varlen.varlen_attn``. We register it with transformers under the
name ``sca_varlen``: it reads ``cu_seq_lens_q`` / ``max_length_q`` (the same keyword
arguments transformers' flash-attention path uses), so each packed example attends only
to itself with no mask tensor and no padding. Without those arguments (generation,
plain batches) it falls back to transformers' SDPA.

``avoid_cudnn_sdpa`` keeps SDPA off its cuDNN backend for training (a known NaN in its
backward on padded batches; see the function).
"""

from __future__ import annotations

import inspect

NAME = "sca_varlen"


def varlen_available() -> bool:
    try:
        import torch
        from torch.nn.attention import varlen  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def register() -> str:
    """Register ``sca_varlen`` with transformers; returns the name to pass as
    ``attn_implementation``."""
    import torch
    from torch.nn.attention.varlen import varlen_attn
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    params = inspect.signature(varlen_attn).parameters
    # The causal flag moved from ``is_causal`` (2.10/2.11) to ``window_size`` (2.12+).
    causal = {"is_causal": True} if "is_causal" in params else {"window_size": (-1, 0)}
    native_gqa = "enable_gqa" in params

    def forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kw):
        cu = kw.get("cu_seq_lens_q")
        if cu is None or query.shape[0] != 1:
            kw = {k: v for k, v in kw.items() if not k.startswith(("cu_seq_lens", "max_length"))}
            return sdpa_attention_forward(
                module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kw
            )
        # Flash kernels take 16-bit inputs only; under autocast the rotary embedding has
        # already promoted q and k to fp32.
        if query.dtype not in (torch.float16, torch.bfloat16):
            dt = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else torch.bfloat16
            query, key, value = query.to(dt), key.to(dt), value.to(dt)
        # (1, heads, tokens, dim) -> (tokens, heads, dim)
        q = query[0].transpose(0, 1)
        k = key[0].transpose(0, 1)
        v = value[0].transpose(0, 1)
        extra = {}
        if k.shape[1] != q.shape[1]:
            if native_gqa:
                extra["enable_gqa"] = True
            else:
                rep = q.shape[1] // k.shape[1]
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
        max_len = int(kw["max_length_q"])
        out = varlen_attn(q, k, v, cu, cu, max_len, max_len, scale=scaling, **causal, **extra)
        return out.unsqueeze(0), None  # (1, tokens, heads, dim)

    AttentionInterface.register(NAME, forward)
    return NAME


def avoid_cudnn_sdpa() -> bool:
    """Keep PyTorch's SDPA off its cuDNN backend for training on CUDA; returns whether it
    was switched off.

    The cuDNN backward kernel (the default backend on H100/H200 since torch 2.11) returns
    NaN query gradients when an explicit mask is passed, the sequence length is 64 past a
    multiple of 128, and a row's log-sum-exp is below ln(FLT_MAX) = -88.7 (pytorch issue
    196678; trl issue 7181). Qwen2.5 has an attention head whose every logit sits near
    -120, so any padded micro-batch of such a width gives NaN gradients with a finite
    loss: GRPO runs on an H100 skipped 3 of 20 steps for it. The memory-efficient and
    flash kernels, which SDPA uses instead, are clean on the same inputs."""
    import torch

    if not torch.cuda.is_available():
        return False
    torch.backends.cuda.enable_cudnn_sdp(False)
    return True
