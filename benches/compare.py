"""aiayn beside PyTorch on the same shapes, in f32 on the CPU: run by `benches/compare.sh`.

For each thread count, one long-lived `bench_compare` process times aiayn's side of each
workload on request (see `benches/workloads.rs` for the shapes), while this script times
PyTorch's in-process; the two are interleaved run by run, so that the load of a shared machine
falls on both alike. Medians are reported, with the ratio aiayn / PyTorch (above 1: aiayn is
slower), and each row's matrix-multiply GFLOP/s as a fraction of the same library's 512^3
product measured in the same run.

PyTorch runs in eval mode under `torch.no_grad()` (except the training step), with the
`nn.MultiheadAttention` fast path off; multi-head attention returns per-head weights as
aiayn's does.
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROWS = [
    "matmul-512",
    "softmax-512",
    "attention-128",
    "attention-512",
    "attention-2048",
    "multi_head-128",
    "multi_head-512",
    "multi_head-1024",
    "encoder_layer-128",
    "encoder_layer-512",
    "stacks-128",
    "decode_full-64",
    "decode_cached-64",
    "train_step-64",
    "fast_attention-512",
    "fast_multi_head-512",
    "blockwise_attention-4096",
    "fast_encoder_layer-512",
    "fast_stacks-128",
]
D_MODEL, H, D_FF = 512, 8, 2048
D_K = D_MODEL // H
PAD, BOS = 0, 1


def sinusoids(n, d):
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float32)[None, :]
    angle = pos / torch.pow(10000.0, i / d)
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe


class Model(nn.Module):
    """Shared embedding, sinusoidal positions, nn.Transformer (post-norm), tied generator."""

    def __init__(self, vocab, d_model, h, layers, d_ff, dropout):
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(vocab, d_model)
        self.pe = sinusoids(1024, d_model)
        self.transformer = nn.Transformer(
            d_model, h, layers, layers, d_ff, dropout=dropout, batch_first=True
        )
        self.dropout = nn.Dropout(dropout)

    def embed(self, ids):  # (B, n) -> (B, n, d_model)
        x = self.embedding(ids) * math.sqrt(self.d_model)
        return self.dropout(x + self.pe[: ids.shape[1]])

    def encode(self, src):
        return self.transformer.encoder(self.embed(src))

    def decode(self, tgt, memory):
        n = tgt.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(n)
        return self.transformer.decoder(self.embed(tgt), memory, tgt_mask=causal, tgt_is_causal=True)

    def generator(self, y):  # (B, n, d_model) -> (B, n, vocab)
        return F.log_softmax(y @ self.embedding.weight.T, dim=-1)

    def forward(self, src, tgt):
        return self.generator(self.decode(tgt, self.encode(src)))


def greedy_full(model, src, tokens):
    memory = model.encode(src)
    tgt = torch.tensor([[BOS]])
    for _ in range(tokens):
        y = model.decode(tgt, memory)  # the whole prefix again
        nxt = model.generator(y[:, -1:]).argmax(-1)
        tgt = torch.cat([tgt, nxt], dim=1)
    return tgt[0, 1:]


def greedy_cached(model, src, tokens):
    """Incremental decoding with per-layer key/value caches, on nn.Transformer's weights."""
    memory = model.encode(src)[0]  # (n_s, d)
    layers = model.transformer.decoder.layers
    d = model.d_model

    def heads(x):  # (m, d) -> (h, m, d_k)
        return x.view(x.shape[0], H, d // H).transpose(0, 1)

    def attend(q, k, v, mha):  # q (1, d), k/v (m, d) -> (1, d)
        w = torch.softmax(heads(q) @ heads(k).transpose(1, 2) / math.sqrt(d // H), dim=-1)
        out = (w @ heads(v)).transpose(0, 1).reshape(1, d)
        return F.linear(out, mha.out_proj.weight, mha.out_proj.bias)

    cross_kv = []
    for layer in layers:
        w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
        cross_kv.append((F.linear(memory, w[d : 2 * d], b[d : 2 * d]), F.linear(memory, w[2 * d :], b[2 * d :])))
    self_k = [torch.empty(0, d) for _ in layers]
    self_v = [torch.empty(0, d) for _ in layers]
    token, out = BOS, []
    for t in range(tokens):
        x = model.embedding.weight[token][None, :] * math.sqrt(d) + model.pe[t][None, :]  # (1, d)
        for i, layer in enumerate(layers):
            sa = layer.self_attn
            q, k, v = F.linear(x, sa.in_proj_weight, sa.in_proj_bias).split(d, dim=-1)
            self_k[i] = torch.cat([self_k[i], k])
            self_v[i] = torch.cat([self_v[i], v])
            x = layer.norm1(x + attend(q, self_k[i], self_v[i], sa))
            ca = layer.multihead_attn
            q = F.linear(x, ca.in_proj_weight[:d], ca.in_proj_bias[:d])
            x = layer.norm2(x + attend(q, cross_kv[i][0], cross_kv[i][1], ca))
            x = layer.norm3(x + layer.linear2(F.relu(layer.linear1(x))))
        x = model.transformer.decoder.norm(x)
        token = int(model.generator(x).argmax(-1))
        out.append(token)
    return out


def attention(q, k, v):
    weights = torch.softmax(q @ k.T / math.sqrt(q.shape[1]), dim=-1)  # (n, m)
    return weights @ v, weights


def build_torch(row, info):
    """The PyTorch closure for a workload, given what aiayn reported about its shapes."""
    kind, n = row.rsplit("-", 1)
    kind = kind.removeprefix("fast_")  # the fast rows time aiayn's fast path on the same workload
    n = int(n)
    torch.manual_seed(n)
    if kind == "matmul":
        a, b = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1
        return lambda: a @ b
    if kind == "softmax":
        x = torch.rand(n, n) * 2 - 1
        return lambda: torch.softmax(x, dim=-1)
    if kind == "attention":
        q, k, v = (torch.rand(n, D_K) * 2 - 1 for _ in range(3))
        return lambda: attention(q, k, v)
    if kind == "blockwise_attention":  # no weights: PyTorch runs its flash-attention CPU kernel
        q, k, v = ((torch.rand(n, D_K) * 2 - 1)[None] for _ in range(3))  # (1, n, d_k)
        return lambda: F.scaled_dot_product_attention(q, k, v)
    if kind == "multi_head":
        mha = nn.MultiheadAttention(D_MODEL, H, bias=False, batch_first=True).eval()
        x = torch.rand(1, n, D_MODEL) * 2 - 1
        return lambda: mha(x, x, x, need_weights=True, average_attn_weights=False)
    if kind == "encoder_layer":
        layer = nn.TransformerEncoderLayer(D_MODEL, H, D_FF, dropout=0.0, batch_first=True).eval()
        x = torch.rand(1, n, D_MODEL) * 2 - 1
        return lambda: layer(x)
    if kind in ("stacks", "decode_full", "decode_cached"):
        vocab = info["vocab"]
        model = Model(vocab, D_MODEL, H, 6, D_FF, 0.0).eval()
        if kind == "stacks":
            src = torch.randint(3, vocab, (1, n))
            tgt = torch.randint(3, vocab, (1, n))
            return lambda: model(src, tgt)
        src = torch.randint(3, vocab, (1, info["n_s"]))
        decode = greedy_full if kind == "decode_full" else greedy_cached
        return lambda: decode(model, src, n)
    if kind == "train_step":
        d, vocab = info["d_model"], info["vocab"]
        model = Model(vocab, d, info["h"], info["layers"], 4 * d, 0.1).train()
        src = torch.randint(3, vocab, (info["batch"], info["n_s"]))
        tgt_in = torch.randint(3, vocab, (info["batch"], info["n_t"]))
        tgt_out = torch.randint(3, vocab, (info["batch"], info["n_t"]))
        adam = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
        loss_fn = nn.NLLLoss(reduction="sum", ignore_index=PAD)

        def step():
            with torch.enable_grad():
                log_p = model(src, tgt_in)  # (B, n_t, vocab)
                flat = log_p.reshape(-1, vocab)
                target = tgt_out.reshape(-1)
                # label smoothing 0.1 over the vocabulary, as aiayn's loss
                loss = 0.9 * loss_fn(flat, target) - 0.1 * flat.mean(-1).sum()
                adam.zero_grad()
                (loss / info["tgt_tokens"]).backward()
                adam.step()

        return step
    raise ValueError(row)


def flops(row, info):
    """Matrix-multiply floating-point operations (2 per multiply-add) of one run, or None."""
    kind, n = row.rsplit("-", 1)
    kind = kind.removeprefix("fast_")
    n, d, dff = int(n), D_MODEL, D_FF

    def mha(nq, nk, d=d):  # projections and the two attention products
        return 4 * nq * d * d + 4 * nk * d * d + 4 * nq * nk * d

    def ffn(m, d=d, dff=dff):
        return 4 * m * d * dff

    def enc(m, d=d, dff=dff):
        return mha(m, m, d) + ffn(m, d, dff)

    def dec(m, ns, d=d, dff=dff):
        return mha(m, m, d) + mha(m, ns, d) + ffn(m, d, dff)

    if kind == "matmul":
        return 2 * n**3
    if kind == "attention":
        return 4 * n * n * D_K
    if kind == "blockwise_attention":
        return 4 * n * n * D_K
    if kind == "multi_head":
        return mha(n, n)
    if kind == "encoder_layer":
        return enc(n)
    if kind == "stacks":
        return 6 * enc(n) + 6 * dec(n, n) + 2 * n * d * info["vocab"]
    if kind == "decode_full":
        ns, v = info["n_s"], info["vocab"]
        return 6 * enc(ns) + sum(6 * dec(t, ns) + 2 * d * v for t in range(1, n + 1))
    if kind == "decode_cached":
        ns, v = info["n_s"], info["vocab"]
        memory_kv = 6 * 4 * ns * d * d
        steps = sum(6 * (8 * d * d + 4 * t * d + 4 * d * d + 4 * ns * d + ffn(1)) + 2 * d * v for t in range(1, n + 1))
        return 6 * enc(ns) + memory_kv + steps
    if kind == "train_step":
        d, L, b, ns, nt = info["d_model"], info["layers"], info["batch"], info["n_s"], info["n_t"]
        forward = b * (L * enc(ns, d, 4 * d) + L * dec(nt, ns, d, 4 * d) + 2 * nt * d * info["vocab"])
        return 3 * forward  # backward is about twice the forward
    return None


class Aiayn:
    def __init__(self, binary, threads):
        self.proc = subprocess.Popen(
            [binary, str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, row, reps=1):
        self.proc.stdin.write(f"{row} {reps}\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if "error" in answer:
            raise SystemExit(f"bench_compare: {row}: {answer['error']}")
        return answer

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--aiayn", required=True, help="the bench_compare binary")
    p.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    p.add_argument("--rows", default=",".join(ROWS), help="workloads, comma-separated")
    p.add_argument("--budget", type=float, default=1.0, help="seconds per side and row")
    p.add_argument("--out", default="target/compare.json")
    args = p.parse_args()
    rows = args.rows.split(",")
    torch.backends.mha.set_fastpath_enabled(False)
    torch.set_grad_enabled(False)
    result = {"machine": machine(), "command": "benches/compare.sh", "runs": {}}
    torch_fns = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        aiayn = Aiayn(args.aiayn, threads)
        table = []
        numpy_a = np.random.default_rng(0).uniform(-1, 1, (512, 512)).astype(np.float32)
        numpy_times = []
        for row in rows:
            first = aiayn.ask(row)  # builds and warms aiayn's side, says the shapes
            info, warm_a = first["info"], first["seconds"][0]
            if row not in torch_fns:
                torch_fns[row] = build_torch(row, info)
            f = torch_fns[row]
            warm = timed(f)
            reps = max(3, min(25, int(args.budget / max(warm, warm_a, 1e-6))))
            t_torch, t_aiayn = [], []
            for r in range(reps):  # interleaved, alternating which goes first
                if row == "matmul-512":  # numpy's product too, in the same rounds
                    numpy_times.append(timed(lambda: numpy_a @ numpy_a))
                if r % 2 == 0:
                    t_torch.append(timed(f))
                    t_aiayn.append(aiayn.ask(row)["seconds"][0])
                else:
                    t_aiayn.append(aiayn.ask(row)["seconds"][0])
                    t_torch.append(timed(f))
            m_a, m_t = statistics.median(t_aiayn), statistics.median(t_torch)
            entry = {
                "row": row,
                "info": info,
                "reps": reps,
                "aiayn_s": m_a,
                "torch_s": m_t,
                "ratio": m_a / m_t,
                "flops": flops(row, info),
            }
            table.append(entry)
            print(f"  {threads} thread(s) {row:<22} aiayn {m_a * 1e3:10.3f} ms  torch {m_t * 1e3:10.3f} ms  ratio {m_a / m_t:6.2f}  ({reps} runs)", flush=True)
        aiayn.close()
        mm = next((e for e in table if e["row"] == "matmul-512"), None)
        peak = {}
        if numpy_times:
            peak["numpy"] = 2 * 512**3 / statistics.median(numpy_times) / 1e9
        if mm:
            peak["aiayn"] = mm["flops"] / mm["aiayn_s"] / 1e9
            peak["torch"] = mm["flops"] / mm["torch_s"] / 1e9
        for e in table:
            if e["flops"]:
                e["aiayn_gflops"] = e["flops"] / e["aiayn_s"] / 1e9
                e["torch_gflops"] = e["flops"] / e["torch_s"] / 1e9
                if mm:
                    e["aiayn_of_matmul"] = e["aiayn_gflops"] / peak["aiayn"]
                    e["torch_of_matmul"] = e["torch_gflops"] / peak["torch"]
        result["runs"][str(threads)] = {"matmul_512_gflops": peak, "rows": table}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print_table(result)
    print(f"written: {args.out}")


def print_table(result):
    print(f"\n{result['machine']['cpu']}, {result['machine']['nproc']} CPUs; torch {result['machine']['torch']}")
    for threads, run in result["runs"].items():
        peak = run["matmul_512_gflops"]
        print(f"\n{threads} thread(s); 512^3 matmul GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in peak.items()))
        print(f"{'workload':<22} {'aiayn ms':>10} {'torch ms':>10} {'ratio':>6} {'aiayn %mm':>9} {'torch %mm':>9}")
        for e in run["rows"]:
            fa = f"{100 * e['aiayn_of_matmul']:.0f}%" if "aiayn_of_matmul" in e else "-"
            ft = f"{100 * e['torch_of_matmul']:.0f}%" if "torch_of_matmul" in e else "-"
            print(f"{e['row']:<22} {e['aiayn_s'] * 1e3:10.3f} {e['torch_s'] * 1e3:10.3f} {e['ratio']:6.2f} {fa:>9} {ft:>9}")


if __name__ == "__main__":
    main()
