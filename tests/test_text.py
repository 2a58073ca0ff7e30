"""The text helpers shared by stages: the three sentence splitters and the citation marker."""

from ragkit.text import CITATION_MARKER, answer_sentences, sentence_pieces, split_sentences


def test_split_sentences():
    text = "# Title\nFirst sentence here. Second one! Third? 4.5 stays.\n- item one is here"
    assert split_sentences(text) == ["First sentence here.", "Second one!", "Third?", "4.5 stays.",
                                     "item one is here"]


def test_hard_wrapped_sentences_are_joined():
    faq = ("Q: How is data encrypted at rest?\nA: All customer data is encrypted with AES-256. Tidewater Labs\n"
           "manages the keys in a hardware-backed key management service and rotates them every 90\n"
           "days, which is unrelated to\nrotating your API keys.\n\nSizing a cluster\nThe reference architectures "
           "below are starting points for clusters of three or more\nNodes, each with 8 vCPU.\n")
    assert split_sentences(faq) == [
        "Q: How is data encrypted at rest?", "A: All customer data is encrypted with AES-256.",
        "Tidewater Labs manages the keys in a hardware-backed key management service and rotates them every 90 "
        "days, which is unrelated to rotating your API keys.",
        "Sizing a cluster",  # a short line without a full stop is a heading: not joined to the next sentence
        "The reference architectures below are starting points for clusters of three or more Nodes, each with "
        "8 vCPU."]


def test_list_items_stay_apart():
    text = ("Steps to rotate a key without downtime in every region we run\n1. Open the API keys page\n"
            "2) Press Rotate\n- a bullet that is long enough to look like a wrapped line of text\n- next bullet\n"
            "Note:\nkeys are per organisation")
    assert split_sentences(text) == ["Steps to rotate a key without downtime in every region we run",
                                     "Open the API keys page", "Press Rotate",
                                     "a bullet that is long enough to look like a wrapped line of text",
                                     "next bullet", "Note:", "keys are per organisation"]


def test_table_rows_become_labelled_units():
    md = "Retention by plan:\n| Plan | Logs | Metrics |\n|------|:----:|---|\n| Free | 7 days | 30 days |\n" \
         "| Team | 15 days | 90 days |"
    assert split_sentences(md) == ["Retention by plan:", "Plan: Free; Logs: 7 days; Metrics: 30 days",
                                   "Plan: Team; Logs: 15 days; Metrics: 90 days"]
    html_style = "Region | City\neu-1 | Frankfurt"  # how the HTML loader renders a table
    assert split_sentences(html_style) == ["Region: eu-1; City: Frankfurt"]


def test_sentence_pieces_join_back_to_the_text():
    text = "First one. Second (with a bracket.) Third!\nA line without end\n\nLast? yes"
    pieces = sentence_pieces(text)
    assert "".join(pieces) == text
    assert pieces[0] == "First one. " and len(pieces) == 6


def test_answer_sentences_keep_their_citations():
    assert answer_sentences("Keys expire [1]. Rotate them. [2]") == ["Keys expire [1].", "Rotate them. [2]"]
    assert answer_sentences("Done? Yes! 4.5 stays.") == ["Done?", "Yes!", "4.5 stays."]
    assert [m.group(1) for m in CITATION_MARKER.finditer("a [1] b [2, 3] c [4;5] d [x]")] == ["1", "2, 3", "4;5"]
