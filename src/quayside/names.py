"""The one rule for names, and the one way a name becomes a path component.

Every named thing meets one of two rules, checked where its state is kept (the
tracking and registry stores, the Kubernetes renderer, the image labels), so REST,
the MLflow adapter, the CLI and Python all meet the same rule:

- **Free names** (experiments, runs, logged models, packages): 1 to
  :data:`MAX_NAME_LENGTH` characters, not blank, and one line of printable text:
  no character of the Unicode categories Cc (controls: newline, tab, NUL, ESC,
  DEL, C1), Cf (format: zero-width characters, bidi overrides such as U+202E, the
  BOM), Cs (lone surrogates, which no encoding can write), Zl or Zp (line and
  paragraph separators). Format characters are refused too because they make two
  different names print alike (``prod`` and ``prod`` + U+200B) or print in another
  order than they are stored; no real name needs one. Everything else (quotes,
  slashes, ``..``, markup, any script) is text that round-trips exactly, since a
  free name is never code, markup or a path.
- **Pattern names** (registered model names and aliases, which appear inside
  ``models:/`` URIs; Kubernetes DNS labels): an alphabet and a length, matched
  with :func:`re.fullmatch` (a pattern ending in ``$`` would match before a final
  newline).

No name is used raw as a file-system path component: :func:`path_component` keeps
a name drawn from the portable file-name characters as it is and encodes any
other, so no name can produce an OS error or leave its folder.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from quayside.errors import InvalidNameError

MAX_NAME_LENGTH = 256
"""The longest free name, in characters (the name columns of the tracking tables hold 256)."""

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# The POSIX portable file-name characters, not starting with '.', '-' or '_' (so never '.', '..',
# a hidden file or an option) and short enough for every file system: kept as they are.
_PORTABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,127}")
PORTABLE_RULE = "use 1 to 128 letters, digits, '_', '-' and '.', starting with a letter or digit"
_UNPORTABLE_RUN = re.compile(r"[^A-Za-z0-9._\-]+")
_SHOWN_LENGTH = 64

# A registered model name is a portable file name, so its folders in the registry are the name itself.
MODEL_NAME_PATTERN = _PORTABLE
ALIAS_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
ALIAS_RULE = "use 1 to 64 letters, digits, '_' and '-', starting with a letter or '_'"
DNS_LABEL_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_LABEL_RULE = "lower-case letters, digits and '-', starting and ending with a letter or digit"
DNS_LABEL_LENGTH = 63


def shown(name: str) -> str:
    """A name as an error message quotes it: escaped (``repr``) and cut to a readable length."""
    if len(name) <= _SHOWN_LENGTH:
        return repr(name)
    return f"{name[:_SHOWN_LENGTH]!r}…"


def _what(kind: str) -> str:
    """How a message names what is named: ``"experiment name"``, but ``"alias"``."""
    return kind if kind == "alias" else f"{kind} name"


def check_name(kind: str, name: object, *, max_length: int = MAX_NAME_LENGTH) -> str:
    """``name`` if it is a valid free name, else :class:`InvalidNameError` saying which rule it breaks.

    ``kind`` says what is named (``"experiment"``, ``"run"``, ...) and starts the message
    (``"experiment name ..."``; an ``"alias"`` is not followed by ``name``).
    """
    what = _what(kind)
    if not isinstance(name, str):
        raise InvalidNameError(f"{what} must be text, not {type(name).__name__}")
    if not name:
        raise InvalidNameError(f"{what} is empty")
    if len(name) > max_length:
        raise InvalidNameError(
            f"{what} {shown(name)} is {len(name)} characters long; the limit is {max_length}"
        )
    for position, character in enumerate(name):
        if unicodedata.category(character) in REFUSED_CATEGORIES:
            raise InvalidNameError(
                f"{what} {shown(name)} holds the control or format character U+{ord(character):04X} "
                f"at position {position}; a name is one line of printable text"
            )
    if not name.strip():
        raise InvalidNameError(f"{what} {shown(name)} is only whitespace")
    return name


def check_pattern(kind: str, name: object, pattern: re.Pattern[str], rule: str, *, max_length: int) -> str:
    """``name`` if it is a valid free name of at most ``max_length`` characters that ``pattern`` fully matches."""
    checked = check_name(kind, name, max_length=max_length)
    if pattern.fullmatch(checked) is None:
        raise InvalidNameError(f"{_what(kind)} {shown(checked)} is invalid: {rule}")
    return checked


def check_model_name(name: object) -> str:
    """A registered model name (it appears in ``models:/<name>/...`` URIs and in the registry's folders)."""
    return check_portable_name("model", name)


def check_alias(alias: object) -> str:
    """An alias of a registered model (``models:/<name>@<alias>``)."""
    return check_pattern("alias", alias, ALIAS_PATTERN, ALIAS_RULE, max_length=64)


def check_dns_label(kind: str, name: object, *, max_length: int = DNS_LABEL_LENGTH) -> str:
    """A Kubernetes name that must be an RFC 1123 DNS label (a Deployment, Service, namespace)."""
    rule = f"{DNS_LABEL_RULE}, at most {max_length} characters"
    try:
        return check_pattern(kind, name, DNS_LABEL_PATTERN, rule, max_length=max_length)
    except InvalidNameError as e:
        raise InvalidNameError(f"{e.message} (a Kubernetes DNS label)") from None


def check_portable_name(kind: str, name: object) -> str:
    """A name drawn from the portable file-name characters (a model name; a Docker deployment's, which names containers)."""
    return check_pattern(kind, name, _PORTABLE, PORTABLE_RULE, max_length=128)


def path_component(name: str) -> str:
    """A file-system path component standing for ``name``: the name itself when it is portable, else an encoding.

    Portable names (letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit,
    at most 128 characters) are kept, so registered model names, aliases and common
    logged-model names such as ``model`` keep their folders. Any other name becomes ``_``,
    the portable characters of its first 48 characters, ``-`` and 16 hex digits of its
    SHA-256: at most 66 ASCII characters, stable, readable, and never equal to a portable
    name (which cannot start with ``_``) or to ``.``/``..``.
    """
    if _PORTABLE.fullmatch(name) is not None:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    readable = _UNPORTABLE_RUN.sub("-", name[:48]).strip("-._")
    return f"_{readable}-{digest}" if readable else f"_{digest}"
