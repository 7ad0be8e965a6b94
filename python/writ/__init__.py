"""writ: policies for AI agents.

Load a policy (the writ language, or YAML in writ's schema or a seed
dialect: MeshGuard, Aegis, Sekuire) or a compiled bundle, and ask it before
every action::

    import writ

    engine = writ.load("support.writ", audit="audit.jsonl")
    d = engine.check("billing-agent", "tool:call", "refund",
                     context={"amount": 40, "currency": "USD"})
    if d.allowed:
        ...

``check`` returns a :class:`Decision` (test ``.allowed``: a decision has
no truth value, so ``if engine.check(...)`` raises ``TypeError`` rather
than reading a deny as a yes); ``enforce`` raises :class:`PolicyDenied` on
a deny and :class:`ApprovalRequired` when a human must approve; ``govern``
is ``enforce`` as a context manager. A policy's warnings are issued as
:class:`PolicyWarning`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

from . import _writ
from ._writ import Decision, PolicyError, WritError, verify_audit

__version__: str = _writ.__version__

__all__ = [
    "ApprovalRequired",
    "Decision",
    "Engine",
    "PolicyDenied",
    "PolicyError",
    "PolicyWarning",
    "WritError",
    "__version__",
    "compile",
    "load",
    "verify_audit",
]

PathArg = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]]


class PolicyWarning(UserWarning):
    """A warning about a policy that loads (W-codes: an unreachable rule,
    a privilege escalation through delegation, ...), issued by
    :func:`load`, :meth:`Engine.reload` and :func:`compile` with
    :func:`warnings.warn`. The message is ``file:line:col:
    warning[CODE]: message``. Filter by this category, e.g. make every one
    an error with ``warnings.simplefilter("error", writ.PolicyWarning)``,
    or ignore one code with ``warnings.filterwarnings("ignore",
    message=r".*\\[W0203\\]", category=writ.PolicyWarning)``."""


def _warn(found: Sequence[str], stacklevel: int) -> None:
    for text in found:
        warnings.warn(text, PolicyWarning, stacklevel=stacklevel + 1)


class _DecisionError(WritError):
    """A decision that stops an action; ``.decision`` is the :class:`Decision`."""

    decision: Decision

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(self._message(decision))

    @staticmethod
    def _message(d: Decision) -> str:
        target = f" on {d.target!r}" if d.target is not None else ""
        rule = f"rule {d.rule!r}" if d.rule is not None else "no rule"
        reason = d.reason if d.reason else "no reason given"
        return f"{d.decision}: {d.agent!r} may not {d.action!r}{target} ({rule}): {reason}"

    def __reduce__(self) -> Any:
        return (type(self), (self.decision,))


class PolicyDenied(_DecisionError):
    """Raised by ``enforce``/``govern`` when the policy denies the action."""


class ApprovalRequired(_DecisionError):
    """Raised by ``enforce``/``govern`` when a human must approve the action first."""

    @staticmethod
    def _message(d: Decision) -> str:
        target = f" on {d.target!r}" if d.target is not None else ""
        rule = f"rule {d.rule!r}" if d.rule is not None else "no rule"
        reason = d.reason if d.reason else "no reason given"
        return (
            f"approval required: {d.agent!r} needs a human to approve {d.action!r}{target} "
            f"({rule}): {reason}"
        )


class Engine(_writ.Engine):
    """A loaded policy. Create one with :func:`load`.

    ``check`` decides; ``enforce`` and ``govern`` raise when the answer is
    not an allow. Thread-safe: share one engine between threads. A context
    manager: leaving the ``with`` block closes it (flushes the audit log).
    """

    def enforce(
        self,
        agent: str,
        action: str,
        target: Optional[str] = None,
        context: Optional[Mapping[str, Any]] = None,
        chain: Optional[Sequence[str]] = None,
        tokens: int = 0,
        trace_id: Optional[str] = None,
        at: Any = None,
        **kwargs: Any,
    ) -> Decision:
        """Like ``check``, but raises :class:`PolicyDenied` on a deny and
        :class:`ApprovalRequired` on an approve; returns the allow."""
        d = self.check(agent, action, target, context, chain, tokens, trace_id, at, **kwargs)
        if d.allowed:
            return d
        if d.decision == "approve":
            raise ApprovalRequired(d)
        raise PolicyDenied(d)

    @contextlib.contextmanager
    def govern(
        self,
        agent: str,
        action: str,
        target: Optional[str] = None,
        context: Optional[Mapping[str, Any]] = None,
        chain: Optional[Sequence[str]] = None,
        tokens: int = 0,
        trace_id: Optional[str] = None,
        at: Any = None,
        **kwargs: Any,
    ) -> Iterator[Decision]:
        """``enforce`` on entering the block; the block runs only when allowed."""
        yield self.enforce(agent, action, target, context, chain, tokens, trace_id, at, **kwargs)

    def reload(self) -> None:
        """Reads the same path(s) again now; raises :class:`PolicyError`
        and keeps the current policy when the new one does not load. The
        new policy's warnings are issued as :class:`PolicyWarning`."""
        super().reload()
        _warn(self.warnings, stacklevel=2)

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def load(
    path: PathArg,
    *,
    dialect: Optional[str] = None,
    audit: Union[str, "os.PathLike[str]", None] = None,
    audit_mask: Optional[Sequence[str]] = None,
    watch: bool = False,
    public_key: Union[bytes, str, "os.PathLike[str]", None] = None,
) -> Engine:
    """Loads a policy: a compiled bundle (told by its magic bytes) or policy
    sources (one path or a list, merged in order), compiled here.

    - ``dialect``: read YAML files in this dialect instead of detecting it
      (``"writ"``/``"yaml"``, ``"meshguard"``, ``"aegis"``, ``"sekuire"``).
    - ``audit``: record every decision in this log, hash-chained: an
      existing log in its own format, a new one by its name (``.db``/
      ``.sqlite``/``.sqlite3``: SQLite, anything else: JSON Lines).
    - ``audit_mask``: context keys (globs) written as ``"***"``; default
      ``password``, ``*secret*``, ``*token*``, ``api_key``, ``apikey``,
      ``authorization``, ``cookie``.
    - ``watch``: reload when the file(s) change; a bad new policy keeps the
      old one (see ``engine.last_reload_error``).
    - ``public_key``: a bundle must carry a valid signature by this key
      (32 bytes, 64 hex digits, or a ``.pub`` file from ``writ keygen``).

    Raises :class:`PolicyError` when the policy has errors (``.diagnostics``
    lists them with ``file:line:col``) and ``FileNotFoundError`` for a
    missing file. The compiler's warnings are issued as
    :class:`PolicyWarning` (and stay in ``engine.warnings``).
    """
    engine = Engine(
        path,
        dialect=dialect,
        audit=audit,
        audit_mask=audit_mask,
        watch=watch,
        public_key=public_key,
    )
    try:
        _warn(engine.warnings, stacklevel=2)
    except BaseException:
        # A warning made an error: do not leave the engine (its audit
        # log, its watcher) open behind the caller's back.
        engine.close()
        raise
    return engine


def compile(
    path: PathArg,
    output: Union[str, "os.PathLike[str]", None] = None,
    *,
    dialect: Optional[str] = None,
) -> bytes:
    """Compiles policy sources into a bundle; returns its bytes and writes
    them to ``output`` when given. Raises :class:`PolicyError` on errors;
    warnings are issued as :class:`PolicyWarning`."""
    bundle, found = _writ.compile(path, output, dialect=dialect)
    _warn(found, stacklevel=2)
    return bundle
