"""Parsing real mail: raw RFC 822 messages, HTML, charsets, the SpamAssassin layout."""

import tarfile

import pytest

from simulator.config import ScenarioError
from simulator.sources.htmltext import html_to_text
from simulator.sources.rfc822 import parse_message
from simulator.sources.spamassassin import read_spamassassin
from tests.test_sources_fixtures import (
    ALTERNATIVE,
    BROKEN_CHARSET,
    HTML_SPAM,
    MIXED_WITH_ATTACHMENT,
    PLAIN,
    WRONG_CHARSET,
    write_archives,
    write_folders,
)


def test_plain_message():
    m = parse_message(PLAIN)
    assert (m.sender, m.subject) == ("alice@home.example", "Lunch on Friday")
    assert m.body.startswith("Are we still on for lunch") and m.charset_errors == 0
    assert not m.bulk and m.list_id == ""


def test_alternative_prefers_the_plain_part():
    m = parse_message(ALTERNATIVE)
    assert "kernel release notes" in m.body and "HTMLONLYWORD" not in m.body
    assert m.list_id == "digest.lists.example" and m.bulk


def test_html_only_mail_is_converted_to_text():
    m = parse_message(HTML_SPAM)
    assert m.subject == "Cheap pills à vendre"
    assert "Cheap pills" in m.body and "Order now & save 80%" in m.body
    for hidden in ("color: red", "track()", "hiddenword", "<", ">"):
        assert hidden not in m.body


@pytest.mark.parametrize("raw,word", [(BROKEN_CHARSET, "menu attached"), (WRONG_CHARSET, "bytes in ascii")])
def test_bad_charsets_are_counted_not_fatal(raw, word):
    m = parse_message(raw)
    assert m.charset_errors == 1 and word in m.body


def test_attachments_are_skipped_and_base64_text_decoded():
    m = parse_message(MIXED_WITH_ATTACHMENT)
    assert m.body == "Please find the quarterly report attached."


def test_broken_encoded_word_header():
    m = parse_message(b"Subject: =?x-bogus?q?hello_there?=\n\nbody")
    assert m.subject == "hello there" and m.charset_errors == 1


def test_undeclared_8bit_header_and_garbage_never_raise():
    m = parse_message(b"From: Ren\xc3\xa9 <r@x.example>\nSubject: caf\xc3\xa9\n\n\xff\xfe body")
    assert (m.sender, m.subject) == ("r@x.example", "café") and "body" in m.body
    assert parse_message(b"").body == "" and parse_message(b"\x00\x01garbage").charset_errors == 0


def test_html_to_text_handles_unclosed_and_upper_case_tags():
    assert html_to_text("<P>one<BR>two<SCRIPT>x()") == "one\ntwo"


def _keys(corpus):
    return [m.key for m in corpus.messages]


def test_folders_layout(tmp_path):
    corpus = read_spamassassin(write_folders(tmp_path))
    assert _keys(corpus) == ["easy_ham/00001.aaa", "easy_ham/00002.bbb", "easy_ham/00003.ccc",
                             "hard_ham/00001.ddd", "hard_ham/00002.eee", "spam/00001.fff"]
    assert [m.is_spam for m in corpus.messages] == [False] * 5 + [True]
    assert corpus.skipped == 2                      # the two cmds files
    assert corpus.charset_errors == 2
    assert corpus.sources == {"easy_ham": 3, "hard_ham": 2, "spam": 1}


def test_archives_read_the_same_as_folders(tmp_path):
    folders = read_spamassassin(write_folders(tmp_path / "f"))
    archives = read_spamassassin(write_archives(tmp_path / "a"))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "20021010_easy_ham.tar.bz2", "20021010_hard_ham.tar.bz2", "20021010_spam.tar.bz2"]
    assert archives.messages == folders.messages
    assert (archives.charset_errors, archives.skipped) == (folders.charset_errors, folders.skipped)


def test_archive_and_extracted_folder_side_by_side_are_read_once(tmp_path):
    write_archives(tmp_path)
    write_folders(tmp_path, {"spam": {"00001.fff": HTML_SPAM}})
    assert _keys(read_spamassassin(tmp_path)).count("spam/00001.fff") == 1


def test_one_archive_holding_both_labels(tmp_path):
    write_folders(tmp_path / "x")
    with tarfile.open(tmp_path / "all.tar.bz2", "w:bz2") as archive:
        for folder in ("easy_ham", "spam"):
            archive.add(tmp_path / "x" / folder, arcname=f"corpus/{folder}")
    corpus = read_spamassassin(tmp_path / "all.tar.bz2")
    assert len(corpus) == 4 and corpus.n_spam == 1


def test_missing_and_unusable_corpora_name_the_path(tmp_path):
    with pytest.raises(ScenarioError, match=f"corpus not found: {tmp_path / 'nope'}"):
        read_spamassassin(tmp_path / "nope")
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc" / "1").write_bytes(PLAIN)
    with pytest.raises(ScenarioError, match=f"{tmp_path} holds no SpamAssassin-layout ham and spam"):
        read_spamassassin(tmp_path)
    (tmp_path / "bad.tar.bz2").write_bytes(b"not bzip2 at all")
    with pytest.raises(ScenarioError, match="bad.tar.bz2: not a readable archive"):
        read_spamassassin(tmp_path / "bad.tar.bz2")
