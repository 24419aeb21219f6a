"""The README and config/forewarn.toml configure every connector: each example starts one.

Every example table in the README's "Connector settings" and in the config file's comments
loads as its connector would at start-up, and every setting a connector reads is named in
both, so a council's IT can configure a CRM from the documentation alone.
"""

from __future__ import annotations

import base64
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors import available_kinds, load_connector
from connectors.base import Connector

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONFIG = (ROOT / "config" / "forewarn.toml").read_text()
SETTINGS_SECTION = README[
    README.index("### Connector settings") : README.index("## Banner, details and the widget")
]
# The settings every connector shares, then one part per kind ("#### Dataverse ...").
COMMON, *PARTS = SETTINGS_SECTION.split("\n#### ")
BY_KIND = {part.split()[0].lower(): part for part in PARTS}


def readme_examples() -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"```toml\n(.*?)```", SETTINGS_SECTION, re.S):
        tables.update(tomllib.loads(block)["connectors"])
    return tables


def config_examples() -> dict[str, dict[str, Any]]:
    """The commented-out [connectors.NAME] examples, uncommented."""
    blocks = re.findall(r"^# (\[connectors\.\w+\]\n(?:# .*\n)+)", CONFIG, re.M)
    tables: dict[str, dict[str, Any]] = {}
    for block in blocks:
        text = "\n".join(line.removeprefix("# ") for line in block.splitlines())
        tables.update(tomllib.loads(text)["connectors"])
    return tables


def environ_for(options: dict[str, Any]) -> dict[str, str]:
    """A value for every environment variable the settings name."""
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    return {value: secret for key, value in options.items() if key.endswith("_env")}


def load(name: str, table: dict[str, Any]) -> Connector:
    options = {key: value for key, value in table.items() if key != "kind"}
    return load_connector(name, table["kind"], options, environ_for(options))


def jwt_variant(table: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The README's Salesforce example signed in with a certificate, as it describes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "salesforce.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    variant = {k: v for k, v in table.items() if k != "client_secret_env"}
    return variant | {
        "auth": "jwt_bearer",
        "username": "integration@council.example",
        "private_key_path": str(path),
        "login_url": "https://test.salesforce.com",
    }


@pytest.mark.parametrize("source", ["README", "config"])
def test_every_example_starts_its_connector(source: str) -> None:
    examples = readme_examples() if source == "README" else config_examples()
    kinds = {table["kind"] for table in examples.values()}
    assert kinds == set(available_kinds()), "one complete example per connector kind"
    for name, table in examples.items():
        load(name, table)


def test_every_setting_is_documented_in_the_readme_and_the_config(tmp_path: Path) -> None:
    examples = readme_examples()
    connectors = [load(name, table) for name, table in examples.items()]
    salesforce = next(t for t in examples.values() if t["kind"] == "salesforce")
    connectors.append(load("salesforce_jwt", jwt_variant(salesforce, tmp_path)))
    for connector in connectors:
        documented = COMMON + BY_KIND[connector.kind]
        for setting in connector.settings.names_read():
            assert f"| `{setting}` |" in documented, (
                f"{connector.kind} setting {setting!r} is not in the README's table"
            )
            assert re.search(rf"^#\s+{setting} = ", CONFIG, re.M), (
                f"{connector.kind} setting {setting!r} is not in config/forewarn.toml"
            )
