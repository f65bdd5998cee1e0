#!/usr/bin/env python3
"""Float64 reference forward pass (numpy) for an hf-tiny fixture.

Prints, per layer, how far HF's float32 golden values (golden/logit_lens.json) are from a float64
evaluation of the same weights. Used to tell float32 rounding noise in the goldens apart from
real disagreements. Needs numpy (Debian: python3-numpy); not part of the test suite.

    python3 scripts/reference_forward.py tests/data/hf-tiny/tiny-qwen2
"""
import json
import struct
import sys

import numpy as np


def load_safetensors(path):
    raw = open(path, "rb").read()
    hlen = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(raw[base + b:base + e], dtype=np.float32).reshape(t["shape"]).astype(np.float64)
    return out


def main(model_dir):
    cfg = json.load(open(model_dir + "/config.json"))
    gold = json.load(open(model_dir + "/golden/logit_lens.json"))
    W = load_safetensors(model_dir + "/model.safetensors")
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV, N, eps = cfg["num_key_value_heads"], cfg["num_hidden_layers"], cfg["rms_norm_eps"]
    hd = cfg.get("head_dim") or D // H

    def rms(x, w):
        return w * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))

    ids = gold["prompt"]
    T = len(ids)
    x = W["model.embed_tokens.weight"][ids]
    inv = 1.0 / (cfg["rope_theta"] ** (np.arange(0, hd, 2) / hd))
    ang = np.outer(np.arange(T), inv)
    cos = np.cos(np.concatenate([ang, ang], 1))[:, None, :]
    sin = np.sin(np.concatenate([ang, ang], 1))[:, None, :]

    def rope(v):
        h = hd // 2
        return v * cos + np.concatenate([-v[..., h:], v[..., :h]], -1) * sin

    hidden = [x.copy()]
    for layer in range(N):
        p = f"model.layers.{layer}."

        def lin(name, v):
            bias = W.get(p + name + ".bias", 0.0)
            return v @ W[p + name + ".weight"].T + bias

        xn = rms(x, W[p + "input_layernorm.weight"])
        q = rope(lin("self_attn.q_proj", xn).reshape(T, H, hd))
        k = rope(lin("self_attn.k_proj", xn).reshape(T, KV, hd))
        v = lin("self_attn.v_proj", xn).reshape(T, KV, hd)
        att = np.zeros((T, H, hd))
        for h in range(H):
            g = h // (H // KV)
            s = q[:, h, :] @ k[:, g, :].T / np.sqrt(hd) + np.triu(np.full((T, T), -np.inf), 1)
            s = np.exp(s - s.max(1, keepdims=True))
            att[:, h, :] = (s / s.sum(1, keepdims=True)) @ v[:, g, :]
        x = x + lin("self_attn.o_proj", att.reshape(T, H * hd))
        xn = rms(x, W[p + "post_attention_layernorm.weight"])
        gate = lin("mlp.gate_proj", xn)
        x = x + lin("mlp.down_proj", gate / (1 + np.exp(-gate)) * lin("mlp.up_proj", xn))
        hidden.append(x.copy())
    hidden[-1] = rms(x, W["model.norm.weight"])
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    for layer in range(N + 1):
        h = hidden[layer][-1]
        gh = np.array(gold["per_layer_last_pos_hidden_state"][layer])
        gr = np.array(gold["per_layer_last_pos_logits_no_norm_as_used_by_hf_dola"][layer])
        print(f"layer {layer}: |HF - f64| hidden {np.abs(gh - h).max():.2e}  raw logits {np.abs(gr - head @ h).max():.2e}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
