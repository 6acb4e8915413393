"""A problem the checker found: a stable code, where (Resources.X.Properties.Y) and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    code: str
    path: str
    message: str
    level: str = ERROR

    def __str__(self) -> str:
        return f"{self.level}: {self.path}: {self.message} [{self.code}]"


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.level == ERROR]
