"""auth.tokens[].token_file: the token read from a file (a Docker or Kubernetes secret), mutually exclusive with
`token`; every way the file can be wrong is a config error naming the file, the key and the fix, never the content."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.config import ConfigError, load_config

from .conftest import bearer

CONTENT = "leak-token-from-file-9001"


def load(tmp_path, tokens_yaml: str):
    path = tmp_path / "receiver.yml"
    path.write_text(f"database: {{url: 'sqlite:///{tmp_path}/r.db'}}\nauth:\n  tokens:\n{tokens_yaml}")
    return load_config(path, env={})


def test_a_token_from_a_file_authenticates(tmp_path, clock):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "read").write_text(CONTENT + "\n")
    config = load(tmp_path, "    - {name: analysts, token_file: secrets/read, role: read}\n")
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    try:
        client = app.test_client()
        assert client.get("/api/v1/alerts", headers=bearer(CONTENT)).status_code != 401
        assert client.get("/api/v1/alerts", headers=bearer(CONTENT + "x")).status_code == 401
        assert client.get("/api/v1/alerts").status_code == 401
    finally:
        app.extensions["alert_receiver"].db.dispose()


@pytest.mark.parametrize("entry, prepare, says", [
    ("{name: a, token_file: missing/token, role: read}", None, "No such file or directory"),
    ("{name: a, token_file: secrets, role: read}", "dir", "Is a directory"),
    ("{name: a, token_file: blank, role: read}", "blank", "is empty"),
    ("{name: a, token_file: binary, role: read}", "binary", "token_file"),
    ("{name: a, token: abc, token_file: blank, role: read}", "blank", "give either token or token_file, not both"),
    ("{name: a, role: read}", None, "a token needs token or token_file"),
], ids=["missing", "directory", "empty", "not-utf8", "both", "neither"])
def test_a_bad_token_file_is_named_with_its_fix_and_no_content(tmp_path, entry, prepare, says):
    if prepare == "dir":
        (tmp_path / "secrets").mkdir()
    elif prepare == "blank":
        (tmp_path / "blank").write_text("  \n")
    elif prepare == "binary":
        (tmp_path / "binary").write_bytes(b"\xff\xfe" + CONTENT.encode())
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"    - {entry}\n")
    text = str(caught.value)
    assert "receiver.yml" in text and "auth.tokens[0]" in text and says in text, text
    assert "fix" in text.lower() or "—" in text, text
    assert CONTENT not in text
