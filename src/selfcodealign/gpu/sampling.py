"""Token sampling with fixed shapes and no host round trip (safe inside a CUDA graph).

Randomness is counter-based: the noise for a request's token at position ``p`` is a hash
of (request seed, p, candidate rank), so a request's samples depend on its own seed and
not on which other requests share its batch or on any global generator state.

Sampling looks only at each row's ``candidates`` most likely tokens (temperature and
top-p are applied within them); with the usual settings (temperature <= 1, top-p < 1)
the mass outside the top 128 is negligible, and it spares a sort over the whole vocabulary
at every step. Temperature 0 is greedy.
"""

from __future__ import annotations

_MASK32 = 0xFFFFFFFF


def _mix32(x):
    # Multiply-xorshift rounds on values kept below 2**32, so every product fits in int64.
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x5BD1E995) & _MASK32
    return x ^ (x >> 16)


def fold_seed(seed: int) -> int:
    """Any Python int to the 31 bits the sampler hashes, every bit of the seed counting."""
    seed = int(seed)
    folded = 0
    while seed not in (0, -1):
        folded ^= seed & 0x7FFFFFFF
        seed >>= 31
    return folded ^ (0x5BD1E995 if seed == -1 else 0)


def uniform(seed, counter, width: int):
    """Uniform floats in (0, 1), shape [rows, width], from int64 ``seed`` and ``counter`` [rows]."""
    import torch

    rank = torch.arange(width, device=seed.device, dtype=torch.int64)
    x = _mix32((seed & 0x7FFFFFFF) * 0x9E3779B1 & _MASK32)
    x = _mix32((x ^ (counter & _MASK32)) * 0x85EBCA77 & _MASK32)
    x = _mix32((x[:, None] ^ (rank[None, :] * 0x27D4EB2F & _MASK32)) & _MASK32)
    return ((x >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


CHUNK = 128


def top_candidates(logits, k: int):
    """The ``k`` largest logits of each row (float32, sorted, largest first) and their
    token ids, from logits of any float dtype. Over a large vocabulary it goes in two
    stages, which reads the logits once instead of running a radix select over them: the
    ``k`` chunks of 128 tokens with the largest maxima hold every token of the top ``k``
    (a top-k token's chunk has a maximum at least the k-th largest value, and at most k
    chunks can), so the exact top ``k`` is found among their k x 128 tokens."""
    import torch

    rows, V = logits.shape
    n = V // CHUNK
    if n <= 2 * k:
        return logits.float().topk(k, dim=-1)
    main = logits[:, : n * CHUNK].view(rows, n, CHUNK)
    chunks = main.amax(-1).topk(k, dim=-1).indices  # [rows, k]
    within = torch.arange(CHUNK, device=logits.device)
    vals = main.gather(1, chunks[:, :, None].expand(rows, k, CHUNK)).reshape(rows, k * CHUNK)
    ids = (chunks[:, :, None] * CHUNK + within).reshape(rows, k * CHUNK)
    if V > n * CHUNK:  # the short last chunk: always a candidate
        vals = torch.cat([vals, logits[:, n * CHUNK :]], dim=1)
        ids = torch.cat([ids, torch.arange(n * CHUNK, V, device=logits.device).expand(rows, -1)], dim=1)
    top, j = vals.float().topk(k, dim=-1)
    return top, ids.gather(1, j)


def sample(logits, temperature, top_p, seed, counter, candidates: int = 128):
    """Next token per row of ``logits`` [rows, vocab] (any float dtype); per-row
    ``temperature``, ``top_p`` (float32), ``seed`` and ``counter`` (int64). Returns int64
    [rows]. Greedy rows take the lowest id among the largest logits, as ``argmax`` does."""
    import torch

    k = min(candidates, logits.shape[-1])
    vals, idx = top_candidates(logits, k)  # sorted, largest first
    t = temperature.clamp_min(1e-5)[:, None]
    probs = torch.softmax(vals / t, dim=-1)
    # Nucleus: keep the most likely tokens until their mass reaches top_p (always the first).
    keep = (probs.cumsum(-1) - probs) < top_p[:, None]
    logp = torch.where(keep, probs.clamp_min(1e-30).log(), torch.full_like(probs, float("-inf")))
    gumbel = -torch.log(-torch.log(uniform(seed, counter, k)))
    choice = (logp + gumbel).argmax(-1, keepdim=True)
    sampled = idx.gather(1, choice)[:, 0]
    greedy = torch.where(vals == vals[:, :1], idx, logits.shape[-1]).amin(-1)
    return torch.where(temperature > 0, sampled, greedy)
