"""Load an AsyncAPI 3 document into an ``AsyncProfile``: its messages, who sends which, and their schemas.

Made for message protocols where one field names the command (the industrial-PC WebSocket of seed 002 keys every
message by ``cmd``): each message carries that number in ``x-cmd``, operations say which messages the described
application receives (requests, with their ``reply``) and which it sends on its own (pushes). Payload schemas are
compiled once with the same validator the OpenAPI profiles use, so issues name the field as it was sent.
Local ``$ref``s are inlined at load time (the OpenAPI loader's resolver).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.errors import Issue, ProfileError, UnknownOperation
from twin.profile.loader import profile_dirs, read_document, resolve_refs
from twin.profile.validate import CompiledSchema

ASYNCAPI_SUFFIXES = (".asyncapi.yaml", ".asyncapi.yml", ".asyncapi.json")


@dataclass(slots=True)
class AsyncMessage:
    """One message of the protocol."""

    name: str
    cmd: int | None
    title: str
    role: str  # request (received, answered) | reply | push (sent unasked) | message
    schema: CompiledSchema
    reply: str | None = None  # for a request: the name of its answer message
    name_cn: str | None = None
    examples: tuple[Any, ...] = ()
    extensions: dict[str, Any] = field(default_factory=dict)

    def check(self, payload: Any) -> tuple[Any, list[Issue]]:
        """The payload with canonical field names, and what is wrong with it (empty if nothing)."""
        return self.schema.check(payload)

    def fields(self) -> list[str]:
        return list((self.schema.json_schema.get("properties") or {}).keys())


@dataclass(slots=True)
class AsyncProfile:
    name: str
    source: Path
    title: str
    version: str
    document: dict[str, Any] = field(repr=False)
    messages: dict[str, AsyncMessage] = field(default_factory=dict)
    contradictions: tuple[dict[str, Any], ...] = ()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.messages.values())

    def __len__(self) -> int:
        return len(self.messages)

    def by_cmd(self, cmd: int) -> AsyncMessage | None:
        for message in self.messages.values():
            if message.cmd == cmd:
                return message
        return None

    def message(self, ref: str | int) -> AsyncMessage:
        """A message by name (any casing) or command number (``0xE001``, ``57345``)."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.lower().startswith("0x")):
            cmd = ref if isinstance(ref, int) else int(ref, 16)
            found = self.by_cmd(cmd)
            if found is None:
                raise UnknownOperation(f"no message with cmd {cmd:#06x} in profile {self.name}")
            return found
        for message in self.messages.values():
            if message.name.lower() == ref.lower():
                return message
        raise UnknownOperation(f"no message {ref!r} in profile {self.name}")

    def reply_to(self, request: AsyncMessage) -> AsyncMessage | None:
        return self.messages.get(request.reply) if request.reply else None


def available_asyncapi() -> dict[str, Path]:
    """AsyncAPI profiles by name (file name less its suffix), first folder wins."""
    found: dict[str, Path] = {}
    for d in profile_dirs():
        for path in sorted(d.iterdir()):
            for suffix in ASYNCAPI_SUFFIXES:
                if path.name.endswith(suffix) and not path.name.startswith("."):
                    found.setdefault(path.name[: -len(suffix)], path)
    return found


def _find(ref: str | Path) -> Path:
    path = Path(ref)
    if path.is_file():
        return path
    found = available_asyncapi()
    if str(ref) in found:
        return found[str(ref)]
    raise ProfileError(f"no AsyncAPI profile {str(ref)!r}: not a file, nor one of {', '.join(sorted(found)) or 'none'}")


def _message_name(ref_target: dict[str, Any], messages: dict[str, dict[str, Any]]) -> str:
    """The component name of a resolved message object (operations reference channel messages)."""
    for name, msg in messages.items():
        if msg is ref_target or msg == ref_target:
            return name
    raise ProfileError(f"an operation refers to a message that is not among components.messages: {ref_target!r:.80}")


def _roles(doc: dict[str, Any], messages: dict[str, dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    roles: dict[str, str] = {}
    replies: dict[str, str] = {}
    for op_id, op in (doc.get("operations") or {}).items():
        sent = [_message_name(m, messages) for m in op.get("messages") or ()]
        answers = [_message_name(m, messages) for m in ((op.get("reply") or {}).get("messages") or ())]
        if op.get("action") not in ("send", "receive"):
            raise ProfileError(f"operation {op_id}: action must be send or receive, got {op.get('action')!r}")
        for name in sent:
            roles[name] = "request" if answers else ("push" if op["action"] == "send" else "message")
            if answers:
                replies[name] = answers[0]
        for name in answers:
            roles[name] = "reply"
    return roles, replies


def load_asyncapi(ref: str | Path) -> AsyncProfile:
    """Load an AsyncAPI 3 profile by file path or by name (``ipc-open-platform-v1``)."""
    path = _find(ref)
    raw = read_document(path)
    version = str(raw.get("asyncapi", ""))
    if not version.startswith("3."):
        raise ProfileError(f"profile {path} must be an AsyncAPI 3.x document (found asyncapi {version or 'none'})")
    doc = resolve_refs(raw, raw)
    components = (doc.get("components") or {}).get("messages") or {}
    roles, replies = _roles(doc, components)
    casing = doc.get("x-casing") or "camelCase"
    messages: dict[str, AsyncMessage] = {}
    for name, msg in components.items():
        payload = msg.get("payload")
        if not isinstance(payload, dict):
            raise ProfileError(f"profile {path}: message {name} has no payload schema")
        cmd = msg.get("x-cmd")
        messages[name] = AsyncMessage(
            name=name,
            cmd=int(cmd) if cmd is not None else None,
            title=str(msg.get("title", name)),
            role=roles.get(name, "message"),
            schema=CompiledSchema(payload, casing, name),
            reply=replies.get(name),
            name_cn=msg.get("x-name-cn"),
            examples=tuple(ex.get("payload") for ex in msg.get("examples") or () if isinstance(ex, dict)),
            extensions={k: v for k, v in msg.items() if k.startswith("x-")},
        )
    info = doc.get("info") or {}
    return AsyncProfile(
        name=path.name[: -len(next(s for s in ASYNCAPI_SUFFIXES if path.name.endswith(s)))]
        if path.name.endswith(ASYNCAPI_SUFFIXES)
        else path.stem,
        source=path,
        title=str(info.get("title", path.stem)),
        version=str(info.get("version", "")),
        document=raw,
        messages=messages,
        contradictions=tuple(doc.get("x-contradictions") or ()),
    )
