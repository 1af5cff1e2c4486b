"""How a sharded run splits its copies over worker processes, and where each shard's hosts listen.

The copies (of one line with ``--scale K``, or of every line of a factory) are cut into ``workers`` runs of
consecutive copies of near-equal size; a worker's copies of one line are one *shard*: one ``NetworkedRun``
(model, host link, equipment side) with its own folder ``shards/<n>/``. A worker holding copies of two lines
runs two shards in its process. Each shard's hosts get their own block of loopback addresses: the third octet
of ``--equipment-prefix`` moves on by as many blocks of 254 as the shards before it used, so no two shards
ever bind the same address (and a shard's addresses do not depend on how many workers there are beside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twin.errors import ConfigError
from twin.line.factory import Copy


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """One shard: which worker runs it, which copies of which line, and where its hosts listen."""

    index: int
    worker: int
    line: str
    line_ref: str
    copies: tuple[int, ...]
    equipment_prefix: str
    start_offsets: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "shard": self.index,
            "worker": self.worker,
            "line": self.line,
            "copies": list(self.copies),
            "equipment_prefix": self.equipment_prefix,
            "start_offsets_s": {str(k): v for k, v in self.start_offsets.items() if v},
        }


def chunks(n: int, parts: int) -> list[range]:
    """``n`` items cut into ``parts`` runs of consecutive items, sizes differing by at most one (none empty)."""
    parts = max(1, min(parts, n))
    size, extra = divmod(n, parts)
    out, start = [], 0
    for p in range(parts):
        end = start + size + (1 if p < extra else 0)
        out.append(range(start, end))
        start = end
    return out


def plan_shards(copies: list[Copy], equipment: dict[str, int], workers: int, prefix: str) -> list[ShardSpec]:
    """The shards of a run: ``copies`` in order over ``workers``; ``equipment``: equipment per copy, by line."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    first, second, third = (int(p) for p in prefix.rstrip(".").split("."))
    shards: list[ShardSpec] = []
    for worker, part in enumerate(chunks(len(copies), workers)):
        by_line: dict[str, list[Copy]] = {}
        for i in part:
            by_line.setdefault(copies[i].line, []).append(copies[i])
        for line, mine in by_line.items():
            blocks = -(-equipment[line] * len(mine) // 254)
            if third + blocks - 1 > 255:
                raise ConfigError(
                    f"the shards' hosts need more loopback addresses than {prefix}1 to x.x.255.254 hold: use a lower "
                    "--equipment-prefix or fewer copies"
                )
            shards.append(
                ShardSpec(
                    index=len(shards),
                    worker=worker,
                    line=line,
                    line_ref=mine[0].ref,
                    copies=tuple(c.copy for c in mine),
                    equipment_prefix=f"{first}.{second}.{third}.",
                    start_offsets={c.copy: c.offset_s for c in mine if c.offset_s > 0},
                )
            )
            third += blocks
    return shards
