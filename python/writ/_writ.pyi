"""Type stubs for the native module `writ._writ` (see `python/src/lib.rs`)."""

import datetime
import os
from typing import Any, Literal, Mapping, NoReturn, Optional, Sequence, Union

_Path = Union[str, "os.PathLike[str]"]
_Context = Mapping[str, Any]  # nested dict / list / tuple / str / int / float / bool / None
_At = Union[datetime.datetime, str, None]

__version__: str

class WritError(Exception):
    """Base class of every error writ raises."""

class PolicyError(WritError):
    """A policy that does not load."""

    diagnostics: list[str]
    """Each problem as `file:line:col: severity[CODE]: message`."""

class Decision:
    """What writ decided, and for which request. Immutable. Has no truth
    value: `bool(decision)` raises TypeError (test `.allowed`)."""

    def __bool__(self) -> NoReturn: ...
    @property
    def allowed(self) -> bool:
        """True only for an allow (not for an approve)."""
    @property
    def defaulted(self) -> bool:
        """True when the policy's default answered: no rule applied and no
        agent ceiling, limit or chain check decided."""
    @property
    def decision(self) -> Literal["allow", "deny", "approve"]: ...
    @property
    def rule(self) -> Optional[str]: ...
    @property
    def policy(self) -> Optional[str]: ...
    @property
    def reason(self) -> Optional[str]: ...
    @property
    def risk(self) -> Optional[Literal["low", "medium", "high", "critical"]]: ...
    @property
    def retry_after_s(self) -> Optional[int]: ...
    @property
    def id(self) -> Optional[str]:
        """The audit log's id of this decision (None when not auditing)."""
    @property
    def trace_id(self) -> Optional[str]: ...
    @property
    def agent(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def target(self) -> Optional[str]: ...
    def to_dict(self) -> dict[str, Any]: ...

class Engine:
    """A loaded policy (native part; `writ.Engine` adds enforce/govern)."""

    def __new__(
        cls,
        path: Union[_Path, Sequence[_Path]],
        *,
        dialect: Optional[str] = None,
        audit: Optional[_Path] = None,
        audit_mask: Optional[Sequence[str]] = None,
        watch: bool = False,
        public_key: Union[bytes, str, "os.PathLike[str]", None] = None,
    ) -> "Engine": ...
    def check(
        self,
        agent: str,
        action: str,
        target: Optional[str] = None,
        context: Optional[_Context] = None,
        chain: Optional[Sequence[str]] = None,
        tokens: Optional[int] = 0,
        trace_id: Optional[str] = None,
        at: _At = None,
        *,
        token: Optional[str] = None,
        roles: Optional[Sequence[str]] = None,
        tags: Optional[Sequence[str]] = None,
        tier: Optional[str] = None,
        dry_run: bool = False,
    ) -> Decision:
        """Decides a request (GIL released). `dry_run=True`: not recorded,
        and an allow takes nothing from its limits."""
    def record_event(
        self,
        agent: str,
        action: str,
        target: Optional[str] = None,
        context: Optional[_Context] = None,
        chain: Optional[Sequence[str]] = None,
        trace_id: Optional[str] = None,
    ) -> Optional[str]: ...
    def reload(self) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    @property
    def revision(self) -> str: ...
    @property
    def rules(self) -> int: ...
    @property
    def warnings(self) -> list[str]: ...
    @property
    def audit_path(self) -> Optional[str]: ...
    @property
    def paths(self) -> list["os.PathLike[str]"]:
        """The path(s) loaded from (pathlib.Path)."""
    @property
    def last_reload_error(self) -> Optional[str]: ...
    @property
    def closed(self) -> bool: ...

def compile(
    path: Union[_Path, Sequence[_Path]],
    output: Optional[_Path] = None,
    *,
    dialect: Optional[str] = None,
) -> tuple[bytes, list[str]]:
    """The bundle's bytes and the compiler's warnings (`writ.compile`
    issues them as `writ.PolicyWarning`)."""
def verify_audit(path: _Path) -> dict[str, Any]:
    """`writ audit verify` as a dict: intact, records, last_seq, last_hash, problems, pruned_through_seq (None unless pruned), report."""
