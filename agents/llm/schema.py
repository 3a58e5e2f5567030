"""Parse and check structured (JSON-schema constrained) LLM output.

Constrained decoding (llama.cpp grammars, vLLM guided decoding) makes valid JSON likely, not certain: a reply cut off
by ``max_tokens`` is not JSON, a server may ignore the constraint, and a grammar built from an unsupported keyword
degrades silently to "any JSON". So every backend parses the reply and validates it here before handing it on; a
reply that fails raises :class:`~hopmem.memory.errors.LLMError` and callers fall back.

Validation covers the subset of JSON Schema that hopmem's own schemas use (``type``, ``properties``, ``required``,
``additionalProperties``, ``enum``, ``const``, ``items``, ``minItems``/``maxItems``, ``minLength``/``maxLength``,
``minimum``/``maximum``). It is written here rather than taken from the ``jsonschema`` library so that the verdict does
not depend on what else is installed; a keyword outside the subset is ignored, never treated as a failure.
"""

from __future__ import annotations

import json
from typing import Any

from hopmem.memory.errors import LLMError

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (the subset above), as short ``path: problem`` strings; [] when valid."""
    errors: list[str] = []
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {_short(value)} is not one of {schema['enum']}")
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        allowed = tuple(t for k in kinds for t in _TYPES.get(str(k), ()))
        # bool is an int in Python, not in JSON
        if allowed and (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)):
            return [*errors, f"{path}: expected {'/'.join(map(str, kinds))}, got {type(value).__name__}"]
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        errors.extend(f"{path}: missing {name!r}" for name in schema.get("required", []) if name not in value)
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                errors.extend(schema_errors(item, properties[name], f"{path}.{name}"))
            elif extra is False:
                errors.append(f"{path}: unexpected key {_short(name)}")
            elif isinstance(extra, dict):
                errors.extend(schema_errors(item, extra, f"{path}.{name}"))
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if isinstance(schema.get("items"), dict):
            for n, item in enumerate(value):
                errors.extend(schema_errors(item, schema["items"], f"{path}[{n}]"))
    elif isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: above {schema['maximum']}")
    return errors


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_json_reply(text: str, schema: dict[str, Any], *, source: str) -> dict[str, Any] | list[Any]:
    """The JSON object or array in ``text``, checked against ``schema``.

    Args:
        text: the model's reply.
        schema: the JSON schema the reply had to follow.
        source: who produced it, for the error message (e.g. ``llama.cpp model X``).

    Raises:
        LLMError: the reply is not JSON, not an object or array, or breaks the schema.
    """
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        cut = "it was probably cut off by max_tokens" if text.strip() else "it was empty"
        raise LLMError(
            f"The {source} did not return valid JSON ({cut}: {_short(text)}); raise max_tokens or use a larger model."
        ) from exc
    if not isinstance(value, dict | list):
        raise LLMError(f"The {source} returned JSON {_short(value)} where an object was required; use a larger model.")
    errors = schema_errors(value, schema)
    if errors:
        raise LLMError(
            f"The {source} returned JSON that breaks the schema ({'; '.join(errors[:3])}); use a larger model."
        )
    return value
