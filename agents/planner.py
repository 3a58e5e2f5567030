"""Adaptive query reformulation (AQR): keep a question whole, or split it into parallel or sequential sub-queries.

One call of :func:`plan_question` decides, per question, how retrieval should go:

* ``whole``: one search for the (stand-alone) question;
* ``parallel``: independent sub-queries searched side by side and fused ("Which is older, A or B?");
* ``sequential``: a chain where a later sub-query holds ``{1}``, ``{2}`` ... for the answers of earlier ones ("the
  woman who portrayed X" -> "what position did {1} hold"). The graph retrieves sub-query 1, asks
  :func:`bridge_answer` for its short answer, fills it in with :func:`fill_placeholders` and retrieves the next.

Multi-turn questions are first rewritten to stand alone using the conversation, by the LLM under a JSON schema
(grammar-constrained on llama.cpp, ``json_schema`` response format on servers). The plan then comes from
:func:`rule_plan` (``decide="rules"``, the agent's default: measured to find more evidence than SmolLM2's plans) or
from the LLM under a JSON schema (``decide="llm"``); the LLM's reply is checked (see :func:`check_plan`) and anything
wrong with it - no LLM, an LLM error, malformed JSON, empty, duplicate, overlong or unrelated sub-queries,
placeholders that point nowhere - gives the rule-based plan instead, with ``source="fallback"`` and the reason in
``warning``. Planning never raises.

``hopmem bench planner`` (:mod:`hopmem.bench.planner_bench`) measures the plans on labelled questions.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from hopmem.agents.prompts import decompose_messages, plan_messages, standalone_messages
from hopmem.memory.errors import HopmemError

if TYPE_CHECKING:
    from hopmem.agents.llm.base import ChatLLM, Message

log = logging.getLogger(__name__)

Mode = Literal["whole", "parallel", "sequential"]
MODES: tuple[Mode, ...] = ("whole", "parallel", "sequential")

MAX_QUERY_CHARS = 120
"""Longest sub-query accepted from the LLM (also its schema's ``maxLength``): a search query, not a paragraph."""
PLACEHOLDER_ROOM = 8
"""Characters a tuned plan's sub-query may add to the question's own length (placeholders such as ``{1} {2} ``)."""
MAX_PLAN_QUESTION_CHARS = 2000
"""Longer questions are not sent to the LLM for planning (they would crowd the small model's context); whole plan."""
PLAN_MAX_TOKENS = 160
STANDALONE_MAX_TOKENS = 96
CHAIN_MIN_WORDS = 5
"""Default of ``Settings.chain_min_words``: the rules chain questions with at least this many content words."""


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_STOP = _wordset(
    "a an the of in on at to for from by with and or but is are was were be been being do does did has have had "
    "what which who whom whose when where why how that this these those it its it's he she they them their his her "
    "him as than then both between same also any each either neither more most less least first last there one"
)
_PRONOUNS = _wordset("he she it they him her them his hers its their theirs there that this these those")


@dataclass
class Plan:
    """How to search for one question.

    Attributes:
        mode: ``whole``, ``parallel`` or ``sequential``.
        queries: the sub-queries in order (``[standalone]`` for ``whole``); in ``sequential`` mode a later query may
            hold ``{1}``, ``{2}`` ..., the answers of sub-queries 1, 2 ... (fill them with :func:`fill_placeholders`).
        standalone: the question rewritten to stand alone using the conversation (the question itself without one).
        source: ``llm`` (the LLM's plan, checked), ``tuned`` (the GRPO-tuned planner's, checked), ``rules``,
            ``fallback`` (rules, because of ``warning``) or ``off``.
        warning: why the LLM's plan or rewrite was not used, or None.
        ms: time spent planning, rewrite included.
    """

    mode: Mode
    queries: list[str]
    standalone: str
    source: Literal["llm", "tuned", "rules", "fallback", "off"]
    warning: str | None = None
    ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the trace."""
        data = asdict(self)
        data["ms"] = round(self.ms, 1)
        return data


def plan_schema(max_subqueries: int, *, query_chars: int | None = MAX_QUERY_CHARS) -> dict[str, Any]:
    """The JSON schema of the LLM's plan: ``{"mode": ..., "queries": [...]}`` (``mode`` first, so it decides first).

    Written in the strict subset OpenAI-style servers accept (every property required, no additional ones).
    ``query_chars=None`` drops the queries' ``maxLength`` (the tuned planner's, whose long queries are cut instead:
    :func:`check_plan`'s ``cut_long``).
    """
    item: dict[str, Any] = {"type": "string", "minLength": 1}
    if query_chars is not None:
        item["maxLength"] = query_chars
    return {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": list(MODES)},
            "queries": {
                "type": "array",
                "items": item,
                "minItems": 1,
                "maxItems": max(1, max_subqueries),
            },
        },
        "required": ["mode", "queries"],
        "additionalProperties": False,
    }


STANDALONE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"question": {"type": "string", "minLength": 1, "maxLength": 300}},
    "required": ["question"],
    "additionalProperties": False,
}


def content_words(text: str) -> set[str]:
    """Lower-cased words of ``text`` that carry meaning (no stop words, no placeholders)."""
    return {w for w in re.findall(r"[^\W_]+", _PLACEHOLDER.sub(" ", text.lower())) if w not in _STOP}


# --- the public entry points ---------------------------------------------------------------------------------------


def plan_question(
    llm: ChatLLM | None,
    question: str,
    history: Sequence[Message] = (),
    *,
    max_subqueries: int = 3,
    decompose: bool = True,
    decide: Literal["llm", "rules", "tuned"] = "llm",
    chain_min_words: int = CHAIN_MIN_WORDS,
    plan_llm: ChatLLM | None = None,
) -> Plan:
    """Rewrite ``question`` to stand alone, then decide how to search for it. Never raises.

    Args:
        llm: the model that rewrites and plans, or None for the rules alone.
        question: the user's question (``{k}`` in it is written ``(k)``: placeholders belong to the planner).
        history: earlier turns of the conversation (``{"role", "content"}``), oldest first.
        max_subqueries: most sub-queries a plan may have (``Settings.max_subqueries``).
        decompose: False keeps every question whole (``source="off"``); the stand-alone rewrite still runs.
        decide: ``rules`` decides and splits by the rules alone (``source="rules"``), saving the planning call; the
            stand-alone rewrite still uses the LLM.
        chain_min_words: content words from which the rules chain a question (:func:`rule_plan`).
        plan_llm: the model that plans when it is not ``llm``: with ``decide="tuned"`` the tuned planner's model
            (:mod:`hopmem.agents.tuned_planner`), which plans from :func:`hopmem.agents.prompts.decompose_messages`
            (None falls back to the rules with a warning); with ``decide="llm"`` a planning-only LLM (None: ``llm``
            plans). Either is checked like the LLM's plan; ``llm`` still rewrites follow-ups.

    Returns:
        The plan; ``source="fallback"`` with a ``warning`` when the LLM's answer could not be used.
    """
    started = time.perf_counter()
    # Placeholder syntax in the user's own text becomes "(k)": only the planner's sequential queries hold "{k}".
    question = _PLACEHOLDER.sub(r"(\1)", " ".join(str(question).split()))
    standalone, warnings = rewrite_standalone(llm, question, history)
    standalone = _PLACEHOLDER.sub(r"(\1)", standalone)
    if not decompose:
        plan = Plan("whole", [standalone], standalone, "off", _join(warnings))
    elif not standalone:
        plan = Plan("whole", [standalone], standalone, "fallback", _join([*warnings, "empty question"]))
    elif decide == "rules":
        mode, queries = rule_plan(standalone, max_subqueries=max_subqueries, chain_min_words=chain_min_words)
        plan = Plan(mode, queries, standalone, "rules", _join(warnings))
    elif decide == "tuned" and plan_llm is None:
        plan = _fallback(standalone, max_subqueries, chain_min_words, [*warnings, "no tuned planner loaded"])
    elif decide == "llm" and llm is None and plan_llm is None:
        plan = _fallback(standalone, max_subqueries, chain_min_words, [*warnings, "no LLM configured; rule-based plan"])
    elif len(standalone) > MAX_PLAN_QUESTION_CHARS:
        plan = _fallback(
            standalone, max_subqueries, chain_min_words, [*warnings, "question too long to plan with the LLM"]
        )
    else:
        planner = plan_llm if decide == "tuned" else (plan_llm or llm)
        prompt = decompose_messages if decide == "tuned" else plan_messages
        assert planner is not None  # the branches above handle a missing model
        try:
            tuned = decide == "tuned"
            reply, _ = planner.complete_json(
                prompt(standalone, max_subqueries=max_subqueries),
                plan_schema(max_subqueries, query_chars=None if tuned else MAX_QUERY_CHARS),
                max_tokens=PLAN_MAX_TOKENS,
            )
            mode, queries = check_plan(reply, standalone, max_subqueries=max_subqueries, cut_long=tuned)
            plan = Plan(mode, queries, standalone, "tuned" if decide == "tuned" else "llm", _join(warnings))
        except (HopmemError, ValueError) as exc:
            log.info("planner falls back to rules: %s", exc)
            plan = _fallback(standalone, max_subqueries, chain_min_words, [*warnings, f"LLM plan not used: {exc}"])
    plan.ms = (time.perf_counter() - started) * 1000
    return plan


def rewrite_standalone(llm: ChatLLM | None, question: str, history: Sequence[Message]) -> tuple[str, list[str]]:
    """``question`` made to stand alone using ``history``, and the warnings met on the way. Never raises.

    Without a previous user turn the question is returned unchanged (no LLM call). Otherwise the LLM rewrites it
    under :data:`STANDALONE_SCHEMA`; a rewrite that fails, is empty, shares no content word with the question and
    the conversation, or - for a question that refers back (a pronoun ...) - takes no word from the conversation, is
    replaced by :func:`rule_standalone`.
    """
    turns = [{"role": str(t.get("role", "")), "content": str(t.get("content", ""))} for t in history]
    turns = [t for t in turns if t["role"] in ("user", "assistant") and t["content"].strip()]
    if not question or not any(t["role"] == "user" for t in turns):
        return question, []
    if llm is None:
        return rule_standalone(question, turns), []
    if len(question) > MAX_PLAN_QUESTION_CHARS:
        return rule_standalone(question, turns), ["question too long to rewrite with the LLM"]
    try:
        reply, _ = llm.complete_json(
            standalone_messages(question, turns), STANDALONE_SCHEMA, max_tokens=STANDALONE_MAX_TOKENS
        )
        if not isinstance(reply, dict):
            raise ValueError("the rewrite is not an object")
        text = " ".join(str(reply.get("question", "")).split())
        known = content_words(question) | {w for t in turns[-4:] for w in content_words(t["content"])}
        if not text:
            raise ValueError("the rewrite is empty")
        if not content_words(text) & known:
            raise ValueError(f"the rewrite {text[:60]!r} shares no word with the conversation")
        if _leans(question) and not (content_words(text) - content_words(question)) & known:
            raise ValueError(f"the rewrite {text[:60]!r} takes nothing from the conversation")
        return text, []
    except (HopmemError, ValueError) as exc:
        log.info("stand-alone rewrite falls back to rules: %s", exc)
        return rule_standalone(question, turns), [f"LLM rewrite not used: {exc}"]


def rule_standalone(question: str, history: Sequence[Message]) -> str:
    """The rule-based stand-alone form: a follow-up that leans on the conversation gets the last user turn prepended.

    A question "leans on" the conversation when it has a pronoun or deictic word (he, it, they, there, that ...) or
    starts with "and"/"what about". This does not resolve the pronoun; it gives retrieval the words it refers to.
    """
    previous = [" ".join(t["content"].split()) for t in history if t.get("role") == "user" and t["content"].strip()]
    if not previous:
        return question
    return f"{previous[-1]} {question}" if _leans(question) else question


def _leans(question: str) -> bool:
    """Whether ``question`` refers back to the conversation (a pronoun or deictic word, or "and ..."/"what about")."""
    words = set(re.findall(r"[^\W_]+", question.lower()))
    return bool(words & _PRONOUNS) or question.lower().startswith(("and ", "what about", "how about"))


def fill_placeholders(query: str, answers: Sequence[str]) -> str:
    """``query`` with each ``{k}`` replaced by ``answers[k-1]`` (one pass: answers are not scanned for placeholders).

    A placeholder with no (or an empty) answer is dropped, so that retrieval never searches for a literal ``{2}``.
    """

    def one(match: re.Match[str]) -> str:
        k = int(match.group(1))
        return " ".join(answers[k - 1].split()) if 1 <= k <= len(answers) else ""

    return " ".join(_PLACEHOLDER.sub(one, query).split())


# --- checking the LLM's plan ---------------------------------------------------------------------------------------


def fit_query(text: str, limit: int = MAX_QUERY_CHARS) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut[:limit].rstrip(" ,;:")


def tuned_query_chars(question: str) -> int:
    """The tuned planner's longest sub-query for ``question``: room to restate the whole question after a placeholder
    (the rules' own chain step is ``"{1} " + question``), and never less than :data:`MAX_QUERY_CHARS`."""
    return max(MAX_QUERY_CHARS, len(question) + PLACEHOLDER_ROOM)


def check_plan(reply: Any, question: str, *, max_subqueries: int, cut_long: bool = False) -> tuple[Mode, list[str]]:
    """The mode and sub-queries of an LLM plan ``reply`` for ``question``, or ValueError saying what is wrong.

    ``cut_long`` (the tuned planner's plans): a sub-query may be as long as :func:`tuned_query_chars` allows (a chain
    step may restate a long question, as the rules' chain does), and a longer one is cut at a word boundary instead
    of refused. The tuned planner generates without a grammar (transformers), so nothing stops a runaway copy as
    llama.cpp's or vLLM's constrained decoding would stop at a schema's ``maxLength``; the cut stands in for that
    stop. Its warm-up targets obey the same limit (:func:`hopmem.finetune.decomposer_warmup.enumerated_plans`).

    Rules: a known mode; for ``whole``, and for a "split" into a single query, the queries are replaced by
    ``[question]``; a split needs 2 to ``max_subqueries`` distinct, non-empty sub-queries of at most
    :data:`MAX_QUERY_CHARS` characters (:func:`tuned_query_chars` with ``cut_long``), each sharing a content word
    with the question (or, in a chain, holding a placeholder), none repeating the question except the first step of
    a chain; placeholders only in ``sequential`` mode, only pointing at earlier sub-queries, and at least one of them.
    """
    if not isinstance(reply, dict):
        raise ValueError("the plan is not a JSON object")
    mode = reply.get("mode")
    raw = reply.get("queries")
    if mode not in MODES:
        raise ValueError(f"unknown mode {str(mode)[:30]!r}")
    if not isinstance(raw, list) or not all(isinstance(q, str) for q in raw):
        raise ValueError("queries is not a list of strings")
    if mode == "whole":
        return "whole", [question]
    queries = [" ".join(q.split()) for q in raw]
    limit = tuned_query_chars(question) if cut_long else MAX_QUERY_CHARS
    if cut_long:
        queries = [fit_query(q, limit) for q in queries]
    if len(queries) == 1 and not _PLACEHOLDER.search(queries[0]):
        return "whole", [question]  # a "split" into one query is a whole plan
    if len(queries) < 2:
        raise ValueError(f"a {mode} plan with {len(queries)} sub-query")
    if len(queries) > max_subqueries:
        raise ValueError(f"{len(queries)} sub-queries, more than {max_subqueries}")
    if any(not q or not _PLACEHOLDER.sub("", q).strip(" ,.?") for q in queries):
        raise ValueError("an empty sub-query")
    if any(len(q) > limit for q in queries):
        raise ValueError(f"a sub-query longer than {limit} characters")
    # A chain may start from the question itself (the rules' own chain does: [q, "{1} q"]); nothing else repeats it.
    repeats = [n for n, q in enumerate(queries) if q.lower() == question.lower()]
    if len({q.lower() for q in queries}) < len(queries) or any(n > 0 or mode != "sequential" for n in repeats):
        raise ValueError("duplicate sub-queries (or one that repeats the question)")
    asked = content_words(question)
    linked = False
    for n, q in enumerate(queries, start=1):
        refs = [int(k) for k in _PLACEHOLDER.findall(q)]
        if refs and mode != "sequential":
            raise ValueError("placeholders in a parallel plan")
        if any(not 1 <= k < n for k in refs):
            raise ValueError(f"sub-query {n} refers to an answer that is not earlier in the chain")
        linked = linked or bool(refs)
        if not refs and not content_words(q) & asked:
            raise ValueError(f"sub-query {n} ({q[:40]!r}) shares no word with the question")
    if mode == "sequential" and not linked:
        raise ValueError("a sequential plan whose sub-queries use no earlier answer")
    return mode, queries


# --- the rule-based plan -------------------------------------------------------------------------------------------

_CONNECT = _wordset("of the de von van del la le di da from by on in for a an")
_WH = _wordset("which who whom what whose when where how are is were was do does did has have had can")
_AND_CUE = re.compile(r"\bboth\b|\bbetween\b|\bsame\b|\bin common\b|\bshare[ds]?\b", re.IGNORECASE)


def _is_name(word: str) -> bool:
    return bool(word) and (word[0].isupper() or word[0].isdigit()) and word.lower() not in _WH | {"both", "between"}


def _name_before(words: list[str]) -> list[str]:
    """The trailing run of name-like words of ``words``: capitalised words or digits, joined by lower-case
    connectors (of, the, von, from ...) only where a capitalised word stands on both sides."""
    bare = [w.strip(",;:\"'") for w in words]
    run: list[str] = []
    i = len(bare) - 1
    while i >= 0:
        if _is_name(bare[i]):
            run.insert(0, bare[i])
            i -= 1
            continue
        j = i
        while j >= 0 and bare[j].lower() in _CONNECT and not _is_name(bare[j]):
            j -= 1
        if run and j >= 0 and j < i and _is_name(bare[j]):
            run[:0] = bare[j + 1 : i + 1]
            i = j
            continue
        break
    return run


def _name_after(words: list[str]) -> list[str]:
    """The leading run of name-like words of ``words`` (a lower-case article may open it); punctuation ends it."""
    run: list[str] = []
    for i, word in enumerate(words):
        bare = word.strip("\"'?.!;:,")
        ends = word.rstrip("\"'").endswith((",", "?", ".", "!", ":", ";")) and not re.fullmatch(r"[A-Z]\.", word)
        if _is_name(bare):
            run.append(bare)
        elif bare.lower() in _CONNECT:
            j = i
            while j < len(words) and words[j].strip("\"'").lower() in _CONNECT:
                j += 1
            if j < len(words) and _is_name(words[j].strip("\"'?.!;:,")):
                if run:
                    run.append(bare)
                # a leading article is not part of the name
            else:
                break
        else:
            break
        if ends:
            break
    return run


def _pair(question: str) -> tuple[str, str, str] | None:
    """(A, B, the rest of the question) for a comparison of two named things - "..., A or B?", "Are A and B both
    ...?", "Both A and B ...", "... in common / the same ..." - else None."""
    for conj in (" or ", " and "):
        if conj == " and " and not _AND_CUE.search(question):
            continue
        at = question.find(conj)
        while at != -1:
            left, right = question[:at], question[at + len(conj) :]
            clause = re.split(r"[,:]", left)[-1].split() if re.search(r"[,:]", left) else []
            first = [w for w in clause if w.lower() not in _WH and w.lower() != "both"] if len(clause) <= 6 else []
            first = first or _name_before(left.split())
            second = _name_after(right.split())
            a, b = " ".join(first).strip(" ,"), " ".join(second).strip(" ,?")
            if a and b and content_words(a) and content_words(b) and _is_name(a.split()[-1]) and _is_name(b.split()[0]):
                span_start = left.rfind(first[0])
                span_end = at + len(conj) + right.find(second[-1]) + len(second[-1])
                return a, b, question[:span_start] + " " + question[span_end:]
            at = question.find(conj, at + 1)
    return None


def rule_plan(
    question: str, *, max_subqueries: int = 3, chain_min_words: int = CHAIN_MIN_WORDS
) -> tuple[Mode, list[str]]:
    """The rule-based decision.

    * A comparison of two named things ("Which is older, A or B?", "Are A and B both ...?", "Both A and B ...")
      becomes two parallel sub-queries "A <rest of the question>", "B <rest>".
    * Any other question with at least ``chain_min_words`` content words becomes the two-step chain
      ``[question, "{1} question"]``: the second search carries the short answer the first one's evidence gives
      (:func:`bridge_answer`), which is how a bridge question ("the woman who portrayed X") reaches its second
      passage. The rules cannot write a better second query than that. The graph also searches the question on its
      own (as it does for every split), so its list enters the fusion twice, against the bridge search's once: the
      setting the measurements in docs/agent.md used.
    * A short question ("What is the capital of France?") stays whole: one search, no extra LLM call.
    """
    pair = _pair(question) if max_subqueries >= 2 else None
    if pair is None:
        if max_subqueries >= 2 and len(content_words(question)) >= chain_min_words:
            return "sequential", [question, "{1} " + question]
        return "whole", [question]
    a, b, rest = pair
    words = [w.strip(",.?!;:") for w in rest.split()]
    while words and (words[0].lower() in _WH or words[0].lower() in ("both", "between", "")):
        words.pop(0)
    frame = " ".join(w for w in words if w and w.lower() != "both")
    queries = [f"{a} {frame}".strip(), f"{b} {frame}".strip()]
    if queries[0].lower() == queries[1].lower():
        return "whole", [question]
    return "parallel", queries


def _fallback(question: str, max_subqueries: int, chain_min_words: int, warnings: list[str]) -> Plan:
    mode, queries = rule_plan(question, max_subqueries=max_subqueries, chain_min_words=chain_min_words)
    return Plan(mode, queries, question, "fallback", _join(warnings))


def _join(warnings: Sequence[str]) -> str | None:
    return "; ".join(warnings) if warnings else None


__all__ = [
    "STANDALONE_SCHEMA",
    "Plan",
    "check_plan",
    "fill_placeholders",
    "plan_question",
    "plan_schema",
    "rewrite_standalone",
    "rule_plan",
    "rule_standalone",
]
