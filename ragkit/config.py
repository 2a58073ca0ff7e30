"""ragkit.toml, validated with pydantic. The one place that knows defaults.

A plugin section is a table with ``name`` plus that plugin's parameters, e.g.::

    [chunker]
    name = "sentence"
    chunk_size = 200

Plugin parameters are validated by the plugin's own ``Params`` model when the engine builds the pipeline,
so an unknown parameter is reported with the list of known ones.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ragkit.errors import ConfigError

CONFIG_FILE = "ragkit.toml"


class PluginSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


DEFAULT_EXCLUDE = ["**/.*", "**/.*/**", "**/__pycache__/**", "**/*.meta.json", "**/node_modules/**"]


class IngestConfig(_Strict):
    include: list[str] = Field(default_factory=lambda: ["**/*"], description="glob patterns, relative to the root")
    exclude: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    max_file_mb: float = Field(50.0, gt=0, description="larger files are skipped with a reason")
    max_html_depth: int = Field(512, ge=1, description="HTML nested deeper than this is refused before parsing")
    max_html_elements: int = Field(200_000, ge=1, description="HTML with more tags than this is refused before "
                                                               "parsing")
    max_line_chars: int = Field(5_000_000, ge=1, description="text, Markdown, HTML and JSONL files with a longer "
                                                             "line are refused")
    max_expanded_mb: float = Field(256, gt=0, description="a .docx or .jsonl.gz that expands past this is refused")
    max_pdf_pages: int = Field(2000, ge=1, description="PDFs with more pages than this are refused before text "
                                                       "extraction")
    max_parse_seconds: float = Field(120.0, ge=0, description="a file whose loading and chunking takes longer is "
                                                              "stopped and reported (0: parse in-process, no limit)")
    max_parse_memory_mb: int = Field(4096, ge=0, description="memory a file's parser may add before it is stopped "
                                                             "and reported (0: no cap)")
    embed_batch_size: int = Field(64, ge=1)
    tables: bool = Field(False, description="also store the tables inside Markdown, HTML and Word documents as SQL "
                                            "tables (CSV, TSV and XLSX files always are)")


class RetrievalConfig(_Strict):
    mode: Literal["bm25", "dense", "hybrid"] = "hybrid"
    k: int = Field(10, ge=1, le=1000, description="hits returned")
    candidates: int = Field(100, ge=1, le=10000, description="hits per branch before fusion")


class ServeConfig(_Strict):
    """``ragkit serve``: where it listens and the limits every request is held to."""

    host: str = Field("127.0.0.1", description="without API keys only a loopback address is allowed")
    port: int = Field(8000, ge=0, le=65535)
    api_keys: str | None = Field(None, description="keys.toml: hashed keys -> tenant + metadata filter")
    max_body_bytes: int = Field(262_144, ge=1024, description="larger request bodies get 413")
    max_query_chars: int = Field(2000, ge=1, description="longer queries (or last chat messages) get 422")
    max_k: int = Field(50, ge=1, le=1000, description="k above this gets 422")
    max_tokens: int = Field(1024, ge=1, description="cap on a request's max_tokens; answers stop there")
    max_messages: int = Field(64, ge=1, description="chat messages per request")
    generation_timeout: float = Field(120.0, gt=0, description="seconds; a slower answer gets 504")
    reload_interval: float = Field(1.0, gt=0, description="seconds between checks for a newer index commit")
    max_concurrent_retrievals: int = Field(0, ge=0, description="retrievals run at once (the rest queue); "
                                           "0 = no limit")
    batching: bool = Field(True, description="compute concurrent requests' query embeddings (and cross-encoder "
                           "pairs) in one model call; false: each request alone")
    batch_window_ms: float | Literal["auto"] = Field(
        "auto", description="milliseconds: longest a request waits for others to join its batch (it does not wait "
                            "when no other request is retrieving); auto: 0 for query embeddings through ONNX Runtime "
                            "(a query costs as much in a batch as alone), 5 otherwise")
    batch_max: int = Field(32, ge=1, le=1024, description="most requests in one batch")
    batch_workers: int = Field(0, ge=0, le=64, description="batches computed at once, each on one thread "
                               "(0 = one per CPU core)")

    @field_validator("batch_window_ms")
    @classmethod
    def _window(cls, v: float | str) -> float | str:
        if v != "auto" and not 0 <= v <= 1000:
            raise ValueError("must be 'auto' or between 0 and 1000 milliseconds")
        return v


class StoreConfig(_Strict):
    """Where the index is when no ``--index`` / ``Engine.open(index)`` names one."""

    url: str | None = Field(None, description="a directory (the embedded store) or a URL such as "
                            "postgresql://user@host/db; default .ragkit")


SQL_CUES = "|".join([
    r"\bhow (many|much|long|big|large|old)\b", r"\bnumber of\b", r"\b(count|total|sum|average|median)\b",
    r"\b(maximum|minimum|most|least|fewest|highest|lowest|largest|smallest|longest|shortest|cheapest|earliest|"
    r"latest|oldest|newest)\b", r"\b(more|less|fewer|greater|higher|lower|longer|shorter) than\b",
    r"\bat (least|most)\b", r"\bdifference\b", r"\bcombined\b", r"\bpercentage\b",
    r"\bper (second|minute|hour|day|month|year|gb)\b", r"\bin (seconds|minutes|hours|days|weeks|months|years)\b",
    r"\bwhat (is|are|was|were) the (\w+ ){0,2}(price|cost|limit|timeout|port|status|credit|burst|retention|quota)s?\b",
    r"\bwhat (port|http status|status code|exit code)\b", r"\bwhich\b.*\b(first|last)\b",
    r"\bwhich .*\b(has|have|offers?|gives?|allows?|costs?) the\b"])


class RouteRule(_Strict):
    """A routing rule: when ``pattern`` (a regular expression, case-insensitive) or one of ``keywords`` occurs in
    the question, it goes to ``route``."""

    pattern: str = ""
    keywords: list[str] = Field(default_factory=list)
    route: Literal["passages", "sql", "both"] = "sql"


class RouterConfig(_Strict):
    """Which questions go to the SQL tool (``sql``), to today's passages (``passages``) or to both."""

    enabled: bool = Field(False, description="off: every question is answered from passages")
    classifier: Literal["rules", "llm", "rules+llm"] = Field(
        "rules", description="rules only; the LLM only; or rules first and the LLM for questions no rule matched")
    rules: list[RouteRule] = Field(default_factory=lambda: [RouteRule(pattern=SQL_CUES, route="sql")])
    default: Literal["passages", "sql", "both"] = Field("passages", description="route when nothing matched")
    llm_threshold: float = Field(0.45, ge=0.0, le=1.0, description="the LLM classifier routes to SQL at this "
                                 "P(yes) or above (small models answer yes at well under 0.5)")


class SqlConfig(_Strict):
    """The SQL tool: one query written by an LLM over the tables retrieval found, checked before it runs."""

    llm: str = Field("", description="make_llm spec (e.g. 'local:qwen1.5b'); empty: the generator's LLM")
    max_tables: int = Field(3, ge=1, le=20, description="tables whose schema the model sees")
    sample_rows: int = Field(8, ge=0, le=50, description="example rows shown per table (every row of a table "
                                                         "at most twice this long: the model sees the exact labels)")
    max_rows: int = Field(50, ge=1, le=10000, description="rows a query may return")
    timeout: float = Field(5.0, gt=0, description="seconds a query may run")
    max_tokens: int = Field(160, ge=16, le=2048, description="tokens the model may write for a query")
    repair: bool = Field(True, description="on an error, give the model one more try with the error text")
    schema_metadata: list[str] = Field(["date", "status"], description="document metadata fields shown beside "
                                       "each table's schema (the model tells a current table from an older one)")


class Config(_Strict):
    chunker: PluginSpec = Field(default_factory=lambda: PluginSpec(name="sentence"))
    embedder: PluginSpec = Field(default_factory=lambda: PluginSpec(name="sentence-transformers"))
    sparse: PluginSpec = Field(default_factory=lambda: PluginSpec(name="bm25s"))
    dense: PluginSpec = Field(default_factory=lambda: PluginSpec(name="faiss"))
    fusion: PluginSpec = Field(default_factory=lambda: PluginSpec(name="rrf"))
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    transforms: list[PluginSpec] = Field(default_factory=list)
    rerankers: list[PluginSpec] = Field(default_factory=list)
    filters: list[PluginSpec] = Field(default_factory=list)
    generator: PluginSpec = Field(default_factory=lambda: PluginSpec(name="extractive"))
    serve: ServeConfig = Field(default_factory=ServeConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    router: RouterConfig = Field(default_factory=RouterConfig)
    sql: SqlConfig = Field(default_factory=SqlConfig)

    @field_validator("chunker", "embedder", "sparse", "dense", "fusion", "generator", mode="before")
    @classmethod
    def _name_only(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v


PLUGIN_DEFAULTS = {s: Config.model_fields[s].default_factory().name
                   for s in ("chunker", "embedder", "sparse", "dense", "fusion", "generator")}

# Sections that shape what is stored in an index: changing them requires a rebuild.
INDEX_SECTIONS = ("chunker", "embedder", "sparse", "dense")


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable or malformed file is one ConfigError naming the file and
    ``what`` it is (e.g. "config file")."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


def load_config(source: str | Path | dict[str, Any] | Config | None = None,
                overrides: list[str] | dict[str, Any] | None = None) -> Config:
    """Read a TOML file (or take a dict/Config), apply ``key.path=value`` overrides, validate."""
    if isinstance(source, Config):
        data = source.model_dump(exclude_unset=True)
        label = "config"
    elif isinstance(source, dict):
        data, label = dict(source), "config"
    elif source is None:
        data, label = {}, "defaults"
    else:
        label = str(source)
        data = read_toml(source, "config file")
    for key, value in _override_items(overrides):
        section = key.split(".", 1)[0]
        if section in PLUGIN_DEFAULTS and "." in key and not isinstance(data.get(section), dict):
            data[section] = {"name": data.get(section) or PLUGIN_DEFAULTS[section]}
        _set_path(data, key, value)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{label}: {_first_error(exc)}") from None


def _override_items(overrides: list[str] | dict[str, Any] | None) -> list[tuple[str, Any]]:
    if not overrides:
        return []
    if isinstance(overrides, dict):
        return list(overrides.items())
    items = []
    for raw in overrides:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {raw!r}: expected key.path=value")
        items.append((key.strip(), parse_value(value.strip())))
    return items


def parse_value(text: str) -> Any:
    """TOML value syntax when it parses (numbers, booleans, arrays, quoted strings), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a table")
        node = nxt
    if parts[-1] == "name" and node is not data and node.get("name") != value:
        # switching plugin drops the old plugin's parameters, which the new one may not accept
        node.clear()
    node[parts[-1]] = value


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown setting {where!r}"
    return f"{where}: {err['msg']}"


def config_toml(cfg: Config) -> str:
    """``cfg`` as ragkit.toml text: the sections that differ from the defaults, so ``load_config`` of the text gives
    back the same config (what ``ragkit tune`` writes for ``ragkit query --config``)."""
    default = Config().model_dump(mode="json")
    data = cfg.model_dump(mode="json")
    top: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if value == default.get(key):
            continue
        if isinstance(value, dict):
            tables += ["", f"[{key}]"] + _toml_table(value, key)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                tables += ["", f"[[{key}]]"] + [f"{k} = {_toml_value(v)}" for k, v in item.items() if v is not None]
        else:
            top.append(f"{key} = {_toml_value(value)}")
    return "\n".join(top + tables).lstrip("\n") + "\n"


def _toml_table(table: dict[str, Any], prefix: str) -> list[str]:
    plain = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()
             if v is not None and not (isinstance(v, dict) and v and k != "weights")]
    nested: list[str] = []
    for k, v in table.items():
        if isinstance(v, dict) and v and k != "weights":
            nested += ["", f"[{prefix}.{_toml_key(k)}]"] + _toml_table(v, f"{prefix}.{_toml_key(k)}")
    return plain + nested


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            raise ConfigError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise ConfigError(f"cannot write {type(value).__name__} to TOML")
