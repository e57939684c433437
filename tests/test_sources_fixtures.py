"""Helpers, no tests: small real-mail fixtures the tests write themselves (raw RFC 822
messages in the SpamAssassin layout: folders, ``cmds`` files, ``.tar.bz2`` archives)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

PLAIN = b"""From: Alice Smith <alice@home.example>
To: bob@home.example
Subject: Lunch on Friday
Date: Thu, 22 Aug 2002 09:33:07 -0600

Are we still on for lunch on Friday? The usual place at noon.
"""

ALTERNATIVE = b"""From: news@lists.example
Subject: Weekly digest
List-Id: Weekly digest <digest.lists.example>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="XYZ"

--XYZ
Content-Type: text/plain; charset=utf-8

This week: kernel release notes.
--XYZ
Content-Type: text/html; charset=utf-8

<html><body><p>HTMLONLYWORD This week: kernel release notes.</p></body></html>
--XYZ--
"""

HTML_SPAM = b"""From: "Deals" <offers@cheap-pills.example>
Subject: =?iso-8859-1?q?Cheap_pills_=E0_vendre?=
MIME-Version: 1.0
Content-Type: text/html; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

<html><head><style>body {color: red}</style><script>track()</script></head>
<body><h1>Cheap&nbsp;pills</h1><p>Order <b>now</b> &amp; save 80%</p>
<!-- hiddenword --></body></html>
"""

BROKEN_CHARSET = (b"From: someone@broken.example\n"
                  b"Subject: Broken charset\n"
                  b"Content-Type: text/plain; charset=\"x-no-such-charset\"\n\n"
                  b"Caf\xe9 menu attached\n")

WRONG_CHARSET = (b"From: someone@broken.example\n"
                 b"Subject: Wrong charset\n"
                 b"Content-Type: text/plain; charset=us-ascii\n\n"
                 b"Na\xefve bytes in ascii\n")

MIXED_WITH_ATTACHMENT = b"""From: Carol <carol@work.example>
Subject: Report
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: base64

UGxlYXNlIGZpbmQgdGhlIHF1YXJ0ZXJseSByZXBvcnQgYXR0YWNoZWQu
--B1
Content-Type: application/octet-stream; name="report.bin"
Content-Disposition: attachment; filename="report.bin"
Content-Transfer-Encoding: base64

AAECAwQF
--B1
Content-Type: text/plain; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

ATTACHEDTEXTWORD should not be read
--B1--
"""

CMDS = b"mv 00001.aaa 00001.aaa\nmv 00002.bbb 00002.bbb\n"

SMALL_LAYOUT = {
    "easy_ham": {"00001.aaa": PLAIN, "00002.bbb": ALTERNATIVE, "00003.ccc": BROKEN_CHARSET, "cmds": CMDS},
    "hard_ham": {"00001.ddd": MIXED_WITH_ATTACHMENT, "00002.eee": WRONG_CHARSET},
    "spam": {"00001.fff": HTML_SPAM, "cmds": CMDS},
}


def write_folders(root: Path, layout: dict[str, dict[str, bytes]] = SMALL_LAYOUT) -> Path:
    """The corpus as extracted folders under ``root``."""
    for folder, files in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, raw in files.items():
            (root / folder / name).write_bytes(raw)
    return root


def write_archives(root: Path, layout: dict[str, dict[str, bytes]] = SMALL_LAYOUT) -> Path:
    """The corpus as one ``20021010_FOLDER.tar.bz2`` per folder under ``root``, as shipped."""
    staging = root / "_staging"
    write_folders(staging, layout)
    for folder in layout:
        with tarfile.open(root / f"20021010_{folder}.tar.bz2", "w:bz2") as archive:
            archive.add(staging / folder, arcname=folder)
    for folder, files in layout.items():
        for name in files:
            (staging / folder / name).unlink()
        (staging / folder).rmdir()
    staging.rmdir()
    return root


# A larger generated corpus with topics, senders and lists, for splits, selection and runs.
HAM_TOPICS = {
    "linux": ("ilug.linux.example", "lists.linux.example",
              "kernel module compile driver patch boot grub install package distro shell"),
    "bank": ("", "alerts.bank.example",
             "account statement balance payment card transaction deposit transfer online banking"),
    "family": ("", "home.example", "dinner weekend kids birthday holiday visit photos garden mum dad"),
    "work": ("", "work.example", "meeting agenda project deadline report budget review team slides"),
}
SPAM_TOPICS = {
    "pills": ("pharma.example", "pills pharmacy prescription cheap viagra discount order meds doctor"),
    "mortgage": ("loans.example", "mortgage refinance rates approval lender loan interest credit home"),
    "casino": ("casino.example", "casino jackpot bonus poker slots win bet spins online free"),
}


def _message(rng: np.random.Generator, sender: str, list_id: str, words: str, i: int) -> bytes:
    vocab = words.split()
    body = " ".join(rng.choice(vocab, size=30).tolist())
    subject = " ".join(rng.choice(vocab, size=3).tolist())
    head = f"From: user{i}@{sender}\nSubject: {subject}\n"
    if list_id:
        head += f"List-Id: <{list_id}>\n"
    return f"{head}\n{body}\n".encode()


def generated_layout(ham_per_topic: int = 30, spam_per_topic: int = 15, seed: int = 0) -> dict:
    """Ham and spam folders whose messages fall in clear topics (one sender domain each)."""
    rng = np.random.default_rng(seed)
    layout: dict[str, dict[str, bytes]] = {"easy_ham": {}, "spam": {}}
    i = 0
    for list_id, sender, words in HAM_TOPICS.values():
        for _ in range(ham_per_topic):
            i += 1
            layout["easy_ham"][f"{i:05d}.h"] = _message(rng, sender, list_id, words, i)
    for sender, words in SPAM_TOPICS.values():
        for _ in range(spam_per_topic):
            i += 1
            layout["spam"][f"{i:05d}.s"] = _message(rng, sender, "", words, i)
    return layout
