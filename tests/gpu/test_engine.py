"""The engine against transformers' own generate, and its scheduling rules, on CPU."""

import pytest
import torch

from selfcodealign.gpu.engine import Engine, Request
from selfcodealign.gpu.sampling import sample


@pytest.mark.parametrize("kind", ["qwen2", "llama", "qwen3"])
def test_greedy_matches_generate(kind, tok, prompts, make_model, greedy_reference):
    # Fewer slots than requests and a sync interval that doesn't divide the budget:
    # slots are reused, moved down at the tail, and rounds end mid-sequence.
    model = make_model(kind)
    engine = Engine(model, tok, slots=4, max_len=64, sync_every=3)
    res = engine.generate([Request(p, 11, tag=i) for i, p in enumerate(prompts)])
    assert [r.tag for r in res] == list(range(len(prompts)))
    for p, r in zip(prompts, res):
        assert list(r.token_ids) == greedy_reference(model, p, 11)
        assert (r.finish_reason, r.completion_tokens, r.prompt_tokens) == ("length", 11, len(p))


def test_fused_and_plain_decode_agree(tok, prompts, make_model, greedy_reference):
    model = make_model("llama")
    before = greedy_reference(model, prompts[2], 10)
    reqs = [Request(p, 10, 1.0, 0.9, seed=i) for i, p in enumerate(prompts)]
    fused = Engine(model, tok, slots=4, max_len=64, fused=True)
    assert fused.runner.fused
    plain = Engine(model, tok, slots=4, max_len=64, fused=False)
    assert [r.token_ids for r in fused.generate(reqs)] == [r.token_ids for r in plain.generate(reqs)]
    # Merging the projections re-points the model's own layers: it computes as before.
    assert greedy_reference(model, prompts[2], 10) == before


def test_eos_ends_a_sequence(qwen2, tok, prompts, greedy_reference):
    ref = greedy_reference(qwen2, prompts[0], 12)
    eos = ref[5]
    cut = ref.index(eos)
    [r] = Engine(qwen2, tok, slots=2, max_len=64, eos_ids=[eos]).generate([Request(prompts[0], 12)])
    assert list(r.token_ids) == ref[:cut]
    assert (r.finish_reason, r.completion_tokens) == ("stop", cut)
    assert r.text == tok.decode(ref[:cut])


def test_stop_strings_cut_the_text(qwen2, tok, prompts):
    free = Engine(qwen2, tok, slots=3, max_len=64).generate([Request(p, 16) for p in prompts])
    stops = [r.text[9:11] for r in free]
    engine = Engine(qwen2, tok, slots=3, max_len=64, sync_every=4)
    res = engine.generate([Request(p, 16, stop=(s, "never")) for p, s in zip(prompts, stops)])
    for f, r, s in zip(free, res, stops):
        cut = f.text.find(s)
        assert r.text == f.text[:cut]
        assert r.finish_reason == "stop"
        # Counted through the token that completed the stop string, not the whole round.
        assert r.completion_tokens == cut + len(s)


def test_samples_follow_their_seed_not_the_batch(qwen2, tok, prompts):
    reqs = [Request(p, 14, temperature=1.0, top_p=0.9, seed=100 * i + s, tag=(i, s))
            for i, p in enumerate(prompts) for s in range(3)]
    a = Engine(qwen2, tok, slots=3, max_len=64, sync_every=2).generate(reqs)
    b = Engine(qwen2, tok, slots=16, max_len=64, sync_every=5).generate(reqs)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]
    assert [r.tag for r in a] == [r.tag for r in reqs]
    # Samples of one prompt differ from each other (different seeds).
    assert all(len({a[3 * i + s].token_ids for s in range(3)}) > 1 for i in range(len(prompts)))


def test_limits_and_errors(qwen2, tok, prompts):
    engine = Engine(qwen2, tok, slots=2, max_len=32)
    long = tuple(range(1, 33))
    res = engine.generate([Request(prompts[0], 1), Request(long, 4), Request(prompts[1], 500),
                           Request((), 4)])
    assert res[0].completion_tokens == 1 and res[0].finish_reason == "length"
    assert res[1].finish_reason == "error" and res[1].prompt_tokens == 32
    # A budget larger than the slot is cut to what fits.
    assert res[2].completion_tokens == 32 - len(prompts[1]) and res[2].finish_reason == "length"
    assert res[3].finish_reason == "error"


def test_sampling_distribution_and_greedy():
    torch.manual_seed(0)
    logits = torch.randn(1, 8).repeat(4000, 1)
    counter = torch.arange(4000)
    seed = torch.full((4000,), 7)
    one = torch.ones(4000)
    got = sample(logits, one, one, seed, counter, candidates=8)
    freq = torch.bincount(got, minlength=8).float() / 4000
    assert torch.allclose(freq, torch.softmax(logits[0], -1), atol=0.03)
    assert torch.equal(sample(logits, torch.zeros(4000), one, seed, counter), logits.argmax(-1))
    # A tiny top-p keeps only the most likely token.
    assert torch.equal(sample(logits, one, one * 1e-4, seed, counter), logits.argmax(-1))


def test_list_prompts_and_large_seeds(qwen2, tok, prompts):
    engine = Engine(qwen2, tok, slots=4, max_len=64)
    big = 2**40 + 3
    res = engine.generate([Request(list(prompts[0]), 10, 1.0, seed=s) for s in (3, big, big + 2**31)])
    # Seeds that differ only above bit 31 still give different samples.
    assert len({r.token_ids for r in res}) == 3
    assert all(r.completion_tokens == 10 for r in res)


def test_slots_moved_down_at_the_tail_keep_their_cache(qwen2, tok, prompts, greedy_reference):
    # Short requests free the low slots; once the queue is empty the two long ones (in
    # slots 2 and 3) move down to slots 0 and 1 and must continue from their own cache.
    budgets = [3, 3, 20, 20, 3, 3]
    engine = Engine(qwen2, tok, slots=4, max_len=64, sync_every=2)
    moves = []
    move = engine._move
    engine._move = lambda mv, upto: (moves.append(sorted(mv)), move(mv, upto))
    res = engine.generate([Request(p, b) for p, b in zip(prompts, budgets)])
    assert moves == [[(2, 0), (3, 1)]]
    for p, b, r in zip(prompts, budgets, res):
        assert list(r.token_ids) == greedy_reference(qwen2, p, b)


def test_fed_requests_run_next_and_match_a_plain_run(qwen2, tok, prompts, greedy_reference):
    """A request fed while the run goes on (a continuation) is served before the rest of
    the queue, gets the next index, and decodes as it would on its own."""
    from collections import deque

    engine = Engine(qwen2, tok, slots=1, max_len=64, sync_every=4)
    feed: deque = deque()
    order = []
    for i, r in engine.run([Request(p, 5, tag=k) for k, p in enumerate(prompts[:3])], feed=feed):
        order.append((i, r.tag))
        if r.tag == 0:
            feed.append(Request(prompts[0] + r.token_ids, 6, tag="more"))
        if r.tag == "more":
            more = r
    assert order == [(0, 0), (3, "more"), (1, 1), (2, 2)]
    first = greedy_reference(qwen2, prompts[0], 5)
    assert list(more.token_ids) == greedy_reference(qwen2, prompts[0] + tuple(first), 6)


def test_two_stage_top_candidates_are_the_exact_top_k():
    from selfcodealign.gpu.sampling import top_candidates

    g = torch.Generator().manual_seed(3)
    for V, dtype in ((151936, torch.bfloat16), (50000 + 77, torch.float32)):
        logits = (torch.randn(16, V, generator=g) * 3).to(dtype)
        logits[3, 777] = logits[3, 90001 % V] = 50.0  # a tie for the largest: argmax takes the lower id
        vals, idx = top_candidates(logits, 128)
        ref_vals, _ = logits.float().topk(128, dim=-1)
        assert torch.equal(vals, ref_vals)
        assert torch.equal(logits.float().gather(1, idx), vals)  # ids of those values
        assert idx.unique(dim=1).shape[1] == 128 or all(len(set(r.tolist())) == 128 for r in idx)
        ones = torch.ones(16)
        greedy = sample(logits, torch.zeros(16), ones, torch.arange(16), torch.zeros(16, dtype=torch.int64))
        assert torch.equal(greedy, logits.float().argmax(-1))


def test_prompts_start_from_a_cached_prefix(qwen2, tok, prompts, greedy_reference):
    """A prompt sharing a prefix with a running one copies its cache rows; a continuation
    (its prompt is the first prompt, its output and more) takes the freed slot that holds
    them. Either way only the rest is computed, and the tokens are those of a fresh run."""
    from collections import deque

    engine = Engine(qwen2, tok, slots=2, max_len=96, sync_every=3, prefix_block=4)
    copied, in_place = [], []
    prefill = engine._prefill
    engine._prefill = lambda batch, starts, copies: (
        copied.extend(copies), in_place.extend(s for s in starts if all(d != s for _, d, _ in copies)),
        prefill(batch, starts, copies))
    feed: deque = deque()
    shared = prompts[0] + prompts[1]
    # A runs long in slot 0; B (unrelated, short) frees slot 1, which C then fills with
    # A's prefix copied over; D takes C's freed slot in place.
    reqs = [Request(shared + prompts[2], 12, tag="A"), Request(prompts[5], 2, tag="B"),
            Request(shared + prompts[3], 3, tag="C"), Request(shared + prompts[4], 3, tag="D")]
    out = {}
    for _, r in engine.run(reqs, feed=feed):
        out[r.tag] = r
        if r.tag == "A":
            feed.append(Request(reqs[0].prompt_ids + r.token_ids + (7, 8), 5, tag="more"))
    for r in reqs:
        assert list(out[r.tag].token_ids) == greedy_reference(qwen2, r.prompt_ids, r.max_tokens), r.tag
    more_prompt = reqs[0].prompt_ids + out["A"].token_ids + (7, 8)
    assert list(out["more"].token_ids) == greedy_reference(qwen2, more_prompt, 5)
    assert copied and copied[0][:2] == (0, 1) and len(in_place) >= 2
    total = sum(len(r.prompt_ids) for r in reqs) + len(more_prompt)
    assert engine.stats.reused_tokens >= 3 * len(shared)
    assert engine.stats.prefill_tokens + engine.stats.reused_tokens == total


def test_prefix_index_finds_the_longest_held_prefix():
    from selfcodealign.gpu.prefix import PrefixIndex

    ix = PrefixIndex(block=4)
    ix.put(0, tuple(range(10)))
    ix.put(1, tuple(range(6)) + (99, 98))
    assert ix.longest(tuple(range(12))) == (0, 10)
    assert ix.longest(tuple(range(5)) + (50,)) in ((0, 5), (1, 5))
    assert ix.longest(tuple(range(5)) + (50,), prefer={1}) == (1, 5)
    assert ix.longest((1, 2, 3, 4, 5)) == (-1, 0)  # no slot holds its first block
    ix.drop(0)
    assert ix.longest(tuple(range(12))) == (1, 6)
    ix.put(1, (7, 7, 7))  # shorter than a block: nothing to find
    assert ix.longest(tuple(range(12))) == (-1, 0)


def test_triton_decode_matches_generate(triton_interpreter, tok, prompts, greedy_reference):
    """The engine with the Triton decode kernels (in Triton's interpreter here) decodes
    what ``generate`` does; the kernels need a head size of at least 32."""
    import transformers

    cfg = transformers.Qwen2Config(vocab_size=64, hidden_size=128, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    engine = Engine(model, tok, slots=4, max_len=64, sync_every=4, triton=True)
    assert engine.runner.triton
    res = engine.generate([Request(p, 8) for p in prompts])
    for p, r in zip(prompts, res):
        assert list(r.token_ids) == greedy_reference(model, p, 8)
