"""Multi-session conversations (the LoCoMo format) as plain records, and the memories a conversation becomes.

A conversation file is a JSON list of samples (or one sample), each::

    {"sample_id": "...", "conversation": {"speaker_a": "...", "speaker_b": "...",
        "session_1_date_time": "1:56 pm on 8 May, 2023", "session_1": [{"speaker", "dia_id", "text",
        optional "blip_caption", "img_url", "query"}, ...], ...},
     "qa": [{"question", "answer" | "adversarial_answer", "evidence": ["D1:3", ...], "category"}, ...]}

This module reads that shape into :class:`Conversation`, :class:`Turn` and :class:`ConversationQuestion` (pure data,
no store), parses the session dates to ISO dates (the raw string is kept), can write the session date next to the
relative expressions a turn uses ("yesterday" -> "yesterday (7 May 2023)"), and turns a conversation into the
memory items :meth:`hopmem.memory.engine.MemoryEngine.add_conversation` stores: one per turn, or one per window of
``window`` consecutive turns of a session. Every memory's text starts with its session date, so a "when did..."
question is answered from the text alone; its metadata names the speaker(s), session, date and turn ids.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hopmem.memory.errors import InputError

SOURCE_CLASS = "conversation"
"""The source class of conversation turns (the trust table's ceiling for it applies; the user's import is not gated)."""

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_DATE = re.compile(r"(\d{1,2})\s+([A-Za-z]+)\.?,?\s+(\d{4})")
_DATE_MONTH_FIRST = re.compile(r"([A-Za-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?", re.IGNORECASE)
_SESSION_KEY = re.compile(r"^session_(\d+)$")
_DIA_ID = re.compile(r"D:?(\d+):(\d+)")


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation.

    Attributes:
        dia_id: the turn's id as the data names it (``D<session>:<n>``).
        speaker: who spoke.
        text: what was said.
        session: the session number (1-based).
        date: the session's date as an ISO date (``2023-05-08``), or None when the raw string did not parse.
        date_raw: the session's date as the data wrote it.
        time: the session's time of day (``13:56``) when the raw string gives one.
        caption: the caption of an image the speaker shared (``blip_caption``), if any.
        image_urls: the shared image's address(es), if any.
    """

    dia_id: str
    speaker: str
    text: str
    session: int
    date: str | None
    date_raw: str
    time: str | None = None
    caption: str | None = None
    image_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConversationQuestion:
    """One question about a conversation, with the turns that answer it.

    Attributes:
        id: ``<conversation id>:q<position>`` (position in the sample's ``qa`` list, 0-based).
        question: the question.
        category: the category number as the data gives it (LoCoMo: 1 multi-hop, 2 temporal, 3 open-domain,
            4 single-hop, 5 adversarial).
        answers: the gold answers (empty for an adversarial question without an ``answer``).
        evidence: the evidence turn ids, normalised (``D:11:26`` -> ``D11:26``; ``"D8:6; D9:17"`` split).
        adversarial_answer: the misleading answer of an adversarial question, if given.
    """

    id: str
    question: str
    category: int
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    adversarial_answer: str | None = None


@dataclass(frozen=True)
class Conversation:
    """One multi-session conversation: its turns in order and the questions about it."""

    id: str
    speakers: tuple[str, ...]
    turns: tuple[Turn, ...]
    questions: tuple[ConversationQuestion, ...] = field(default_factory=tuple)

    @property
    def sessions(self) -> int:
        return len({t.session for t in self.turns})


def parse_session_date(raw: str) -> tuple[str | None, str | None]:
    """The ISO date and the 24-hour time (``HH:MM``) of a session's date string; None for what does not parse.

    Accepts LoCoMo's ``"1:56 pm on 8 May, 2023"`` and the usual variants (``8 May 2023``, ``May 8, 2023``, an ISO
    date), with or without a time.
    """
    text = str(raw or "").strip()
    day = month = year = None
    if m := _ISO.search(text):
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif (m := _DATE.search(text)) and m.group(2).lower() in _MONTHS:
        day, month, year = int(m.group(1)), _MONTHS[m.group(2).lower()], int(m.group(3))
    elif (m := _DATE_MONTH_FIRST.search(text)) and m.group(1).lower() in _MONTHS:
        month, day, year = _MONTHS[m.group(1).lower()], int(m.group(2)), int(m.group(3))
    iso = None
    if day is not None and month is not None and year is not None:
        try:
            iso = date(year, month, day).isoformat()
        except ValueError:
            iso = None
    clock = None
    if m := _TIME.search(text.split(" on ")[0] if " on " in text else text):
        hour, minute = int(m.group(1)), int(m.group(2))
        suffix = (m.group(3) or "").lower().replace(".", "")
        if suffix == "pm" and hour < 12:
            hour += 12
        elif suffix == "am" and hour == 12:
            hour = 0
        if 0 <= hour < 24 and 0 <= minute < 60:
            clock = f"{hour:02d}:{minute:02d}"
    return iso, clock


def human_date(iso: str) -> str:
    """``2023-05-08`` -> ``8 May 2023`` (the form people and questions use)."""
    d = date.fromisoformat(iso)
    return f"{d.day} {calendar.month_name[d.month]} {d.year}"


def normalize_evidence(values: object) -> tuple[str, ...]:
    """Evidence turn ids in a canonical form: ``D<session>:<n>``; entries that name no turn are dropped."""
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else list(values) if isinstance(values, Sequence) else []
    out: list[str] = []
    for item in items:
        for m in _DIA_ID.finditer(str(item)):
            out.append(f"D{int(m.group(1))}:{int(m.group(2))}")
    return tuple(dict.fromkeys(out))


def parse_conversation(sample: Mapping[str, Any], *, default_id: str = "conversation") -> Conversation:
    """One LoCoMo-format sample (``{"sample_id", "conversation", "qa"}``, or the ``conversation`` object alone).

    Raises:
        InputError: when the object has no session with turns.
    """
    if not isinstance(sample, Mapping):
        raise InputError(f"A conversation is a JSON object, not {type(sample).__name__}.")
    body = sample.get("conversation", sample)
    if not isinstance(body, Mapping):
        raise InputError("The 'conversation' field must be a JSON object of sessions.")
    conv_id = str(sample.get("sample_id") or default_id)
    numbers = sorted(int(m.group(1)) for key in body if (m := _SESSION_KEY.match(str(key))))
    turns: list[Turn] = []
    for number in numbers:
        raw_turns = body.get(f"session_{number}")
        if not isinstance(raw_turns, list):
            continue
        date_raw = str(body.get(f"session_{number}_date_time") or "")
        iso, clock = parse_session_date(date_raw)
        for position, raw in enumerate(raw_turns, start=1):
            if not isinstance(raw, Mapping) or not str(raw.get("text") or raw.get("blip_caption") or "").strip():
                continue
            urls = raw.get("img_url") or ()
            caption = str(raw.get("blip_caption") or "").strip() or None
            turns.append(
                Turn(
                    dia_id=normalize_evidence([raw.get("dia_id")])[0]
                    if normalize_evidence([raw.get("dia_id")])
                    else f"D{number}:{position}",
                    speaker=str(raw.get("speaker") or "unknown").strip() or "unknown",
                    text=str(raw.get("text") or "").strip(),
                    session=number,
                    date=iso,
                    date_raw=date_raw,
                    time=clock,
                    caption=caption,
                    image_urls=tuple(str(u) for u in ([urls] if isinstance(urls, str) else urls)),
                )
            )
    if not turns:
        raise InputError(f"Conversation {conv_id!r} has no session with turns (keys session_<n>: [...]).")
    speakers = [str(body[k]) for k in ("speaker_a", "speaker_b") if body.get(k)]
    speakers += [t.speaker for t in turns]
    questions = []
    for position, qa in enumerate(sample.get("qa") or []):
        if not isinstance(qa, Mapping) or not str(qa.get("question") or "").strip():
            continue
        answer = qa.get("answer")
        adversarial = qa.get("adversarial_answer")
        questions.append(
            ConversationQuestion(
                id=f"{conv_id}:q{position}",
                question=str(qa["question"]).strip(),
                category=int(qa.get("category") or 0),
                answers=() if answer is None else (str(answer),),
                evidence=normalize_evidence(qa.get("evidence")),
                adversarial_answer=None if adversarial is None else str(adversarial),
            )
        )
    return Conversation(conv_id, tuple(dict.fromkeys(speakers)), tuple(turns), tuple(questions))


def looks_like_conversations(data: object) -> bool:
    """Whether parsed JSON has the LoCoMo shape (a sample, or a list of samples, with sessions of turns)."""
    samples = data if isinstance(data, list) else [data]
    if not samples or not isinstance(samples[0], Mapping):
        return False
    body = samples[0].get("conversation", samples[0])
    return isinstance(body, Mapping) and any(
        _SESSION_KEY.match(str(k)) and isinstance(v, list) for k, v in body.items()
    )


def is_conversation_file(path: Path | str) -> bool:
    """Whether ``path`` is a ``.json`` file in the LoCoMo shape (read only when the name ends in ``.json``)."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        return looks_like_conversations(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False


def load_conversations(path: Path | str) -> list[Conversation]:
    """Every conversation of a LoCoMo-format JSON file (a list of samples, or one sample).

    Raises:
        InputError: when the file is missing, is not JSON, or is not in the conversation shape.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"Cannot read conversation file {path}: {exc.strerror or exc}.") from exc
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}).") from exc
    if not looks_like_conversations(data):
        raise InputError(f"{path} is not a conversation file: expected samples with session_<n> lists of turns.")
    samples = data if isinstance(data, list) else [data]
    return [parse_conversation(s, default_id=f"{path.stem}-{i}") for i, s in enumerate(samples)]


_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10}  # fmt: skip
_RELATIVE = re.compile(
    r"\b(yesterday|today|tonight|tomorrow|last night|this morning|this afternoon|this evening|"
    r"(?:last|this|next) (?:week|weekend|month|year)|"
    r"last (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten) (?:day|week|weekend|month|year)s? ago)\b",
    re.IGNORECASE,
)


def _month_shift(d: date, months: int) -> tuple[int, int]:
    index = d.year * 12 + (d.month - 1) + months
    return index // 12, index % 12 + 1


def resolve_relative(expression: str, iso: str) -> str | None:
    """The date a relative expression means, said from the session date ``iso``; None for one it cannot place.

    ``yesterday`` -> ``7 May 2023``; ``last week`` -> ``the week before 8 May 2023``; ``last month`` -> ``April
    2023``; ``two years ago`` -> ``2021``; ``last Friday`` -> the Friday before the session.
    """
    d = date.fromisoformat(iso)
    e = expression.lower()
    if e in ("today", "tonight", "this morning", "this afternoon", "this evening"):
        return human_date(d.isoformat())
    if e in ("yesterday", "last night"):
        return human_date((d - timedelta(days=1)).isoformat())
    if e == "tomorrow":
        return human_date((d + timedelta(days=1)).isoformat())
    if e.startswith("last ") and e[5:] in _WEEKDAYS:
        back = (d.weekday() - _WEEKDAYS[e[5:]]) % 7 or 7
        return human_date((d - timedelta(days=back)).isoformat())
    words = e.split()
    if e.endswith(" ago"):
        n = int(words[0]) if words[0].isdigit() else _NUMBERS.get(words[0], 1)
        unit = words[1].rstrip("s")
        if unit == "day":
            return human_date((d - timedelta(days=n)).isoformat())
        if unit in ("week", "weekend"):
            return f"the {unit} of {human_date((d - timedelta(days=7 * n)).isoformat())}"
        if unit == "month":
            year, month = _month_shift(d, -n)
            return f"{calendar.month_name[month]} {year}"
        return str(d.year - n)
    which, unit = words
    shift = {"last": -1, "this": 0, "next": 1}[which]
    if unit in ("week", "weekend"):
        if shift == 0:
            return f"the {unit} of {human_date(d.isoformat())}"
        return f"the {unit} {'before' if shift < 0 else 'after'} {human_date(d.isoformat())}"
    if unit == "month":
        year, month = _month_shift(d, shift)
        return f"{calendar.month_name[month]} {year}"
    return str(d.year + shift)


def with_resolved_dates(text: str, iso: str | None) -> str:
    """``text`` with the date each relative expression means written after it in brackets (unchanged without a date)."""
    if not iso:
        return text

    def replace(m: re.Match[str]) -> str:
        resolved = resolve_relative(m.group(0), iso)
        return m.group(0) if resolved is None else f"{m.group(0)} ({resolved})"

    return _RELATIVE.sub(replace, text)


def turn_line(turn: Turn, *, resolve_dates: bool = True) -> str:
    """One turn as a line of memory text: ``Speaker: text (image: caption)``, relative dates resolved."""
    text = with_resolved_dates(turn.text, turn.date) if resolve_dates else turn.text
    if turn.caption:
        text = f"{text} (image: {turn.caption})".strip()
    return f"{turn.speaker}: {text}"


def date_label(turn: Turn) -> str:
    """The date a memory's text starts with: ``8 May 2023``, or the raw string when it did not parse."""
    return human_date(turn.date) if turn.date else turn.date_raw


def without_date_label(text: str) -> str:
    """A conversation memory's text without the ``[8 May 2023] `` it starts with (other text is returned as is).

    The agent's reranker reads conversation memories so (``conversation_rerank_date``): the date is for the answer,
    and the cross-encoder ordered LoCoMo turns better without it (docs/conversations.md).
    """
    return _DATE_LABEL.sub("", text, count=1)


_DATE_LABEL = re.compile(r"^\[[^\]\n]{1,60}\]\s*")


def without_speaker_labels(text: str) -> str:
    """A conversation memory's lines without the ``Speaker: `` each starts with (apply after the date is removed).

    The agent's reranker also reads a turn so (``conversation_rerank_speaker``): a LoCoMo adversarial question names
    the other speaker on purpose, and a cross-encoder that reads the name prefers that speaker's turns.
    """
    return _SPEAKER_LABEL.sub("", text)


_SPEAKER_LABEL = re.compile(r"^[^:\n]{1,40}:[ \t]*", re.MULTILINE)


def windows(turns: Sequence[Turn], window: int) -> list[list[Turn]]:
    """Consecutive runs of at most ``window`` turns, never across a session boundary (each turn in exactly one)."""
    if window < 1:
        raise InputError(f"window must be at least 1, not {window}.")
    out: list[list[Turn]] = []
    for turn in turns:
        if out and len(out[-1]) < window and out[-1][-1].session == turn.session:
            out[-1].append(turn)
        else:
            out.append([turn])
    return out


def memory_items(
    conversation: Conversation,
    *,
    window: int = 1,
    embed_context: int = 0,
    resolve_dates: bool = True,
    source_class: str = SOURCE_CLASS,
) -> list[tuple[dict[str, Any], str]]:
    """The memories ``conversation`` becomes, each with the text its dense vector is made from.

    Args:
        conversation: the conversation.
        window: turns per memory (consecutive, within a session).
        embed_context: turns before and after a memory (same session) added to the text its vector is made from;
            the stored text, and so the lexical index and the answer, hold the memory's own turns only.
        resolve_dates: write the date each relative expression ("yesterday", "last week") means after it.
        source_class: the memories' source class.

    Returns:
        ``(item, embed_text)`` pairs; ``item`` is an ``add_many`` mapping (content, tags, metadata, source_class,
        source). The content is ``[8 May 2023] Speaker: text``, one line per turn.
    """
    position = {t.dia_id: i for i, t in enumerate(conversation.turns)}
    out: list[tuple[dict[str, Any], str]] = []
    for group in windows(conversation.turns, window):
        first = group[0]
        lines = [turn_line(t, resolve_dates=resolve_dates) for t in group]
        content = f"[{date_label(first)}] " + "\n".join(lines)
        embed = content
        if embed_context > 0:
            start, end = position[first.dia_id], position[group[-1].dia_id]
            before = [
                t for t in conversation.turns[max(0, start - embed_context) : start] if t.session == first.session
            ]
            after = [t for t in conversation.turns[end + 1 : end + 1 + embed_context] if t.session == first.session]
            embed = "\n".join(
                [turn_line(t, resolve_dates=resolve_dates) for t in before]
                + [content]
                + [turn_line(t, resolve_dates=resolve_dates) for t in after]
            )
        metadata: dict[str, Any] = {
            "kind": "conversation_turn",
            "conversation": conversation.id,
            "session": first.session,
            "date": first.date,
            "date_raw": first.date_raw,
            "time": first.time,
            "speakers": list(dict.fromkeys(t.speaker for t in group)),
            "dia_ids": [t.dia_id for t in group],
        }
        if len(group) == 1:
            metadata["speaker"] = first.speaker
        images = [u for t in group for u in t.image_urls]
        if images:
            metadata["image_urls"] = images
        item = {
            "content": content,
            "tags": [f"conversation:{conversation.id}", f"session:{first.session}"],
            "metadata": metadata,
            "source_class": source_class,
            "source": f"conversation:{conversation.id}",
        }
        out.append((item, embed))
    return out


def turns_of(metadata: Mapping[str, Any] | None) -> list[str]:
    """The turn ids a conversation memory holds (from its metadata; empty for any other memory)."""
    ids = (metadata or {}).get("dia_ids") or []
    return [str(i) for i in ids] if isinstance(ids, list) else []
