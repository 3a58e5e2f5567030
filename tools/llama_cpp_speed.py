"""Tokens per second of the installed llama-cpp-python on SmolLM2: prompt processing and generation.

Run it with the Python of each environment to compare two builds of llama.cpp (the portable build of `make install`
against a native one, docs/setup.md): it prints one JSON object with the build's system-info line, the prompt and
generation speeds of every run, and their medians. The prompt is the bundled sample (about 900 tokens), the same
chat as `hopmem models check`.

Usage: python tools/llama_cpp_speed.py --model SmolLM2.gguf [--runs 5] [--threads 2] [--generate 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    import llama_cpp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="a GGUF file")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--generate", type=int, default=64, help="tokens generated per run")
    args = parser.parse_args()

    sample = Path(__file__).resolve().parents[1] / "sdk" / "sample"
    context = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted(sample.glob("*.md")))
    prompt = f"{context}\n\nQuestion: How do honeybees tell each other where flowers are?\nAnswer:"
    llm = llama_cpp.Llama(
        model_path=str(args.model), n_ctx=2048, n_threads=args.threads, seed=0, verbose=False, n_batch=512
    )
    tokens = llm.tokenize(prompt.encode("utf-8"))
    prompt_speed: list[float] = []
    generate_speed: list[float] = []
    for _ in range(args.runs + 1):  # the first run warms up and is not counted
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(tokens)
        t1 = time.perf_counter()
        for _ in range(args.generate):
            token = llm.sample(temp=0.0)
            llm.eval([token])
        t2 = time.perf_counter()
        prompt_speed.append(len(tokens) / (t1 - t0))
        generate_speed.append(args.generate / (t2 - t1))
    info = llama_cpp.llama_print_system_info()
    report = {
        "system_info": info.decode() if isinstance(info, bytes) else str(info),
        "llama_cpp_python": llama_cpp.__version__,
        "model": args.model.name,
        "threads": args.threads,
        "prompt_tokens": len(tokens),
        "generated_tokens": args.generate,
        "runs": args.runs,
        "prompt_tokens_per_s": [round(v, 1) for v in prompt_speed[1:]],
        "generate_tokens_per_s": [round(v, 1) for v in generate_speed[1:]],
        "median_prompt_tokens_per_s": round(statistics.median(prompt_speed[1:]), 1),
        "median_generate_tokens_per_s": round(statistics.median(generate_speed[1:]), 1),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
