#!/usr/bin/env bash
# Records the token ids llama.cpp's tokenizer gives each text of tests/tokenizers/corpus/texts.txt,
# for every vocabulary in models/vocab (ggml-vocab-NAME.gguf) and models/gguf/stories260K.gguf:
# one NAME.ids per vocabulary, line k = the ids of text k (format: tests/tokenizers/corpus/README.md);
# and gpt-2+PRE.ids: the GPT-2 vocabulary with tokenizer.ggml.pre = PRE, for the pre-tokenizers no
# shipped vocabulary has (llama-bpe, qwen2). The same for the texts of special.txt with special
# tokens parsed: NAME.special.ids.
#
#   usage: scripts/record-tokenizer-ids.sh LLAMA_TOKENIZE [OUT_DIR]
#     LLAMA_TOKENIZE  llama.cpp's llama-tokenize; the files in the tree were made by llama.cpp dc02e1f8
#     OUT_DIR         where the .ids files go (default tests/tokenizers/corpus)
#   env: LLAMA_COMMIT  the commit written in each file's header (default: git's HEAD next to the
#                      binary, else "unknown"; llama-tokenize prints no version itself)
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] && [ -x "$1" ] || { sed -n "2,10p" "$0"; exit 2; }
tokenize=$(realpath "$1")
out=$(realpath -m "${2:-$(dirname "$0")/../tests/tokenizers/corpus}")
commit=${LLAMA_COMMIT:-$(git -C "$(dirname "$tokenize")" rev-parse --short=8 HEAD 2>/dev/null || echo unknown)}
cd "$(dirname "$0")/.."
mkdir -p "$out"
python3 - "$tokenize" "$out" "$commit" models/vocab/ggml-vocab-*.gguf models/gguf/stories260K.gguf <<'EOF'
import os, re, struct, subprocess, sys, tempfile

tokenize, out, commit, vocabs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
ESC = {"\\": b"\\", "n": b"\n", "r": b"\r", "t": b"\t"}

def decode(line):  # one texts.txt line -> the exact bytes of the text
    res, i, raw = bytearray(), 0, line.encode()
    while i < len(raw):
        c = raw[i:i + 1]
        if c != b"\\":
            res += c; i += 1
        elif raw[i + 1:i + 2] == b"x":
            res.append(int(raw[i + 2:i + 4], 16)); i += 4
        else:
            res += ESC[raw[i + 1:i + 2].decode()]; i += 2
    return bytes(res)

def read_texts(name):
    with open(f"tests/tokenizers/corpus/{name}", encoding="utf-8") as f:
        texts = [decode(l.rstrip("\n")) for l in f if not l.startswith("#")]
    assert all(texts), f"{name} must not hold empty texts"
    return texts

def run(vocab, path, flags):  # -> the line for the .ids file
    p = subprocess.run([tokenize, "-m", vocab, "-f", path, "--ids", "--log-disable", *flags],
                       capture_output=True, text=True, errors="replace")
    m = re.fullmatch(r"\[([\d, ]*)\]\n", p.stdout)
    if p.returncode == 0 and m:
        return " ".join(m.group(1).split(", ")) if m.group(1) else ""
    err = [l.strip() for l in p.stderr.splitlines() if l.strip()]
    status = f"killed by signal {-p.returncode}" if p.returncode < 0 else f"exit status {p.returncode}"
    why = next((l for l in err if "what()" in l), err[-1] if err else status)
    return f"! llama-tokenize: {why}"

def retag(src, dst, pre):  # a copy of a tensor-less GGUF with tokenizer.ggml.pre = pre
    data = open(src, "rb").read()
    assert data[:4] == b"GGUF" and struct.unpack_from("<Q", data, 8)[0] == 0, src
    n_kv, pos, out = struct.unpack_from("<Q", data, 16)[0], 24, bytearray(data[:24])
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip(t, p):  # the end of a value of type t at p
        if t == 8:
            return p + 8 + struct.unpack_from("<Q", data, p)[0]
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, p)
            p += 12
            for _ in range(n):
                p = skip(et, p)
            return p
        return p + sizes[t]

    key, had = b"tokenizer.ggml.pre", False
    for _ in range(n_kv):
        klen = struct.unpack_from("<Q", data, pos)[0]
        t = struct.unpack_from("<I", data, pos + 8 + klen)[0]
        end = skip(t, pos + 12 + klen)
        if data[pos + 8:pos + 8 + klen] == key:
            had = True
        else:
            out += data[pos:end]
        pos = end
    out += struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, len(pre)) + pre.encode()
    struct.pack_into("<Q", out, 16, n_kv + (0 if had else 1))
    out += bytes(-len(out) % 32)  # the (empty) data section starts aligned
    open(dst, "wb").write(out)

with tempfile.TemporaryDirectory() as tmp:
    # The pre-tokenizers no shipped vocabulary uses, run on the GPT-2 vocabulary: NAME+PRE.ids.
    for pre in ["llama-bpe", "qwen2"]:
        retag("models/vocab/ggml-vocab-gpt-2.gguf", f"{tmp}/gpt-2+{pre}.gguf", pre)
        vocabs.append(f"{tmp}/gpt-2+{pre}.gguf")
    # (texts, flags, suffix): plain text, then text with special tokens parsed.
    for corpus, flags, suffix in [("texts.txt", ["--no-bos", "--no-parse-special", "--no-escape"], ".ids"),
                                  ("special.txt", ["--no-bos", "--no-escape"], ".special.ids")]:
        texts = read_texts(corpus)
        for i, t in enumerate(texts):
            with open(f"{tmp}/{i}.txt", "wb") as f:
                f.write(t)
        for vocab in vocabs:
            name = os.path.basename(vocab).removeprefix("ggml-vocab-").removesuffix(".gguf")
            lines = [run(vocab, f"{tmp}/{i}.txt", flags) for i in range(len(texts))]
            with open(f"{out}/{name}{suffix}", "w") as f:
                f.write(f"# llama-tokenize {commit} {' '.join(flags)}\n")
                f.writelines(l + "\n" for l in lines)
            refused = sum(l.startswith("!") for l in lines)
            print(f"{name}{suffix}: {len(lines)} texts, {refused} refused")
EOF
