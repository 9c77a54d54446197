"""PyTorch side of bench/vs_torch.ts: the same training step on the CPU.

Started by vs_torch.ts with a directory holding `weights.safetensors` (our
model's state dict) and `batch.safetensors` (x, y), plus the model's
description on the command line. Builds the same network in plain PyTorch
with torchvision's / Hugging Face's parameter names, loads the weights
strictly, then answers commands on stdin, one JSON line each on stdout:

  loss            -> {"loss": first loss, forward only, no update}
  step            -> {"loss": loss of one training step (forward, backward, update)}
  time K          -> {"ms": [K step times in milliseconds]}

Every step is forward + backward + optimizer update + reading the loss back
(`.item()`), as on our side. Threads: torch's default for the machine unless
--threads is given. `--device cuda` runs on the GPU in f32 with TF32 off.

`--model matmul` / `--model conv` time one op instead (the directory holds
`a`/`b` or `x`/`w` in `batch.safetensors`): `check I,J;...` answers the
product at those positions, `time K` K runs (each synchronised).
"""

import argparse
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    """Minimal safetensors reader (F32 and I32), no dependency beyond numpy."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "I32": np.int32, "I64": np.int64}[e["dtype"]]
        a, b = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dt).reshape(e["shape"]).copy())
    return out


# ---------------------------------------------------------------- ResNet (torchvision names)


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(out + idt)


class ResNet18(nn.Module):
    """torchvision's resnet18 with the CIFAR stem (3x3 stride-1 conv1, no max pool)."""

    def __init__(self, width, in_ch, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        cin = width
        for i, (mult, stride) in enumerate([(1, 1), (2, 2), (4, 2), (8, 2)]):
            planes = width * mult
            blocks = [BasicBlock(cin, planes, stride), BasicBlock(planes, planes, 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = planes
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ---------------------------------------------------------------- BERT (Hugging Face names)


class BertLayer(nn.Module):
    def __init__(self, h, heads, inter, p):
        super().__init__()
        self.heads, self.p = heads, p
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        for k in ("query", "key", "value"):
            setattr(self.attention.self, k, nn.Linear(h, h))
        self.attention.output = nn.Module()
        self.attention.output.dense = nn.Linear(h, h)
        self.attention.output.LayerNorm = nn.LayerNorm(h, eps=1e-12)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(h, inter)
        self.output = nn.Module()
        self.output.dense = nn.Linear(inter, h)
        self.output.LayerNorm = nn.LayerNorm(h, eps=1e-12)

    def forward(self, x, bias):
        B, T, H = x.shape
        s = self.attention.self
        split = lambda t: t.view(B, T, self.heads, H // self.heads).transpose(1, 2)
        q, k, v = split(s.query(x)), split(s.key(x)), split(s.value(x))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(H // self.heads) + bias, -1)
        att = F.dropout(att, self.p, self.training)
        ctx = (att @ v).transpose(1, 2).reshape(B, T, H)
        o = self.attention.output
        a = o.LayerNorm(F.dropout(o.dense(ctx), self.p, self.training) + x)
        m = F.gelu(self.intermediate.dense(a))
        return self.output.LayerNorm(F.dropout(self.output.dense(m), self.p, self.training) + a)


class BertForSequenceClassification(nn.Module):
    def __init__(self, vocab, h, layers, heads, inter, max_pos, classes, p=0.1):
        super().__init__()
        self.p = p
        self.bert = nn.Module()
        e = self.bert.embeddings = nn.Module()
        e.word_embeddings = nn.Embedding(vocab, h, padding_idx=0)
        e.position_embeddings = nn.Embedding(max_pos, h)
        e.token_type_embeddings = nn.Embedding(2, h)
        e.LayerNorm = nn.LayerNorm(h, eps=1e-12)
        self.bert.encoder = nn.Module()
        self.bert.encoder.layer = nn.ModuleList(
            [BertLayer(h, heads, inter, p) for _ in range(layers)]
        )
        self.bert.pooler = nn.Module()
        self.bert.pooler.dense = nn.Linear(h, h)
        self.classifier = nn.Linear(h, classes)

    def forward(self, x):
        ids, types, mask = x[:, 0].long(), x[:, 1].long(), x[:, 2]
        e = self.bert.embeddings
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        h = e.word_embeddings(ids) + e.token_type_embeddings(types) + e.position_embeddings(pos)
        h = F.dropout(e.LayerNorm(h), self.p, self.training)
        bias = ((1.0 - mask.float()) * torch.finfo(torch.float32).min)[:, None, None, :]
        for layer in self.bert.encoder.layer:
            h = layer(h, bias)
        pooled = torch.tanh(self.bert.pooler.dense(h[:, 0]))
        return self.classifier(F.dropout(pooled, self.p, self.training))


# ---------------------------------------------------------------- main


def blas():
    """Which libblas.so.3 Debian's torch loads: the generic one is ~15x slower than OpenBLAS."""
    import os
    path = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
    return os.path.realpath(path) if os.path.exists(path) else None


def hello():
    print(json.dumps({"ready": True, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "blas": blas(),
                      "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}),
          flush=True)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def op_loop(args, batch, dev):
    """matmul a @ b, or conv2d(x, w, padding=1): checked at given positions, then timed."""
    run = (lambda: batch["a"] @ batch["b"]) if args.model == "matmul" else (
        lambda: F.conv2d(batch["x"], batch["w"], padding=1))
    hello()
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "check":
            out = run().reshape(-1)
            idx = torch.tensor([int(i) for i in cmd[1].split(",")], device=dev)
            print(json.dumps({"values": out[idx].tolist()}), flush=True)
        elif cmd[0] == "time":
            ms = []
            for _ in range(int(cmd[1])):
                sync(dev)
                t = time.perf_counter()
                run()
                sync(dev)
                ms.append((time.perf_counter() - t) * 1000)
            print(json.dumps({"ms": ms}), flush=True)
        elif cmd[0] == "quit":
            break


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--model", required=True)  # resnet18 | bert-mini
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    batch = {k: v.to(dev) for k, v in read_safetensors(f"{args.dir}/batch.safetensors").items()}
    if args.model in ("matmul", "conv"):
        return op_loop(args, batch, dev)
    sd = read_safetensors(f"{args.dir}/weights.safetensors")
    x, y = batch["x"], batch["y"].long()
    if args.model == "resnet18":
        model = ResNet18(args.width, x.shape[1], sd["fc.weight"].shape[0])
        opt_fn = lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)
    elif args.model == "bert-mini":
        model = BertForSequenceClassification(
            vocab=sd["bert.embeddings.word_embeddings.weight"].shape[0],
            h=256,
            layers=4,
            heads=4,
            inter=1024,
            max_pos=sd["bert.embeddings.position_embeddings.weight"].shape[0],
            classes=sd["classifier.weight"].shape[0],
        )
        opt_fn = lambda p: torch.optim.AdamW(p, lr=1e-4, weight_decay=0.01)
    else:
        raise SystemExit(f"unknown model {args.model}")
    sd = {k: (v.long() if k.endswith("num_batches_tracked") else v) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.to(dev)
    opt = opt_fn(model.parameters())
    hello()

    def step():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "loss":
            # Forward only, no update: batch statistics for the ResNet (train mode), dropout
            # off for BERT (eval mode, which it has no batch norm to change).
            model.train(args.model == "resnet18")
            with torch.no_grad():
                loss = F.cross_entropy(model(x), y).item()
            print(json.dumps({"loss": loss}), flush=True)
        elif cmd[0] == "step":
            print(json.dumps({"loss": step()}), flush=True)
        elif cmd[0] == "time":
            ms = []
            for _ in range(int(cmd[1])):
                t = time.perf_counter()
                step()
                ms.append((time.perf_counter() - t) * 1000)
            print(json.dumps({"ms": ms}), flush=True)
        elif cmd[0] == "quit":
            break


if __name__ == "__main__":
    main()
