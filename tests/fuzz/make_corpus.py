#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/ from the repository's fixtures.

   python3 tests/fuzz/make_corpus.py BUILD_DIR   (BUILD_DIR/data holds the unpacked tokenizers)

Seeds are small on purpose (libFuzzer mutates small inputs fastest): real configs, headers of
the bundled checkpoints with a few bytes of data, each bundled tokenizer with its vocabulary cut
to a few hundred entries (every other component kept), the tokenizer test texts and id sequences.
Inputs that once crashed or hung stay in the same folders as regression inputs (crash-*, hang-*),
which this script never removes."""
import glob
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
VOCABS = ["llama2", "llama3", "qwen3", "smollm2", "stories260K"]  # the order of fuzz_util.c
LOAD_ONLY_VOCABS = ["gemma3", "deepseek_v3"]  # seeds for the loader only; the encode and stream targets keep five


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def safetensors(tensors, pad_to=8, offset_mod8=0, metadata=True):
    header, blob = {}, b""
    if metadata:
        header["__metadata__"] = {"format": "pt"}
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    while (8 + len(h)) % pad_to != offset_mod8:
        h += b" "
    return struct.pack("<Q", len(h)) + h + blob


def safetensors_seeds(build):
    f32 = lambda n: struct.pack("<%df" % n, *[0.5 * i for i in range(n)])
    put("safetensors", safetensors([("a", "F32", [2, 3], f32(6))]))
    put("safetensors", safetensors([("w", "BF16", [4], b"\x80\x3f" * 4), ("b", "F16", [2], b"\x00\x3c" * 2),
                                    ("i", "I64", [1], b"\x01" + b"\x00" * 7)], offset_mod8=3))
    put("safetensors", safetensors([("e", "F32", [0], b""), ("s", "U8", [], b"\x07")], metadata=False))
    put("safetensors", safetensors([("x", "F8_E4M3", [2, 2, 2], b"\x11" * 8), ("y", "BOOL", [3], b"\x01\x00\x01")]))
    # the bundled checkpoints' real headers, each tensor cut to its first elements
    for path in ["models/stories260K/model.safetensors", "tests/data/hf-tiny/tiny-qwen2/model.safetensors"]:
        raw = open(os.path.join(ROOT, path), "rb").read()
        hlen = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + hlen])
        tensors = []
        for name, t in list(header.items())[:6]:
            if name == "__metadata__":
                continue
            tensors.append((name, t["dtype"], [2], raw[8 + hlen + t["data_offsets"][0]:][:8]))
        put("safetensors", safetensors(tensors))


def config_seeds(build):
    files = glob.glob(os.path.join(ROOT, "tests/data/hf-tiny/*/config.json"))
    files += glob.glob(os.path.join(ROOT, "tests/data/hf-tiny/*/generation_config.json"))
    files += glob.glob(os.path.join(ROOT, "models/*/config.json")) + glob.glob(os.path.join(ROOT, "bench/configs/*.json"))
    for f in files:
        put("config", open(f, "rb").read())
    base = json.load(open(os.path.join(ROOT, "models/stories260K/config.json")))
    variants = [
        {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192}},
        {"rope_scaling": {"type": "linear", "factor": 2.0}},
        {"architectures": ["MistralForCausalLM"], "sliding_window": 4096},
        {"architectures": ["Qwen2ForCausalLM"], "use_sliding_window": False, "eos_token_id": [2, 3]},
        {"architectures": None, "model_type": "qwen2"},
    ]
    for v in variants:
        c = dict(base)
        c.update(v)
        put("config", json.dumps(c, indent=1))


def cut_tokenizer(path, keep=300):
    t = json.load(open(path))
    m = t["model"]
    vocab = m["vocab"]
    kept_ids = set(sorted(vocab.values())[:keep])
    added = {a["id"] for a in t.get("added_tokens", [])}
    new_vocab = {k: v for k, v in vocab.items() if v in kept_ids}
    # ids stay as they are (the added tokens keep theirs), so the id space has gaps like real ones
    merges = []
    for mg in m.get("merges", []):
        a, b = mg if isinstance(mg, list) else mg.split(" ", 1)
        if a in new_vocab and b in new_vocab and (a + b) in new_vocab:
            merges.append(mg)
    m["vocab"] = new_vocab
    m["merges"] = merges[:200]
    t["added_tokens"] = [a for a in t.get("added_tokens", []) if a["id"] in added][:20]
    # the ids of the added tokens may be far beyond a cut vocabulary: renumber them densely
    next_id = max(new_vocab.values()) + 1
    renum = {}
    for a in t["added_tokens"]:
        if a["content"] in new_vocab:
            a["id"] = new_vocab[a["content"]]
        else:
            renum[a["id"]] = next_id
            a["id"] = next_id
            next_id += 1
    pp = t.get("post_processor")

    def fix(p):
        if not p:
            return
        for sp in p.get("special_tokens", {}).values():
            sp["ids"] = [renum.get(i, i) for i in sp["ids"]]
        for q in p.get("processors", []) or []:
            fix(q)
    fix(pp)
    return json.dumps(t, ensure_ascii=False)


def tokenizer_seeds(build):
    for v in VOCABS + LOAD_ONLY_VOCABS:
        put("tokenizer_load", cut_tokenizer(os.path.join(build, "data", "tokenizers", v, "tokenizer.json")))
    put("tokenizer_load", open(os.path.join(ROOT, "models/stories260K/tokenizer.json"), "rb").read())
    vocab = '"vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4, " ": 5}'
    put("tokenizer_load", '{"model": {"type": "BPE", %s, "merges": ["a b", "ab c"]}}' % vocab)
    put("tokenizer_load", '{"model": {"type": "BPE", %s, "merges": [["a", "b"]], "byte_fallback": true, '
        '"unk_token": "c"}, "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "_"}, '
        '{"type": "Replace", "pattern": {"String": " "}, "content": "_"}]}, "decoder": {"type": "Sequence", '
        '"decoders": [{"type": "Replace", "pattern": {"String": "_"}, "content": " "}, {"type": "ByteFallback"}, '
        '{"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}}' % vocab)
    put("tokenizer_load", '{"model": {"type": "BPE", %s, "merges": []}, "pre_tokenizer": {"type": "Split", '
        '"pattern": {"Regex": "\\\\p{L}+|\\\\s+"}, "behavior": "Isolated", "invert": false}, "added_tokens": '
        '[{"id": 6, "content": "<x>", "special": true, "lstrip": true, "normalized": false}]}' % vocab)


def encode_seeds(build):
    for i, v in enumerate(VOCABS):
        vec = os.path.join(build, "data", "tokenizers", v, "test_vectors.json")
        cases = json.load(open(vec))["cases"] if os.path.exists(vec) else [{"text": "Once upon a time"}]
        for k, c in enumerate(cases[:12]):
            put("encode", bytes([i, k % 4]) + c["text"].encode())


def stream_seeds(build):
    for i, v in enumerate(VOCABS):
        vec = os.path.join(build, "data", "tokenizers", v, "test_vectors.json")
        cases = json.load(open(vec))["cases"] if os.path.exists(vec) else []
        n_ids = None
        for k, c in enumerate(cases[:12]):
            ids = c.get("ids") or []
            put("stream", bytes([i, k % 2]) + b"".join(struct.pack("<I", x)[:3] for x in ids))
        put("stream", bytes([i, 0]) + b"".join(struct.pack("<I", x)[:3] for x in range(0, 300, 7)))


def options_seeds(build):
    lines = [
        ["--prompt", "Once upon a time", "--max-new-tokens", "8"],
        ["--temperature=0.7", "--top-k", "40", "--top-p", "0.9", "--do-sample"],
        ["--format", "json", "--no-do-sample", "--seed", "3", "--threads", "2"],
        ["--prompt-ids", "1,2,3", "--stop", "a|b", "--exempt", "4,5"],
        ["--dola-layers", "2,4", "--repetition-penalty", "1.2", "--relative-top=0.1"],
        ["--skip-layers", "2,4", "--sld-rule", "official", "--window", "3"],
        ["--config", "c.json"],
    ]
    for argv in lines:
        put("options", "\0".join(argv))
    put("options", "--config\0c.json\0\0" + json.dumps({"top_k": 5, "prompt": "Hi", "do_sample": True}))
    put("options", "--config=c.json\0--top-p\x000.5\0\0" + json.dumps({"max_new_tokens": 3}))


def intervention_seeds(build):
    """Specs for the bundled tiny Llama (8 blocks, d_model 64, 4 heads of 16); v.safetensors holds
    d_model [64], head [16] and rows [3, 64] (written by the target)."""
    z = [0.0] * 64
    specs = [
        [{"hook": "blocks.1.hook_resid_post", "op": "add", "vector": [0.5] * 64, "scale": 2.0}],
        [{"hook": "blocks.0.hook_resid_pre", "op": "add", "vector": "v.safetensors:d_model", "positions": "generated"}],
        [{"hook": "blocks.2.hook_resid_mid", "op": "add", "vector": z, "positions": [0, 3, 9]},
         {"hook": "blocks.2.hook_attn_out", "op": "add", "vector": z, "positions": "prompt"},
         {"hook": "blocks.2.hook_mlp_out", "op": "add", "vector": z}],
        [{"hook": "blocks.3.attn.hook_z", "op": "scale", "heads": [0, 2], "factor": 0.0}],
        [{"hook": "blocks.3.attn.hook_z", "op": "add", "head": 1, "vector": "v.safetensors:head", "scale": -3}],
        [{"hook": "blocks.4.attn.hook_attn_scores", "op": "add", "heads": "all", "keys": [0, 3], "value": -4.6}],
        [{"hook": "blocks.5.attn.hook_attn_scores", "op": "add", "heads": [1], "keys": [2, 256], "value": 1.0,
          "positions": [4, 5]}],
        [{"hook": "blocks.6.hook_resid_post", "op": "set", "values": [[0.25] * 64], "positions": [1]}],
        [{"hook": "blocks.7.hook_resid_pre", "op": "set", "values": "v.safetensors:rows", "positions": [0, 2, 4]}],
        [{"hook": "blocks.1.attn.hook_z", "op": "set", "values": [[1.0] * 64, [2.0] * 64], "positions": [0, 5]}],
        [],
        # invalid: each a different field at fault
        [{"hook": "blocks.9.hook_resid_post", "op": "add", "vector": z}],
        [{"hook": "blocks.1.attn.hook_pattern", "op": "add", "vector": z}],
        [{"hook": "blocks.1.hook_resid_post", "op": "add", "vector": [1, 2]}],
        [{"hook": "blocks.1.attn.hook_attn_scores", "op": "add", "keys": [5, 5], "value": 0}],
        [{"hook": "blocks.1.attn.hook_z", "op": "scale", "heads": [4], "factor": 1}],
        [{"hook": "blocks.1.hook_resid_post", "op": "add", "vector": "v.safetensors:nope"}],
        [{"hook": "blocks.1.hook_resid_post", "op": "add", "vector": "missing.safetensors:x"}],
        [{"hook": "blocks.1.hook_resid_post", "op": "set", "values": [[1.0] * 64, [1.0] * 64]}],
        [{"hook": "blocks.1.hook_resid_post", "op": "add", "vector": z, "extra": True}],
        {"hook": "blocks.1.hook_resid_post"},
    ]
    for spec in specs:
        put("intervention", json.dumps(spec))
    put("intervention", '[{"hook": "blocks.1.hook_resid_post", "op": "add", "vector": [1e39')


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    for fn in (safetensors_seeds, config_seeds, tokenizer_seeds, encode_seeds, stream_seeds, options_seeds,
               intervention_seeds):
        fn(build)


if __name__ == "__main__":
    main()
