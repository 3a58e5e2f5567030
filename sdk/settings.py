"""The one settings object of hopmem.

Values come, highest priority first, from: keyword arguments, ``HOPMEM_*`` environment variables, a TOML file
(``HOPMEM_CONFIG``, else ``./hopmem.toml``, else ``~/.config/hopmem/config.toml``), then the defaults below. The
defaults work offline on a laptop CPU with the bundled models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

if TYPE_CHECKING:
    from hopmem.memory.trust.model import TrustParams

DEFAULT_CONFIG_LOCATIONS = (Path("hopmem.toml"), Path("~/.config/hopmem/config.toml").expanduser())


def config_file() -> Path | None:
    """The TOML file in effect, or None when there is none."""
    explicit = os.environ.get("HOPMEM_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    for candidate in DEFAULT_CONFIG_LOCATIONS:
        if candidate.is_file():
            return candidate
    return None


def _xdg(variable: str, fallback: str) -> Path:
    return Path(os.environ.get(variable) or str(Path(fallback).expanduser())) / "hopmem"


def _default_data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", "~/.local/share")


class Settings(BaseSettings):
    """Everything a user can configure. Read with :func:`get_settings`; print with ``hopmem config show``.

    Examples:
        Values come from the arguments, then ``HOPMEM_*`` variables, then the TOML file, then the defaults:

        >>> import hopmem
        >>> settings = hopmem.Settings(data_dir="/tmp/hopmem-example", llm_backend="none")
        >>> settings.store_path.name, settings.llm_backend, settings.embedder
        ('hopmem.sqlite', 'none', 'all-MiniLM-L6-v2')
        >>> hopmem.get_settings(chunk_size=128).chunk_size
        128

        A bad value is refused in one sentence that names where to fix it:

        >>> hopmem.get_settings(chunk_size=1)
        Traceback (most recent call last):
        ...
        hopmem.memory.errors.ConfigError: Invalid setting 'chunk_size': Input should be greater than or equal to 32; ...

    Long because: it is the one settings object (the guide's rule), a field per knob with its description, which
    ``hopmem config show``, docs/configuration.md and the environment variables are made from.
    """

    model_config = SettingsConfigDict(env_prefix="HOPMEM_", extra="forbid", validate_default=True)

    data_dir: Path = Field(default_factory=_default_data_dir, description="where stores and checkpoints live")
    tenant: str = Field("default", min_length=1, description="tenant used by the CLI when none is given")

    embedder: str = Field("all-MiniLM-L6-v2", description="embedding model: packaged name, local path or cached HF id")
    embed_batch_size: int = Field(64, ge=1, le=4096)
    embed_max_seq_length: int = Field(256, ge=16, le=8192)
    embed_query_runtime: Literal["onnx", "onnx-int8", "torch"] = Field(
        "onnx",
        description="runtime for single search queries: onnx (same vectors, faster; falls back), onnx-int8 "
        "(int8 weights: faster still, vectors move slightly) or torch",
    )
    cache_dir: Path = Field(default_factory=lambda: _xdg("XDG_CACHE_HOME", "~/.cache"), description="derived files")

    llm_backend: Literal["llamacpp", "openai", "transformers", "none"] = Field(
        "llamacpp",
        description="llamacpp (in-process), openai (any OpenAI-compatible server), transformers (in-process, "
        "float32 on the CPU, takes LoRA adapters) or none",
    )
    llm_model: str = Field("SmolLM2-135M-Instruct", description="GGUF name/path, or the server's model name")
    llm_base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible server URL")
    llm_api_key: str = Field("not-needed", description="API key sent to the OpenAI-compatible server")
    llm_context: int = Field(2048, ge=256, description="context window given to llama.cpp")
    llm_max_tokens: int = Field(160, ge=1, description="tokens generated per answer")
    answer_sentences: int = Field(
        2,
        ge=0,
        le=100,
        description="sentences of each evidence passage the answer prompt shows, besides its first: those sharing "
        "most words with the question (0 = whole passages; fewer prompt tokens answer sooner on a CPU)",
    )
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0)
    llm_threads: int = Field(
        0, ge=0, description="llama.cpp threads; 0 means one per physical core this process may use"
    )
    llm_flash_attn: bool = Field(
        True, description="llama.cpp's fused attention (prompt processing about 15% faster here; docs/agent.md)"
    )
    llm_timeout_s: float = Field(120.0, gt=0)
    llm_seed: int = 0
    llm_repeat_penalty: float = Field(1.3, ge=1.0, le=3.0, description="llama.cpp repeat penalty")
    llm_adapter: str = Field("", description="local peft LoRA adapter folder applied to llm_model (transformers only)")

    vector_backend: Literal["exact", "qdrant"] = Field(
        "exact", description="vector index: exact (in-process, over SQLite) or qdrant (qdrant-client)"
    )
    qdrant_location: str = Field(
        "", description="qdrant: a folder (local mode), ':memory:', or a server URL; empty means DATA_DIR/qdrant"
    )
    qdrant_collection: str = Field("hopmem", min_length=1, description="qdrant collection name")
    max_memory_chars: int = Field(20_000, ge=1, description="longer memories are refused by Memory.add")

    chunk_size: int = Field(256, ge=32, le=8192, description="chunk size in tokens")
    chunk_overlap: int = Field(32, ge=0, le=1024, description="chunk overlap in tokens")
    max_file_bytes: int = Field(50_000_000, ge=1, description="files larger than this are refused")
    max_question_chars: int = Field(4000, ge=1, description="longer questions are refused")
    max_content_chars: int = Field(200_000, ge=1, description="longer documents are refused")

    top_k: int = Field(3, ge=1, le=100, description="evidence passages given to the answer step")
    retrieve_k: int = Field(10, ge=1, le=1000, description="passages the agent retrieves before hop and fusion")
    retrieve_depth: int = Field(30, ge=1, le=1000, description="candidates taken from each retriever")
    fusion: Literal["rrf", "rsf"] = "rrf"
    rrf_k: int = Field(60, ge=1)
    bm25_title_weight: float = Field(2.0, ge=0.0)
    bm25_content_weight: float = Field(1.0, ge=0.0)
    lexical_backend: Literal["index", "fts5"] = Field(
        "index", description="lexical search: index (in-process, derived from FTS5, same bm25) or fts5"
    )
    sqlite_busy_timeout_ms: int = Field(10_000, ge=0)
    sqlite_mmap_mb: int = Field(
        256, ge=0, description="MiB of the store read through a memory map (faster searches; 0 turns it off)"
    )

    treehop_model: str = Field("", description="TreeHop model folder; empty means the one shipped in the package")
    treehop_top_n: int = Field(5, ge=1, le=100, description="passages retrieved per TreeHop query embedding")
    treehop_hops: int = Field(2, ge=1, le=8, description="layers of the TreeHop tree (1 = no hop)")
    treehop_weight: float = Field(
        0.25, ge=0.0, le=1.0, description="weight of the hop tree's passages in the agent's fusion (retrieval: 1)"
    )

    # Agent pipeline (agents/graph.py): plan -> retrieve -> hop -> fuse -> rerank -> answer -> remember.
    decompose: bool = Field(True, description="let the planner split a question into sub-queries")
    max_subqueries: int = Field(3, ge=1, le=8, description="most sub-queries the planner may produce")
    chain_min_words: int = Field(
        5,
        ge=1,
        le=1000,
        description="the rule planner searches questions with at least this many content words as a two-step chain "
        "(the second search carries the first one's short answer); shorter ones stay whole",
    )
    bridge: Literal["extractive", "llm"] = Field(
        "extractive",
        description="who finds a chain's short answer between its searches: a phrase picked from the evidence (the "
        "default: same recall@10 as SmolLM2 on HotpotQA dev, one LLM call less, docs/agent.md) or the LLM",
    )
    planner: Literal["llm", "rules", "tuned"] = Field(
        "rules",
        description="who decides whether and how to split: the rules (the default: measured better than SmolLM2's "
        "plans, docs/agent.md), the LLM under a JSON schema, or tuned: SmolLM2 with the GRPO-trained decomposer "
        "adapter (docs/decomposer.md)",
    )
    planner_adapter: str = Field(
        "",
        description="the tuned planner's LoRA adapter folder; empty means the one trained into cache_dir "
        "(hopmem finetune decomposer), else the one shipped in the package",
    )
    max_search_rounds: int = Field(2, ge=1, le=5, description="hard bound on retrieval rounds per question")
    hyde: bool = Field(
        False,
        description="let the LLM guess a short answer and search the question followed by the guess as one more list "
        "(HyDE, query2doc): reaches evidence that shares no words with the question; one LLM call a question (0.29 s "
        "with SmolLM2 on llama.cpp on 2 cores), nothing without an LLM; docs/agent.md",
    )
    hyde_max_tokens: int = Field(60, ge=8, le=512, description="tokens the LLM may write for its guess (hyde)")
    reranker: Literal["prorank", "prorank-base", "rank-r1", "cross-encoder", "none"] = Field(
        "cross-encoder",
        description="reranker of the fused evidence: cross-encoder (the default: a MiniLM cross-encoder shipped in the "
        "package, blended with the fused order by the weight saved with it), prorank "
        "(pointwise LLM + LoRA), rank-r1 (setwise reasoning) or none (keeps the fused order); see docs/reranking.md",
    )
    reranker_model: str = Field(
        "",
        description="the reranker's folder (cross-encoder, or the LoRA adapter of prorank/rank-r1); empty means "
        "the one trained into cache_dir, else the one shipped in the package",
    )
    reranker_server: str = Field(
        "",
        description="OpenAI-compatible root (e.g. http://127.0.0.1:8000/v1) of a vLLM server that serves the prorank "
        "reranker; empty runs it in process with transformers",
    )
    reranker_served_model: str = Field(
        "prorank", description="the name the server serves the reranker under (its --lora-modules name)"
    )
    rerank_depth: int = Field(20, ge=1, le=200, description="fused candidates given to the reranker")
    rerank_batch_size: int = Field(16, ge=1, le=512)
    conversation_rerank_floor: int = Field(
        10,
        ge=0,
        le=200,
        description="when every candidate is a conversation memory, the best N of the list "
        "conversation_rerank_floor_list names stay the agent's first N: the reranker orders them and the rest "
        "comes after (0 turns it off; docs/conversations.md)",
    )
    conversation_rerank_blend: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="when every candidate is a conversation memory, the weight of the fused order in the "
        "cross-encoder's score, instead of the weight saved with the model",
    )
    conversation_rerank_date: bool = Field(
        False, description="whether the reranker reads a conversation memory's leading [session date]"
    )
    conversation_rerank_floor_list: Literal["fused", "question"] = Field(
        "fused",
        description="which list's best N stay first on conversation memories: the agent's fused candidates (the "
        "whole question's search fused with its sub-queries') or the whole question's own search",
    )
    conversation_rerank_speaker: Literal["keep", "drop", "mean"] = Field(
        "mean",
        description="how the reranker reads a conversation turn's speaker: with the name, without it, or the mean "
        "of both scores (the cross-encoder; other rerankers read it with the name)",
    )
    remember_answers: bool = Field(True, description="write each answer back as an agent memory (through the gate)")
    injection_filter: bool = Field(
        True,
        description="remove sentences that give the model orders from the evidence it answers from, quote recalled "
        "text to the model as neutralised data, and remember no answer that holds one (indirect prompt injection; "
        "see docs/trust.md); off only to measure what the defence does",
    )
    agent_name: str = Field("hopmem-agent", min_length=1, description="the agent identity answers are remembered as")
    agent_fusion: Literal["rsf", "rrf"] = Field("rsf", description="fusion of the agent's sub-query and hop lists")

    # Trust (memory/trust/model.py): per-agent Beta(alpha, beta), write gate, trust-weighted ranking.
    trust_prior_alpha: float = Field(4.0, gt=0, description="prior Beta alpha of a new agent (mean 4/6 = 0.67)")
    trust_prior_beta: float = Field(2.0, gt=0, description="prior Beta beta of a new agent")
    trust_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="writes of agents whose trust is below this are quarantined"
    )
    trust_reference_level: float = Field(
        0.75, ge=0.0, le=1.0, description="memories this trusted are the reference of contradiction checks"
    )
    trust_half_life_days: float = Field(30.0, gt=0, description="evidence halves towards the prior in this time")
    trust_signal_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "confirmed": 1.0,
            "approved": 2.0,
            "feedback_down": 1.0,
            "user_overwrite": 2.0,
            "user_delete": 2.0,
            "burst": 1.0,
            "contradiction": 3.0,
            "rejected": 3.0,
        },
        description="evidence weight of each trust signal (JSON object in HOPMEM_TRUST_SIGNAL_WEIGHTS)",
    )
    trust_user_weight: float = Field(2.0, ge=0, description="a user's confirmation counts this many times")
    trust_betrayal_discount: float = Field(
        0.5, ge=0.0, le=1.0, description="share of positive evidence a contradiction or rejection removes"
    )
    trust_class_ceiling: dict[str, float] = Field(
        default_factory=lambda: {
            "user": 1.0,
            "document": 1.0,
            "agent": 1.0,
            "tool": 0.9,
            "conversation": 0.8,
            "external": 0.5,
            "untrusted": 0.1,
        },
        description="highest trust a memory of each source class can have",
    )
    trust_burst_window_s: float = Field(60.0, gt=0, description="window of the write-burst detector")
    trust_burst_max_writes: int = Field(200, ge=1, description="more writes than this in the window is a burst")
    trust_overwrite_window_s: float = Field(
        86_400.0, ge=0, description="a user overwrite or deletion this soon after a write is a negative signal"
    )
    trust_contradiction_similarity: float = Field(
        0.8, ge=0.0, le=1.0, description="cosine similarity above which two memories are compared for contradiction"
    )
    trust_semantic_similarity: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="cosine from which a write worded unlike a trusted memory is checked for a swapped value "
        "(the paraphrase tier: held for review, no trust signal); 1.0 turns the tier off",
    )
    trust_vouch_evidence: float = Field(
        1.0,
        ge=0.0,
        description="confirmation an agent must have received from others before its own confirmations and "
        "down-votes count (fresh identities cannot vouch for one another); 0 lets every agent above the threshold",
    )
    trust_review_group_similarity: float = Field(
        0.85,
        ge=0.0,
        le=1.0,
        description="held writes of one agent this close (cosine) to an earlier held one are listed as its group, "
        "reviewed with one verdict (a flood of near-duplicates is one review item); 1.0 lists each alone",
    )
    trust_ranking: bool = Field(True, description="weigh search results by memory trust")
    trust_rank_floor: float = Field(0.01, gt=0.0, le=1.0, description="lowest weight trust gives a result")
    trust_gate: bool = Field(True, description="quarantine writes of low-trust or suspicious agents")

    # Learning to rank from feedback (memory/ltr.py), kept in the behavioural file.
    ltr_enabled: bool = Field(True, description="use the learned ranking layer once it is trained")
    ltr_min_feedback: int = Field(50, ge=1, description="feedback events needed before the ranking layer trains")
    ltr_retrain_every: int = Field(50, ge=1, description="retrain after this many new feedback events")
    ltr_max_queries: int = Field(500, ge=1, description="most recent distinct feedback queries used in training")

    # The HTTP server (hopmem serve, app/server/): where it listens and what it accepts per request and per key.
    server_host: str = Field("127.0.0.1", min_length=1, description="address hopmem serve binds (loopback by default)")
    server_port: int = Field(8765, ge=1, le=65535, description="port hopmem serve listens on")
    server_workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes of hopmem serve (one store)")
    server_max_body_bytes: int = Field(1_000_000, ge=1024, description="larger JSON request bodies get 413")
    server_max_upload_bytes: int = Field(20_000_000, ge=1024, description="larger file uploads (ingest) get 413")
    server_max_handles: int = Field(
        16, ge=1, le=4096, description="identities (tenant, agent) whose memory and agent stay open per server process"
    )
    server_rate_per_minute: int = Field(
        600, ge=0, description="requests per minute per API key and worker process (0 = no limit); over it: 429"
    )

    @field_validator("data_dir", "cache_dir", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        return Path(value).expanduser() if isinstance(value, str | Path) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def embedder_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`hopmem.memory.embeddings.load_embedder` these settings imply."""
        return {
            "batch_size": self.embed_batch_size,
            "max_seq_length": self.embed_max_seq_length,
            "query_runtime": self.embed_query_runtime,
            "cache_dir": self.cache_dir / "onnx",
        }

    def trust_params(self) -> TrustParams:
        """The :class:`hopmem.memory.trust.TrustParams` these settings imply."""
        from hopmem.memory.trust.model import TrustParams

        return TrustParams(
            prior_alpha=self.trust_prior_alpha,
            prior_beta=self.trust_prior_beta,
            threshold=self.trust_threshold,
            reference_level=self.trust_reference_level,
            half_life_s=self.trust_half_life_days * 86_400.0,
            weights=dict(self.trust_signal_weights),
            user_weight=self.trust_user_weight,
            betrayal_discount=self.trust_betrayal_discount,
            class_ceiling=dict(self.trust_class_ceiling),
            burst_window_s=self.trust_burst_window_s,
            burst_max_writes=self.trust_burst_max_writes,
            overwrite_window_s=self.trust_overwrite_window_s,
            contradiction_similarity=self.trust_contradiction_similarity,
            rank_floor=self.trust_rank_floor,
            semantic_similarity=self.trust_semantic_similarity,
            vouch_evidence=self.trust_vouch_evidence,
            review_group_similarity=self.trust_review_group_similarity,
        )

    @property
    def store_path(self) -> Path:
        """The SQLite file that is the source of truth."""
        return self.data_dir / "hopmem.sqlite"

    @property
    def behaviour_path(self) -> Path:
        """The SQLite file that holds behavioural data (feedback, clicks), erasable on its own."""
        return self.data_dir / "behaviour.sqlite"

    @property
    def qdrant_target(self) -> str:
        """Where the qdrant backend keeps its vectors: ``qdrant_location`` or ``DATA_DIR/qdrant``."""
        return self.qdrant_location or str(self.data_dir / "qdrant")

    @property
    def checkpoint_path(self) -> Path:
        """The SQLite file that holds conversation checkpoints."""
        return self.data_dir / "checkpoints.sqlite"

    def effective(self) -> dict[str, Any]:
        """The values in effect, as JSON-ready data (the API key masked)."""
        data = self.model_dump(mode="json")
        if data.get("llm_api_key") not in (None, "", "not-needed"):
            data["llm_api_key"] = "***"
        return data


def get_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment and the TOML file, with ``overrides`` on top.

    Raises:
        ConfigError: when a value is invalid or the TOML file cannot be read.
    """
    from pydantic import ValidationError

    from hopmem.memory.errors import ConfigError

    path = config_file()
    if path is not None and not path.is_file():
        raise ConfigError(f"The config file {path} does not exist; fix HOPMEM_CONFIG or create the file.")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise ConfigError(
            f"Invalid setting {where!r}: {first.get('msg')}; fix HOPMEM_{where.upper()} or the config file."
        ) from exc
    except ValueError as exc:  # malformed TOML
        raise ConfigError(f"Could not read the config file {path}: {exc}.") from exc
