#!/usr/bin/env python3
"""A slua checkpoint directory -> GGUF with the same weights, for timing llama.cpp on them.

Usage: PYTHONPATH=<llama.cpp>/gguf-py python3 bench/families_to_gguf.py MODEL_DIR OUT.gguf

Reads config.json and model.safetensors (BF16, as sl_make_checkpoint --dtype bf16 writes them)
and writes a BF16 GGUF (1-D tensors in F32, as llama-quantize keeps them) for the families
llama.cpp names llama (Llama, Mistral, Mixtral: experts stacked per layer), gemma2, olmo2 and
phi3. Timing only: the vocabulary is a placeholder of vocab_size tokens (llama-bench never
tokenizes text), q/k rows are not permuted to llama.cpp's rotary layout and Gemma's norms are
not shifted by one; none of that changes the work done per token. Qwen3 and Gemma-3 have no
mapping here.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
import gguf

src, out = Path(sys.argv[1]), sys.argv[2]
cfg = json.load(open(src / "config.json"))
arch_name = cfg["architectures"][0]
ARCH = {
    "LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "MixtralForCausalLM": "llama",
    "Gemma2ForCausalLM": "gemma2", "Olmo2ForCausalLM": "olmo2", "Phi3ForCausalLM": "phi3",
}.get(arch_name)
if ARCH is None:
    sys.exit(f"families_to_gguf.py: no GGUF mapping for {arch_name}")

raw = np.memmap(src / "model.safetensors", dtype=np.uint8, mode="r")
hlen = struct.unpack("<Q", bytes(raw[:8]))[0]
header = json.loads(bytes(raw[8:8 + hlen]))
header.pop("__metadata__", None)
base = 8 + hlen


def load(name):
    """The tensor as stored (uint16 for BF16, lazily mapped), and its dtype name."""
    h = header[name]
    a, b = h["data_offsets"]
    if h["dtype"] != "BF16":
        sys.exit(f"families_to_gguf.py: {name} is {h['dtype']}; expected BF16")
    return np.frombuffer(raw[base + a: base + b], dtype=np.uint16).reshape(h["shape"])


def bf16_to_f32(u):
    return (u.astype(np.uint32) << 16).view(np.float32)


D, L = cfg["hidden_size"], cfg["num_hidden_layers"]
H = cfg["num_attention_heads"]
KV = cfg.get("num_key_value_heads", H)
hd = cfg.get("head_dim", D // H)
V = cfg["vocab_size"]

w = gguf.GGUFWriter(out, ARCH)
# a neutral name: llama.cpp keys tokenizer fix-ups on names such as "phi-3"
w.add_name("slua bench shape")
w.add_context_length(cfg.get("max_position_embeddings", 4096))
w.add_embedding_length(D)
w.add_block_count(L)
w.add_feed_forward_length(cfg["intermediate_size"])
w.add_head_count(H)
w.add_head_count_kv(KV)
w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
w.add_key_length(hd)
w.add_value_length(hd)
w.add_rope_dimension_count(hd)
w.add_vocab_size(V)
w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
if ARCH == "gemma2":
    w.add_sliding_window(cfg.get("sliding_window") or 4096)
    w.add_attn_logit_softcapping(cfg.get("attn_logit_softcapping") or 50.0)
    w.add_final_logit_softcapping(cfg.get("final_logit_softcapping") or 30.0)
if ARCH == "phi3":
    w.add_sliding_window(cfg.get("sliding_window") or 262144)
    omax = cfg.get("original_max_position_embeddings", 4096)
    w.add_rope_scaling_orig_ctx_len(omax)
    scale = cfg["max_position_embeddings"] / omax
    w.add_rope_scaling_attn_factors(1.0 if scale <= 1 else float(np.sqrt(1 + np.log(scale) / np.log(omax))))
if "num_local_experts" in cfg:
    w.add_expert_count(cfg["num_local_experts"])
    w.add_expert_used_count(cfg.get("num_experts_per_tok", 2))

# A placeholder SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then plain ones.
tokens, types = ["<unk>", "<s>", "</s>"], [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
tokens += [f"<0x{b:02X}>" for b in range(256)]
types += [gguf.TokenType.BYTE] * 256
tokens += [f"t{i}" for i in range(len(tokens), V)]
types += [gguf.TokenType.NORMAL] * (V - len(types))
w.add_tokenizer_model("llama")
w.add_token_list(tokens)
w.add_token_scores([0.0] * V)
w.add_token_types(types)
w.add_bos_token_id(1)
w.add_eos_token_id(2)
w.add_add_bos_token(True)

names = {"model.embed_tokens.weight": "token_embd", "model.norm.weight": "output_norm", "lm_head.weight": "output"}
per_layer = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.qkv_proj": "attn_qkv",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    "mlp.gate_up_proj": "ffn_up", "block_sparse_moe.gate": "ffn_gate_inp",
    "post_feedforward_layernorm": "post_ffw_norm", "pre_feedforward_layernorm": "ffn_norm",
}
# post_attention_layernorm is the FFN's pre-norm in Llama-style blocks, a post-norm in Gemma-2/OLMo-2
per_layer["post_attention_layernorm"] = "post_attention_norm" if ARCH in ("gemma2", "olmo2") else "ffn_norm"
for i in range(L):
    for k, v in per_layer.items():
        names[f"model.layers.{i}.{k}.weight"] = f"blk.{i}.{v}.weight"

experts = {}  # (layer, gguf part) -> {expert: tensor}
for name in header:
    parts = name.split(".")
    if "experts" in parts:  # model.layers.i.block_sparse_moe.experts.e.wN.weight
        i, e, wn = int(parts[2]), int(parts[5]), parts[6]
        experts.setdefault((i, {"w1": "ffn_gate_exps", "w3": "ffn_up_exps", "w2": "ffn_down_exps"}[wn]), {})[e] = name
        continue
    if name not in names:
        sys.exit(f"families_to_gguf.py: unmapped tensor {name}")
    t = load(name)
    if t.ndim == 1:
        w.add_tensor(names[name] + ".weight" if "." not in names[name] else names[name], bf16_to_f32(t))
    else:
        w.add_tensor(names[name] + ".weight" if "." not in names[name] else names[name], t,
                     raw_dtype=gguf.GGMLQuantizationType.BF16)
for (i, part), by_e in sorted(experts.items()):
    stacked = np.stack([load(by_e[e]) for e in sorted(by_e)])
    w.add_tensor(f"blk.{i}.{part}.weight", stacked, raw_dtype=gguf.GGMLQuantizationType.BF16)

rs = cfg.get("rope_scaling") or {}
if ARCH == "phi3" and rs:
    w.add_tensor("rope_factors_long.weight", np.array(rs["long_factor"], dtype=np.float32))
    w.add_tensor("rope_factors_short.weight", np.array(rs["short_factor"], dtype=np.float32))

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file(progress=False)
w.close()
print("wrote", out)
