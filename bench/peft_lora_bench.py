"""Hugging Face PEFT + PyTorch reference for bench/finetune_bench.sh.

Loads a llama-family GGUF (SmolLM2-135M-Instruct by default, see
scripts/fetch-smollm2.sh) into a transformers LlamaForCausalLM in float32, wraps it
with a PEFT LoRA adapter and times AdamW steps on B x T token windows of real text:
the same work as `toy finetune -r R --lora-targets q,v --batch B -c T`.

  PY bench/peft_lora_bench.py -m MODEL.gguf --data TEXT --toy build/toy \\
      [--batch 4] [--ctx 256] [--steps 5] [--warmup 1] [--rank 8] [--targets q,v] \\
      [--threads 2] [--verify-logits]

PY is a Python with torch, transformers, peft and gguf: bench/peft_venv.sh makes
one (Debian's torch, or a recent PyPI torch) and prints its interpreter.

The GGUF is read with `gguf` (llama.cpp's gguf-py), whose quants module dequantizes
Q4_1/Q8_0 blocks to float32 exactly as llama.cpp does. `toy` is used for the two
things the model file alone cannot give without another tokenizer implementation:
token ids of the training text (`toy tokenize`) and, with --verify-logits, the
reference logits that the converted model must reproduce (`toy logits`).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

# PyTorch parallelises each op over its own (OpenMP) threads. An OpenBLAS-backed
# torch (Debian's) would start OpenBLAS threads inside those as well, and on 2 cores
# the two pools spin against each other (5x slower, bench/pytorch_train_bench.py).
# The environment has to be set before torch loads OpenBLAS; --blas-threads
# overrides it for the comparison.
def _early_blas_threads():
    for i, a in enumerate(sys.argv):
        if a == "--blas-threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--blas-threads="):
            return a.split("=", 1)[1]
    return "1"


os.environ["OPENBLAS_NUM_THREADS"] = _early_blas_threads()

import numpy as np  # noqa: E402
import torch  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def peak_rss_mib():
    # ru_maxrss is in KiB on Linux: the high-water mark of this process so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def hwm_mib():
    # VmHWM is the same high-water mark, but resettable (reset_hwm), so the
    # training phase can be measured apart from loading.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_hwm():
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def torch_blas_info():
    cfg = torch.__config__.show()
    return cfg.split("BLAS_INFO=")[1].split(",")[0] if "BLAS_INFO=" in cfg else "?"


def loaded_blas():
    # torch.__config__ says BLAS_INFO=generic for Debian's build, which links
    # libblas.so.3 and gets whatever the alternatives system points at; the
    # libraries mapped into the process say what actually runs.
    with open("/proc/self/maps") as f:
        libs = {os.path.basename(l.split()[-1]) for l in f if ".so" in l}
    found = sorted(l for l in libs if any(k in l.lower() for k in ("openblas", "mkl", "blis", "libblas")))
    return ", ".join(found) or "none"


# --------------------------------------------------------------------------- GGUF


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def unpermute_rope_rows(w, n_head):
    """Undo llama.cpp's convert_hf_to_gguf.py `permute` of attn_q / attn_k rows.

    HF llama applies RoPE with rotate_half: within each head, dimension i pairs with
    i + head_dim/2. ggml's normal RoPE pairs adjacent dimensions (2i, 2i+1), so the
    converter reorders each head's rows from [first half | second half] to
    interleaved: reshape(n_head, 2, hd/2, C).swapaxes(1, 2). The inverse reshapes
    the interleaved rows as (n_head, hd/2, 2, C) and swaps back; then the HF model
    with rotate_half computes exactly the function that ggml computed.
    (For K, n_head is the number of KV heads.)
    """
    rows, cols = w.shape
    hd = rows // n_head
    return w.reshape(n_head, hd // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def load_gguf_llama(path):
    """A float32 LlamaForCausalLM holding the (dequantized) weights of a llama GGUF."""
    import gguf
    from gguf.quants import dequantize
    from transformers import LlamaConfig, LlamaForCausalLM

    reader = gguf.GGUFReader(path)
    arch = field(reader, "general.architecture")
    if arch != "llama":
        sys.exit(f"{path}: general.architecture is {arch!r}; this script converts llama only")
    kv = lambda k, d=None: field(reader, f"llama.{k}", d)  # noqa: E731
    tensors = {t.name: t for t in reader.tensors}
    n_embd, n_head = int(kv("embedding_length")), int(kv("attention.head_count"))
    n_head_kv = int(kv("attention.head_count_kv", n_head))
    n_vocab = int(tensors["token_embd.weight"].shape[1])
    tied = "output.weight" not in tensors
    cfg = LlamaConfig(
        vocab_size=n_vocab,
        hidden_size=n_embd,
        intermediate_size=int(kv("feed_forward_length")),
        num_hidden_layers=int(kv("block_count")),
        num_attention_heads=n_head,
        num_key_value_heads=n_head_kv,
        max_position_embeddings=int(kv("context_length", 2048)),
        rms_norm_eps=float(kv("attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=float(kv("rope.freq_base", 10000.0)),
        tie_word_embeddings=tied,
        bos_token_id=int(field(reader, "tokenizer.ggml.bos_token_id", 1)),
        eos_token_id=int(field(reader, "tokenizer.ggml.eos_token_id", 2)),
        hidden_act="silu",
        attention_bias=False,
    )
    if kv("rope.scaling.type") not in (None, "none"):
        sys.exit(f"{path}: RoPE scaling is not converted by this script")

    # Skip the random initialisation (seconds of CPU for 135M parameters) and copy
    # each tensor into its parameter as it is dequantized, so loading holds one
    # float32 copy of the model plus one tensor, not a whole second state dict.
    try:
        from transformers.initialization import no_init_weights  # transformers >= 5
    except ImportError:
        from transformers.modeling_utils import no_init_weights  # 4.x

    with no_init_weights():
        model = LlamaForCausalLM(cfg)
    model.float()
    params = dict(model.named_parameters())

    names = {
        "attn_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    plan = [("token_embd.weight", "model.embed_tokens.weight"), ("output_norm.weight", "model.norm.weight")]
    if not tied:
        plan.append(("output.weight", "lm_head.weight"))
    for i in range(cfg.num_hidden_layers):
        plan += [(f"blk.{i}.{g}.weight", f"model.layers.{i}.{h}.weight") for g, h in names.items()]
    for g, h in plan:
        t = tensors.get(g)
        if t is None:
            sys.exit(f"{path}: tensor {g} is missing")
        # gguf's arrays are ggml's ne reversed: (rows, bytes per row) for quantized
        # types; dequantize returns the float rows (rows, ne[0]).
        w = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        w = w.reshape(tuple(int(d) for d in reversed(t.shape)))
        if ".attn_q." in g:
            w = unpermute_rope_rows(w, n_head)
        elif ".attn_k." in g:
            w = unpermute_rope_rows(w, n_head_kv)
        dst = params.pop(h)
        if tuple(dst.shape) != w.shape:
            sys.exit(f"{path}: {g} has shape {w.shape}, the model expects {tuple(dst.shape)} for {h}")
        with torch.no_grad():
            # F32 tensors come back as read-only views of the mapped file; copy those
            # (small: norms) rather than hand torch a non-writable array.
            w = np.ascontiguousarray(w) if w.flags.writeable else w.copy()
            dst.copy_(torch.from_numpy(w))
    if tied:
        model.tie_weights()  # lm_head.weight is embed_tokens.weight (one tensor)
        params.pop("lm_head.weight", None)
    if params:
        sys.exit(f"{path}: no GGUF tensor for {sorted(params)}")
    return model, cfg


# --------------------------------------------------------------------------- toy


def toy_tokenize(toy, model_path, text_path):
    out = subprocess.run([toy, "tokenize", "-m", model_path, "-f", text_path], check=True, capture_output=True, text=True)
    return np.array(out.stdout.split(), dtype=np.int64)


def verify_logits(toy, model_path, model, ids, threads):
    """Max |HF - toy| over the logits of a prompt; toy's are exact f32 arithmetic."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "toy.f32")
        subprocess.run(
            [toy, "logits", "-m", model_path, "--tokens", ",".join(map(str, ids)), "-o", out, "-t", str(threads)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        ref = np.fromfile(out, dtype=np.float32).reshape(len(ids), -1)
    with torch.no_grad():
        hf = model(torch.tensor([ids])).logits[0].float().numpy()
    diff = np.abs(hf - ref)
    scale = np.abs(ref).max()
    agree = (hf.argmax(-1) == ref.argmax(-1)).mean()
    log(
        f"logits check over {len(ids)} tokens: max |HF - toy| {diff.max():.3e}, mean {diff.mean():.3e}, "
        f"max |toy| {scale:.2f} (relative {diff.max() / scale:.2e}), argmax agreement {agree * 100:.1f}%"
    )
    return diff.max(), diff.max() / scale


# --------------------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model", required=True, help="llama GGUF (any type gguf-py can dequantize)")
    p.add_argument("--data", required=True, help="training text")
    p.add_argument("--toy", required=True, help="the toy binary (tokenizer and the logits reference)")
    p.add_argument("-b", "--batch", type=int, default=4)
    p.add_argument("-c", "--ctx", type=int, default=256, help="tokens per row T")
    p.add_argument("--steps", type=int, default=5, help="timed optimizer steps (0: load / verify only)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (allocator, first touch)")
    p.add_argument("-r", "--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument(
        "--targets",
        default="q,v",
        help="q,k,v,o,gate,up,down (toy's names), PEFT's q_proj,... or all-linear",
    )
    p.add_argument("-t", "--threads", type=int, default=2)
    p.add_argument("--blas-threads", default="1", help="OPENBLAS_NUM_THREADS (read before torch loads)")
    p.add_argument("--attn", default=None, help="transformers attn_implementation: eager or sdpa")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--verify-logits", action="store_true", help="compare the converted model's logits with toy's")
    p.add_argument("--verify-tokens", type=int, default=64)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    import peft
    import transformers
    from peft import LoraConfig, get_peft_model

    log(
        f"torch {torch.__version__} (BLAS_INFO {torch_blas_info()}, libraries mapped: {loaded_blas()}; "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}), transformers {transformers.__version__}, "
        f"peft {peft.__version__}, {args.threads} threads"
    )

    t0 = time.time()
    model, cfg = load_gguf_llama(args.model)
    if args.attn:
        model.config._attn_implementation = args.attn
    log(
        f"loaded {args.model}: {cfg.num_hidden_layers} layers, n_embd {cfg.hidden_size}, "
        f"{cfg.num_attention_heads}/{cfg.num_key_value_heads} heads, n_ff {cfg.intermediate_size}, "
        f"vocab {cfg.vocab_size}, tied {cfg.tie_word_embeddings}, "
        f"attention {getattr(model.config, '_attn_implementation', 'eager')} "
        f"({time.time() - t0:.1f} s, peak RSS {peak_rss_mib():.0f} MiB)"
    )

    ids = toy_tokenize(args.toy, args.model, args.data)
    log(f"{args.data}: {len(ids)} tokens")
    if ids.max() >= cfg.vocab_size or ids.min() < 0:
        sys.exit("token ids out of the model's vocabulary")

    if args.verify_logits:
        model.eval()
        verify_logits(args.toy, args.model, model, [int(i) for i in ids[: args.verify_tokens]], args.threads)

    toy_names = {
        "q": "q_proj",
        "k": "k_proj",
        "v": "v_proj",
        "o": "o_proj",
        "gate": "gate_proj",
        "up": "up_proj",
        "down": "down_proj",
    }
    if args.targets == "all-linear":
        targets = list(toy_names.values())
    else:
        targets = [toy_names.get(t.strip(), t.strip()) for t in args.targets.split(",") if t.strip()]
    lora = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=0.0,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"LoRA r={args.rank} alpha={args.alpha:g} on {','.join(targets)}: {trainable} trainable parameters")
    if args.steps <= 0:
        print(f"peft: peak_rss_mib {peak_rss_mib():.0f}")
        return

    params = [p for p in model.parameters() if p.requires_grad]
    # toy finetune's defaults: AdamW betas 0.9/0.999, eps 1e-8, no decay, clip at 1.
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    model.train()
    rng = np.random.default_rng(args.seed)
    B, T = args.batch, args.ctx
    if len(ids) < T + 2:
        sys.exit(f"{args.data} has {len(ids)} tokens, fewer than a row of --ctx {T}")
    ids_t = torch.from_numpy(ids)

    def step():
        # B random windows of T inputs and their T next tokens, like toy's sampler.
        starts = rng.integers(0, len(ids) - T - 1, size=B)
        x = torch.stack([ids_t[s : s + T] for s in starts])
        y = torch.stack([ids_t[s + 1 : s + T + 1] for s in starts])
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    load_peak = peak_rss_mib()
    reset_hwm()
    for i in range(args.warmup):
        t = time.time()
        loss = step()
        log(f"warm-up step {i + 1}: loss {loss:.4f}, {time.time() - t:.2f} s")
    # Wall time is the measure; the process's CPU time beside it shows how much of
    # the 2 cores it got (on a shared machine, CPU s / wall s well under the
    # thread count means the wall time was stretched by other processes).
    times, cpu = [], []
    for i in range(args.steps):
        t, c = time.time(), time.process_time()
        loss = step()
        times.append(time.time() - t)
        cpu.append(time.process_time() - c)
        log(f"step {i + 1}: loss {loss:.4f}, {times[-1]:.2f} s, {cpu[-1]:.2f} CPU s")
    total = sum(times)
    tps = args.steps * B * T / total
    print(
        f"peft: steps {args.steps} batch {B} ctx {T} loss {loss:.4f} tokens_per_s {tps:.1f} "
        f"s_per_step {total / args.steps:.2f} best_s_per_step {min(times):.2f} "
        f"cpu_s_per_step {sum(cpu) / args.steps:.2f} peak_rss_mib {peak_rss_mib():.0f} "
        f"load_peak_rss_mib {load_peak:.0f} train_peak_rss_mib {hwm_mib():.0f}"
    )


if __name__ == "__main__":
    main()
