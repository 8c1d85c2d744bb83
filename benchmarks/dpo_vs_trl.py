"""`train --objective dpo` (our loop) against TRL's DPOTrainer: same model, pairs, beta,
learning rate, batch, schedule and epochs. Prints each one's wall time per step and,
after training, the DPO loss and reward accuracy of both trained models on the same
pairs, measured the same way (the untrained model as the reference).

The pairs come from the real executed responses shipped with the repository
(data/responses-real-sample.jsonl.gz) through `select`. The model is the embedded
model's tokenizer with a small random decoder (``--hidden``, ``--layers``), so it runs on
a CPU; pass ``--model DIR`` for a real one on a GPU.

    python benchmarks/dpo_vs_trl.py [--model DIR] [--pairs N] [--epochs 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def make_pairs(path: Path, n: int) -> Path:
    from selfcodealign.config import ExecuteConfig, SelectConfig
    from selfcodealign.records import Executed
    from selfcodealign.stages.execute import ExecuteStage
    from selfcodealign.stages.select import select

    with gzip.open(REPO / "data" / "responses-real-sample.jsonl.gz", "rt") as f:
        executed = [Executed.model_validate_json(line) for line in f]
    sel = select(executed, SelectConfig(sanitize=False), ExecuteStage(ExecuteConfig()).counts_as_pass)
    out = path / "dataset.pairs.jsonl"
    out.write_text("".join(p.model_dump_json() + "\n" for p in sel.pairs[:n]))
    return out


def tiny_model(path: Path, hidden: int, layers: int) -> Path:
    import torch
    import transformers

    from selfcodealign.models import load_tokenizer, resolve_source

    tok = load_tokenizer(resolve_source(None))
    cfg = transformers.Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                                   num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=4096, eos_token_id=tok.eos_token_id,
                                   tie_word_embeddings=True)
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def evaluate(model_dir: str, base_dir: str, pairs_path: Path, max_len: int, beta: float) -> dict:
    """DPO loss and reward accuracy of ``model_dir`` on the pairs, ``base_dir`` the reference."""
    import torch

    from selfcodealign.train import dpo
    from selfcodealign.models import load_model, load_tokenizer, resolve_source

    tok = load_tokenizer(resolve_source(base_dir))
    data = dpo.load_pairs(pairs_path, tok, max_len)
    idx = [[i] for i in range(len(data.pairs))]
    lp = {}
    for name, d in (("ref", base_dir), ("model", model_dir)):
        m = load_model(resolve_source(d), dtype="float32", attn="sdpa").eval()
        lp[name] = torch.tensor([list(dpo.reference_logps(m, [idx], data, torch.device("cpu"), 0, False)[i])
                                 for i in range(len(data.pairs))])
    z = beta * ((lp["model"][:, 0] - lp["ref"][:, 0]) - (lp["model"][:, 1] - lp["ref"][:, 1]))
    return {"pairs": len(data.pairs), "loss": float(-torch.nn.functional.logsigmoid(z).mean()),
            "reward_accuracy": float((z > 0).float().mean()), "margin": float(z.mean() / beta)}


def run_ours(model: str, pairs: Path, out: Path, a) -> dict:
    from selfcodealign.train.config import TrainConfig
    from selfcodealign.train.loop import train

    cfg = TrainConfig(model=model, objective="dpo", dpo_beta=a.beta, lr=a.lr, epochs=a.epochs,
                      examples_per_step=a.batch, max_len=a.max_len, token_budget=2 * a.max_len * a.batch,
                      warmup_ratio=0.0, schedule="linear", precision="fp32", seed=0)
    t0 = time.perf_counter()
    s = train(cfg, pairs, out)
    return {"seconds": time.perf_counter() - t0, "steps": s["steps"], "train_seconds": s["seconds"]}


def run_trl(model: str, pairs: Path, out: Path, a) -> dict:
    import datasets
    import transformers
    import trl

    rows = []
    for line in pairs.read_text().splitlines():
        p = json.loads(line)
        rows.append({"prompt": p["prompt"], "chosen": [{"role": "assistant", "content": p["chosen"]}],
                     "rejected": [{"role": "assistant", "content": p["rejected"]}]})
    tok = transformers.AutoTokenizer.from_pretrained(model)
    m = transformers.AutoModelForCausalLM.from_pretrained(model, dtype="float32")
    args = trl.DPOConfig(output_dir=str(out), beta=a.beta, learning_rate=a.lr, num_train_epochs=a.epochs,
                         per_device_train_batch_size=a.batch, gradient_accumulation_steps=1,
                         lr_scheduler_type="linear", warmup_steps=0, max_length=a.max_len, logging_steps=1,
                         report_to=[], use_cpu=True, seed=0, save_strategy="no", max_grad_norm=1.0,
                         weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999)
    t0 = time.perf_counter()
    trainer = trl.DPOTrainer(model=m, args=args, train_dataset=datasets.Dataset.from_list(rows),
                             processing_class=tok)
    setup = time.perf_counter() - t0
    trainer.train()
    trainer.save_model(str(out))
    tok.save_pretrained(str(out))
    return {"seconds": time.perf_counter() - t0, "setup_seconds": setup, "steps": trainer.state.global_step,
            "train_seconds": time.perf_counter() - t0 - setup, "trl": trl.__version__}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a model directory (default: a small random decoder, CPU)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=48)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--max-len", type=int, default=1536)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pairs = make_pairs(tmp, a.pairs)
        model = a.model or str(tiny_model(tmp / "base", a.hidden, a.layers))
        report = {"pairs": a.pairs, "batch": a.batch, "epochs": a.epochs, "lr": a.lr, "beta": a.beta}
        for name, fn in (("ours", run_ours), ("trl", run_trl)):
            report[name] = fn(model, pairs, tmp / name, a)
            report[name].update(evaluate(str(tmp / name), model, pairs, a.max_len, a.beta))
            r = report[name]
            print(f"{name:>4}: {r['steps']} steps in {r['train_seconds']:.1f} s "
                  f"({r['train_seconds'] / max(r['steps'], 1):.2f} s a step); after training on its "
                  f"{r['pairs']} pairs: DPO loss {r['loss']:.4f}, reward accuracy {r['reward_accuracy']:.2f}, "
                  f"margin {r['margin']:.2f}", flush=True)
        base = evaluate(model, model, pairs, a.max_len, a.beta)
        print(f"untrained: DPO loss {base['loss']:.4f}; ours/TRL time per step "
              f"{(report['ours']['train_seconds'] / report['ours']['steps']) / (report['trl']['train_seconds'] / report['trl']['steps']):.2f}")
    if a.out:
        a.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
