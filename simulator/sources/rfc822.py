"""Raw RFC 822 messages to sender, subject and body text, with the ``email`` package.

Charset trouble (an unknown charset, bytes that are not valid in the declared one,
a broken encoded-word header) is never fatal: the text is decoded with replacement
characters and the problem is counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError
from email.header import Header, decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import parseaddr

from simulator.sources.htmltext import html_to_text

_PARSER = BytesParser(policy=policy.compat32)


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """What the filter and the subset selection need from one raw message."""

    sender: str
    subject: str
    body: str
    list_id: str
    bulk: bool
    charset_errors: int


class _Errors:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def _decode(payload: bytes, charset: str | None, errors: _Errors) -> str:
    if charset is None:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return payload.decode("latin-1")        # undeclared 8-bit text: common in old mail, not an error
    try:
        return payload.decode(charset)
    except (LookupError, UnicodeDecodeError):
        errors.count += 1
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            return payload.decode("latin-1", errors="replace")


def _header(message: Message, name: str, errors: _Errors) -> str:
    raw = message.get(name)
    if raw is None:
        return ""
    if isinstance(raw, Header):           # raw 8-bit bytes in the header: no declared charset
        raw = "".join(_decode(value, None if charset in (None, "unknown-8bit") else charset, errors)
                      for value, charset in decode_header(raw))
    text = str(raw)
    try:
        parts = decode_header(text)
    except (HeaderParseError, ValueError):
        errors.count += 1
        return text
    return "".join(value if isinstance(value, str)
                   else value.decode("raw-unicode-escape") if charset is None
                   else _decode(value, charset, errors)
                   for value, charset in parts)


def _part_text(part: Message, errors: _Errors) -> str:
    if part.is_multipart():
        children = part.get_payload()
        if part.get_content_subtype() == "alternative":
            plain = [c for c in children if c.get_content_type() == "text/plain"]
            children = plain[:1] or children[-1:]
        return "\n".join(filter(None, (_part_text(c, errors) for c in children)))
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        inner = part.get_payload()
        return "\n".join(_part_text(m, errors) for m in inner) if isinstance(inner, list) else ""
    if part.get_content_maintype() != "text" or part.get_filename():
        return ""
    payload = part.get_payload(decode=True)
    if payload is None:
        return ""
    text = _decode(payload, part.get_content_charset(), errors)
    return html_to_text(text) if ctype == "text/html" else text.strip()


def parse_message(raw: bytes) -> ParsedMail:
    """Parse one raw message: sender address, subject, body text (HTML converted).

    >>> raw = (b"From: Bank <alerts@bank.example>\\nSubject: =?utf-8?q?Caf=C3=A9?=\\n"
    ...        b"List-Id: <news.bank.example>\\nContent-Type: text/html; charset=utf-8\\n\\n"
    ...        b"<p>Payment of <b>$12</b></p>")
    >>> m = parse_message(raw)
    >>> m.sender, m.subject, m.body, m.list_id, m.bulk, m.charset_errors
    ('alerts@bank.example', 'Café', 'Payment of $12', 'news.bank.example', True, 0)
    >>> parse_message(b"Subject: x\\nContent-Type: text/plain; charset=no-such-charset\\n\\nhello").charset_errors
    1
    """
    errors = _Errors()
    message = _PARSER.parsebytes(raw)
    sender = parseaddr(_header(message, "From", errors))[1]
    subject = " ".join(_header(message, "Subject", errors).split())
    list_id = _header(message, "List-Id", errors).rsplit("<", 1)[-1].strip(" <>\t\n").lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    bulk = bool(list_id) or precedence in ("bulk", "list", "junk")
    body = _part_text(message, errors)
    return ParsedMail(sender, subject, body, list_id, bulk, errors.count)
