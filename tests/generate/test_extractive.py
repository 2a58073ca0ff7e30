from ragkit.generate.extractive import NOT_FOUND, split_sentences


def test_split_sentences():
    text = "# Title\nFirst sentence here. Second one! Third? 4.5 stays.\n- item one is here"
    assert split_sentences(text) == ["First sentence here.", "Second one!", "Third?", "4.5 stays.",
                                     "item one is here"]


def test_table_rows_become_labelled_units():
    md = "Retention by plan:\n| Plan | Logs | Metrics |\n|------|:----:|---|\n| Free | 7 days | 30 days |\n" \
         "| Team | 15 days | 90 days |"
    assert split_sentences(md) == ["Retention by plan:", "Plan: Free; Logs: 7 days; Metrics: 30 days",
                                   "Plan: Team; Logs: 15 days; Metrics: 90 days"]
    html_style = "Region | City\neu-1 | Frankfurt"  # how the HTML loader renders a table
    assert split_sentences(html_style) == ["Region: eu-1; City: Frankfurt"]


def test_answer_cites_the_right_source(mini_index):
    ans = mini_index.query("How many days are logs retained on the Enterprise plan?", k=4)
    assert "400 days" in ans.text
    n = next(c.n for c in ans.citations if c.doc_id == "cloud/retention.txt")
    assert f"[{n}]" in ans.text and ans.sources[n - 1].doc_id == "cloud/retention.txt"
    # every [n] in the text points at a provided source
    import re

    assert {int(m) for m in re.findall(r"\[(\d+)\]", ans.text)} <= set(range(1, len(ans.sources) + 1))


def test_not_found_when_nothing_relevant(mini_index):
    ans = mini_index.query("What is the boiling point of tungsten in kelvin?", k=3)
    assert ans.text == NOT_FOUND and ans.citations == []
