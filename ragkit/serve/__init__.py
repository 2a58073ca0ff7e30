"""``ragkit serve``: the HTTP API (REST + OpenAI-compatible chat) over an index, with API keys and tenants.

``create_app`` needs the ``server`` extra (fastapi, uvicorn): ``pip install 'ragkit[server]'``.
"""

from __future__ import annotations


def create_app(*args, **kwargs):
    try:
        from ragkit.serve.app import create_app as _create
    except ImportError as exc:  # fastapi missing
        from ragkit.errors import ConfigError

        raise ConfigError(f"ragkit serve needs the server extra ({exc.name} is not installed): "
                          "pip install 'ragkit[server]'") from None
    return _create(*args, **kwargs)


__all__ = ["create_app"]
