"""CSV and JSON Lines corpora: configurable columns, label spellings, bad rows."""

import json

import pytest

from simulator.config import ScenarioError
from simulator.sources.tabular import read_table


def _csv(tmp_path, text, name="mail.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_custom_columns_and_label_spellings(tmp_path):
    path = _csv(tmp_path, 'id,message,is_junk\n1,"Hello Bob,\nlunch?",ham\n2,WIN CASH,SPAM\n3,notes,0\n'
                          '4,pills,1\n5,agenda,false\n6,casino,True\n')
    corpus = read_table("csv", path, text_column="message", label_column="is_junk")
    assert [m.is_spam for m in corpus.messages] == [False, True, False, True, False, True]
    assert corpus.messages[0].body == "Hello Bob,\nlunch?"
    assert corpus.messages[1].key == "mail.csv:4"     # the quoted newline makes row 1 two lines long


def test_jsonl_with_custom_columns_and_json_labels(tmp_path):
    rows = [{"body": "hi mum", "y": False}, {"body": "cheap pills", "y": 1}, {"body": "dinner", "y": "ham"},
            {"body": "jackpot", "y": "spam", "extra": [1, 2]}]
    path = tmp_path / "mail.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + "\n".join(json.dumps(r) for r in rows[2:]))
    corpus = read_table("jsonl", path, text_column="body", label_column="y")
    assert [(m.body, m.is_spam) for m in corpus.messages] == [("hi mum", False), ("cheap pills", True),
                                                              ("dinner", False), ("jackpot", True)]
    assert corpus.messages[2].key == "mail.jsonl:4"   # the blank line 3 is skipped, lines keep counting


@pytest.mark.parametrize("text,message", [
    ("text,label\nhello,ham\nbuy,maybe\n", "mail.csv:3: label 'maybe' is neither spam"),
    ("text,label\nhello,ham\nbuy\n", "mail.csv:3: missing column 'label'"),
    ("text,label\nhello,ham\nbuy,spam,extra\n", "mail.csv:3: more fields than the header has"),
    ("body,label\nhello,ham\n", "mail.csv:1: no column 'text' in the header (columns: body, label)"),
    ("text,label\nhello,ham\nhi,ham\n", "needs both spam and ham rows (0 spam of 2)"),
])
def test_bad_csv_names_file_and_line(tmp_path, text, message):
    path = _csv(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        read_table("csv", path)
    assert message in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("lines,message", [
    (['{"text": "a", "label": "ham"}', '{"text": "b", "label": '], "mail.jsonl:2: not valid JSON"),
    (['{"text": "a", "label": "ham"}', '["b", "spam"]'], "mail.jsonl:2: expected a JSON object"),
    (['{"text": "a", "label": "ham"}', '{"text": "b"}'], "mail.jsonl:2: missing column 'label'"),
    (['{"text": "a", "label": "ham"}', '{"text": 5, "label": "spam"}'], "mail.jsonl:2: column 'text' is not text"),
    (['{"text": "a", "label": 2}'], "mail.jsonl:1: label 2 is neither spam"),
])
def test_bad_jsonl_names_file_and_line(tmp_path, lines, message):
    path = tmp_path / "mail.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScenarioError) as info:
        read_table("jsonl", path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match=f"corpus not found: {tmp_path / 'none.csv'}"):
        read_table("csv", tmp_path / "none.csv")
