"""The peer: the same fine-tune in HuggingFace transformers on PyTorch (run by benchmarks/peer.py).

What a researcher who does not use this suite would write: all-MiniLM-L6-v2 (`BertModel`) with
dropout and a linear head on [CLS], AdamW (no decay on biases and LayerNorm, eps 1e-6) at 5e-5 with
10% linear warm-up then linear decay, one epoch over the given batches (each padded to its longest
member), then dev and test predictions in length-sorted batches of 64. bfloat16 runs use
`torch.autocast("cpu", torch.bfloat16)` (float32 weights), PyTorch's recommended CPU mixed precision.

It reads the examples and batches that benchmarks/peer.py prepared (`--prep`: NewsEmp's seed-0
split and the suite's own first-epoch batches, as example ids), the CSV itself and the model folder,
and prints one JSON object. It imports neither TensorFlow nor this suite.

    python benchmarks/peer_hf.py --prep=prep.json --model=<MiniLM folder> --precision=float32
"""

import argparse
import csv
import json
import os
import time


def f1_of(labels, predictions, positive=1):
    tp = sum(1 for y, p in zip(labels, predictions) if y == positive and p == positive)
    fp = sum(1 for y, p in zip(labels, predictions) if y != positive and p == positive)
    fn = sum(1 for y, p in zip(labels, predictions) if y == positive and p != positive)
    return 2 * tp / max(2 * tp + fp + fn, 1)


def main():
    start = time.perf_counter()
    parser = argparse.ArgumentParser()
    parser.add_argument("--prep", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--warmup_steps", type=int, default=20)
    args = parser.parse_args()

    import torch
    from transformers import BertModel, BertTokenizerFast, get_linear_schedule_with_warmup
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(args.prep) as f:
        prep = json.load(f)
    rows = {}
    with open(prep["csv"], newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows[row["message_id"]] = (row["essay"].strip(), int(row["empathy_bin"]))
    tokenizer = BertTokenizerFast.from_pretrained(args.model)
    encoder = BertModel.from_pretrained(args.model, add_pooling_layer=False,
                                        attn_implementation="sdpa")
    head = torch.nn.Linear(encoder.config.hidden_size, 2)
    torch.nn.init.trunc_normal_(head.weight, std=0.02)
    torch.nn.init.zeros_(head.bias)
    dropout = torch.nn.Dropout(0.1)
    max_length = prep["max_seq_length"]

    def batch_of(ids):
        texts = [rows[i][0] for i in ids]
        enc = tokenizer(texts, truncation=True, max_length=max_length, padding="longest",
                        return_tensors="pt")
        return enc, torch.tensor([rows[i][1] for i in ids])

    def logits_of(enc, train):
        with torch.autocast("cpu", dtype=torch.bfloat16,
                            enabled=args.precision == "mixed_bfloat16"):
            hidden = encoder(**enc).last_hidden_state[:, 0]
            return head(dropout(hidden) if train else hidden).float()

    decay, no_decay = [], []
    for name, p in list(encoder.named_parameters()) + list(head.named_parameters()):
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=5e-5, eps=1e-6)
    batches = prep["batches"]
    schedule = get_linear_schedule_with_warmup(optimizer, round(0.1 * len(batches)), len(batches))
    encoder.train()
    steady_tokens, steady_seconds = 0, 0.0
    train_start = time.perf_counter()
    for step, ids in enumerate(batches):
        step_start = time.perf_counter()
        enc, labels = batch_of(ids)
        loss = torch.nn.functional.cross_entropy(logits_of(enc, train=True), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step >= args.warmup_steps:
            steady_tokens += int(enc["attention_mask"].sum())
            steady_seconds += time.perf_counter() - step_start
    train_seconds = time.perf_counter() - train_start

    encoder.eval()

    def predict(ids):
        order = sorted(ids, key=lambda i: len(rows[i][0]))
        out = {}
        with torch.no_grad():
            for k in range(0, len(order), 64):
                chunk = order[k:k + 64]
                enc, _ = batch_of(chunk)
                for i, p in zip(chunk, logits_of(enc, train=False).argmax(-1).tolist()):
                    out[i] = p
        return [out[i] for i in ids]

    metrics = {}
    for split in ("dev", "test"):
        ids = prep[split]
        metrics[f"{split}_f1"] = f1_of([rows[i][1] for i in ids], predict(ids))
    evaluated = prep["dev"] + prep["test"]
    inference_start = time.perf_counter()   # a second pass: warm, as the suite's is timed
    predict(evaluated)
    inference_seconds = time.perf_counter() - inference_start
    print(json.dumps({
        "train_tokens_per_s": steady_tokens / max(steady_seconds, 1e-9),
        "train_seconds": train_seconds, "steps": len(batches),
        "inference_seq_per_s": len(evaluated) / inference_seconds,
        "in_process_seconds": time.perf_counter() - start,
        "threads": torch.get_num_threads(), "torch": torch.__version__, **metrics}))


if __name__ == "__main__":
    main()
