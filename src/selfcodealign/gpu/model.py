"""A Hugging Face decoder run with our own KV cache: one slot per sequence.

Prefill and the plain decode path reuse the model's own modules (embedding, norms,
projections, MLP, rotary table), so numerics match transformers; only attention and the
cache are ours. The fused decode path (the default where the model allows it) computes
the same function with fewer kernels: a decode step at a few hundred rows is bound by
kernel count, not arithmetic. The cache is one static tensor
``[layers, slots, max_len, kv_heads, head_dim]`` per K and V, and every decode step has
fixed shapes, which is what lets a CUDA graph replay it. Attention (``gpu.attention``)
packs prompts without padding and reads only the cache positions each slot has.

Supported: the Llama family layout (Llama, Qwen2, Qwen3, Mistral without a sliding
window). Other architectures are refused by ``unsupported_reason``; the hf backend runs
them with its ``generate`` engine.
"""

from __future__ import annotations

from selfcodealign.gpu.transfer import on_device

SUPPORTED_TYPES = ("llama", "qwen2", "qwen3", "mistral")


def unsupported_reason(config) -> str | None:
    """Why the compact runner can't run this model, or None if it can."""
    mtype = getattr(config, "model_type", None)
    if mtype not in SUPPORTED_TYPES:
        return f"model type {mtype!r} (supported: {', '.join(SUPPORTED_TYPES)})"
    if any(t != "full_attention" for t in (getattr(config, "layer_types", None) or [])):
        return "sliding-window attention layers"
    if mtype == "mistral" and getattr(config, "sliding_window", None):
        return "sliding-window attention"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if isinstance(rope, dict) and rope.get("rope_type", rope.get("type")) in ("dynamic", "longrope"):
        # These rescale the rotary table with the sequence length: no static table.
        return f"rope type {rope.get('rope_type', rope.get('type'))!r}"
    return None


def _fusable(hf_model) -> bool:
    """Whether ``decode_fused`` computes this model: plain RMSNorm modules, SiLU gated
    MLP, no per-head q/k norms (Qwen3 keeps the unfused path)."""
    import torch.nn.functional as F

    if not hasattr(F, "rms_norm") or getattr(hf_model.config, "hidden_act", None) != "silu":
        return False
    layer = hf_model.model.layers[0]
    a, m = layer.self_attn, layer.mlp
    return (
        getattr(a, "q_norm", None) is None
        and all(hasattr(m, n) for n in ("gate_proj", "up_proj", "down_proj"))
        and all(hasattr(n, "variance_epsilon") for n in (layer.input_layernorm, layer.post_attention_layernorm))
    )


def _merge(linears):
    """Concatenate linear layers' weights (and biases) and re-point each layer at its slice.
    Returns ``(weight, bias)`` for ``F.linear``."""
    import torch

    weight = torch.cat([lin.weight for lin in linears])
    has_bias = [lin.bias is not None for lin in linears]
    bias = None
    if any(has_bias):
        bias = torch.cat([lin.bias if lin.bias is not None else weight.new_zeros(lin.out_features)
                          for lin in linears])
    start = 0
    for lin in linears:
        end = start + lin.out_features
        lin.weight.data = weight[start:end]
        if lin.bias is not None:
            lin.bias.data = bias[start:end]
        start = end
    return weight, bias


def _linear_add(x, inp, lin):
    """``x + lin(inp)`` with the addition inside the matrix product."""
    import torch

    out = torch.addmm(x, inp, lin.weight.t())
    return out if lin.bias is None else out + lin.bias


def _rotate_half(x):
    import torch

    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Runner:
    """Prefill and decode over a slot-indexed static KV cache."""

    def __init__(self, hf_model, *, slots: int, max_len: int, fused: bool | None = None,
                 flash: bool | None = None, triton: bool | None = None) -> None:
        import torch

        reason = unsupported_reason(hf_model.config)
        if reason:
            raise ValueError(f"compact runner does not support {reason}")
        inner = hf_model.model
        self.model = hf_model
        self.embed = inner.embed_tokens
        self.layers = list(inner.layers)
        self.norm = inner.norm
        self.lm_head = hf_model.lm_head
        attn = self.layers[0].self_attn
        cfg = hf_model.config
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = attn.head_dim
        self.scale = attn.scaling
        self.vocab = self.lm_head.out_features
        self.slots = slots
        self.max_len = max_len
        p = next(hf_model.parameters())
        self.device, self.dtype = p.device, p.dtype
        with torch.inference_mode():
            pos = torch.arange(max_len, device=self.device)[None]
            dummy = torch.zeros(1, device=self.device, dtype=self.dtype)
            cos, sin = inner.rotary_emb(dummy, pos)
            self.cos, self.sin = cos[0].contiguous(), sin[0].contiguous()  # [max_len, head_dim]
            shape = (len(self.layers), slots, max_len, self.kv_heads, self.head_dim)
            self.k = torch.zeros(shape, device=self.device, dtype=self.dtype)
            self.v = torch.zeros(shape, device=self.device, dtype=self.dtype)
        can_flash, can_triton = check_kernels(hf_model, triton_anywhere=bool(triton))
        self.flash = can_flash if flash is None else (flash and can_flash)
        can_fuse = _fusable(hf_model)
        self.fused = can_fuse if fused is None else (fused and can_fuse)
        if self.fused:
            self._merge_weights()
        # The Triton decode kernels read the fused q/k/v projection.
        self.triton = bool(self.fused and can_triton and triton is not False)

    def _merge_weights(self) -> None:
        """One q/k/v matrix and one gate/up matrix per layer. The model's own linear
        layers are re-pointed at slices of them, so no weight is stored twice and the
        model (prefill, plain ``generate``) computes what it did before."""
        import torch

        self.fused_layers = []
        with torch.no_grad():
            for layer in self.layers:
                a, m = layer.self_attn, layer.mlp
                qkv = _merge([a.q_proj, a.k_proj, a.v_proj])
                gate_up = _merge([m.gate_proj, m.up_proj])
                self.fused_layers.append((
                    layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon,
                    qkv, a.o_proj, layer.post_attention_layernorm.weight,
                    layer.post_attention_layernorm.variance_epsilon, gate_up, m.down_proj,
                ))
            # rotate_half(x) * sin == roll(x, half) * sin_signed: one kernel instead of three.
            h = self.head_dim // 2
            self.sin_signed = torch.cat((-self.sin[:, :h], self.sin[:, h:]), dim=-1)

    @staticmethod
    def cache_bytes_per_slot(config, max_len: int, dtype_bytes: int) -> int:
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return 2 * config.num_hidden_layers * config.num_key_value_heads * max_len * head_dim * dtype_bytes

    def _qkv(self, layer, h, shape_q, shape_kv):
        attn = layer.self_attn
        q = attn.q_proj(h).view(shape_q)
        k = attn.k_proj(h).view(shape_kv)
        v = attn.v_proj(h).view(shape_kv)
        if getattr(attn, "q_norm", None) is not None:  # Qwen3: per-head RMSNorm before rotary
            q = attn.q_norm(q)
            k = attn.k_norm(k)
        return q, k, v

    def prefill(self, prompts, slots, starts=None):
        """Run ``prompts`` (lists of token ids) into cache ``slots`` (one each), packed end
        to end; a prompt whose first ``starts[i]`` tokens are already in its slot's cache
        computes only the rest (at least its last token). Returns the logits of each
        prompt's last token [n, vocab] (the model's dtype), in the order given."""
        import torch

        from selfcodealign.gpu import attention

        dev, i64 = self.device, torch.int64
        starts = starts or [0] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: slots[i])  # the kernel reads rows in slot order
        host = [(slots[i], starts[i], len(prompts[i])) for i in order]
        seqs = attention.pack(host, self.max_len, self.slots, dev)
        N, L, kvh, hd = sum(e - a for _, a, e in host), self.max_len, self.kv_heads, self.head_dim
        flat = [t for i in order for t in prompts[i][starts[i]:]]
        positions = [t for _, a, e in host for t in range(a, e)]
        rows = [s * L + t for s, a, e in host for t in range(a, e)]
        last = [0] * len(prompts)  # each prompt's last row in the packed batch
        end = 0
        for i, (_, a, e) in zip(order, host):
            end += e - a
            last[i] = end - 1
        ids, pos, rows, last = on_device(dev, i64, flat, positions, rows, last)
        x = self.embed(ids)  # [N, D]
        cos, sin = self.cos[pos][:, None, :], self.sin[pos][:, None, :]  # [N, 1, hd]
        for i, layer in enumerate(self.layers):
            h = layer.input_layernorm(x)
            q, k, v = self._qkv(layer, h, (N, self.heads, hd), (N, kvh, hd))
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            self.k[i].view(-1, kvh * hd).index_copy_(0, rows, k.reshape(N, -1))
            self.v[i].view(-1, kvh * hd).index_copy_(0, rows, v.reshape(N, -1))
            o = attention.prefill(q, self.k[i], self.v[i], seqs, self.scale, self.flash)
            x = x + layer.self_attn.o_proj(o.reshape(N, -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.lm_head(self.norm(x[last]))

    def decode(self, tokens, pos, span: int):
        """One token for slots ``0..B-1``: ``tokens`` [B] at positions ``pos`` [B]; attends
        to at most the first ``span`` cache positions. Returns logits [B, vocab] (the model's dtype)."""
        import torch

        from selfcodealign.gpu import attention

        B = tokens.shape[0]
        L, kvh, hd = self.max_len, self.kv_heads, self.head_dim
        x = self.embed(tokens)  # [B, D]
        cos = self.cos[pos][:, None, :]  # [B, 1, hd], broadcast over heads
        sin = self.sin[pos][:, None, :]
        rows = torch.arange(B, device=tokens.device) * L + pos  # flat (slot, position) rows
        for i, layer in enumerate(self.layers):
            h = layer.input_layernorm(x)
            q, k, v = self._qkv(layer, h, (B, self.heads, hd), (B, kvh, hd))
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            kc, vc = self.k[i], self.v[i]
            kc.view(-1, kvh * hd).index_copy_(0, rows, k.reshape(B, -1))
            vc.view(-1, kvh * hd).index_copy_(0, rows, v.reshape(B, -1))
            o = attention.decode(q, kc, vc, pos, span, self.scale, self.flash)
            x = x + layer.self_attn.o_proj(o)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.lm_head(self.norm(x))

    def decode_fused(self, tokens, pos, span: int):
        """``decode`` with fewer, larger kernels: fused RMSNorm, merged projections,
        residual adds folded into the output matrix products. At small batch a decode
        step is bound by the number of kernels more than by their work."""
        import torch
        import torch.nn.functional as F

        from selfcodealign.gpu import attention, decode_kernels

        B = tokens.shape[0]
        L, kvh, hd, H = self.max_len, self.kv_heads, self.head_dim, self.heads
        x = self.embed(tokens)  # [B, D]
        D = x.shape[-1]
        if not self.triton:
            cos = self.cos[pos][:, None, :]
            sin = self.sin_signed[pos][:, None, :]
            rows = torch.arange(B, device=tokens.device) * L + pos
        nq = (H + kvh) * hd
        for i, (w1, e1, qkv, o_proj, w2, e2, gate_up, down) in enumerate(self.fused_layers):
            h = F.rms_norm(x, (D,), w1, e1)
            y = F.linear(h, *qkv)
            kc, vc = self.k[i], self.v[i]
            if self.triton:
                o = decode_kernels.attend(y, self.cos, self.sin, pos, kc, vc, H, self.scale)
            else:
                qk = y[:, :nq].view(B, H + kvh, hd)
                qk = torch.addcmul(qk * cos, qk.roll(hd // 2, dims=-1), sin)
                q, k = qk[:, :H], qk[:, H:]
                kc.view(-1, kvh * hd).index_copy_(0, rows, k.reshape(B, -1))
                vc.view(-1, kvh * hd).index_copy_(0, rows, y[:, nq:])
                o = attention.decode(q, kc, vc, pos, span, self.scale, self.flash)
            x = _linear_add(x, o, o_proj)
            gu = F.linear(F.rms_norm(x, (D,), w2, e2), *gate_up)
            x = _linear_add(x, F.silu(gu[:, : gu.shape[1] // 2]) * gu[:, gu.shape[1] // 2 :], down)
        return self.lm_head(self.norm(x))

    def copy_slots(self, src, dst, upto: int) -> None:
        """Copy cache rows of slots ``src`` to slots ``dst`` (first ``upto`` positions)."""
        self.k[:, dst, :upto] = self.k[:, src, :upto]
        self.v[:, dst, :upto] = self.v[:, src, :upto]


def check_kernels(hf_model, *, triton_anywhere: bool = False) -> tuple[bool, bool]:
    """Whether FlashAttention and the Triton decode kernels run this model's attention
    shape correctly here (each checked against the reference once per process, which
    also compiles them). Triton runs on CUDA, or in its interpreter when
    ``triton_anywhere`` (tests)."""
    import torch

    from selfcodealign.gpu import decode_kernels
    from selfcodealign.gpu.attention import flash_agrees, flash_available

    cfg = hf_model.config
    p = next(hf_model.parameters())
    dev, dtype = p.device, str(p.dtype).removeprefix("torch.")
    heads, kvh = cfg.num_attention_heads, cfg.num_key_value_heads
    hd = hf_model.model.layers[0].self_attn.head_dim
    flash = (flash_available(dev.type) and p.dtype in (torch.float16, torch.bfloat16)
             and flash_agrees(str(dev), dtype, heads, kvh, hd))
    triton = ((dev.type == "cuda" or triton_anywhere) and decode_kernels.available(dev.type)
              and decode_kernels.supports(heads, kvh, hd) and decode_kernels.agrees(str(dev), dtype, heads, kvh, hd))
    return bool(flash), bool(triton)
