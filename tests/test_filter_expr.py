import pytest

from ragkit.errors import ConfigError
from ragkit.filter_expr import Filter, to_filter

META = {"product": "cloud", "year": 2023, "date": "2024-05-01", "tags": ["a", "b"], "status": None}


@pytest.mark.parametrize("expr,expected", [
    ("product=cloud", True), ("product!=cloud", False), ("product==cloud", True),
    ("year>=2020", True), ("year<2023", False), ("year<=2023", True), ("year>2022.5", True),
    ("date>=2024-01-01", True), ("date<2024-05-01", False),
    ("product in cloud,all", True), ("product not in cloud,all", False), ("product in selfhosted", False),
    ("tags=b", True), ("tags!=c", True), ("year=2023.0", True),
    ("product?", True), ("missing?", False), ("!missing", True), ("!product", False),
    ("status?", False), ("missing!=x", True),
])
def test_expressions(expr, expected):
    assert Filter.parse(expr).test(META) is expected


def test_dict_and_list_forms_are_anded():
    assert to_filter({"product": "cloud", "year": {"gte": 2020, "lt": 2024}}).test(META)
    assert not to_filter({"product": ["selfhosted", "all"]}).test(META)
    assert not to_filter(["product=cloud", "year>2023"]).test(META)
    assert to_filter({"status": {"exists": False}}).test(META)


@pytest.mark.parametrize("bad", ["product", "=cloud", "year>>3", "product="])
def test_malformed_expression_is_one_clear_line(bad):
    with pytest.raises(ConfigError, match="expected field=value"):
        Filter.parse(bad)


def test_unknown_dict_operator():
    with pytest.raises(ConfigError, match="unknown operator 'near'"):
        to_filter({"x": {"near": 1}})
